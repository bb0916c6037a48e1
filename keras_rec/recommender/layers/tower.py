"""Towers: precomputed sentence embeddings (+ optional ids and features) -> unit vectors."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_rec.recommender.layers.id_dropout import IdDropout
from keras_rec.recommender.layers.row_embedding import RowEmbedding


def build_tower(
    embedding_dim: int,
    name: str,
    output_dim: int = 128,
    hidden_units: Sequence[int] = (256,),
    dropout: float = 0.1,
    weight_decay: float = 1e-5,
    id_vocabulary_size: int | None = None,
    id_embedding_dim: int = 32,
    id_dropout: float = 0.0,
    feature_dim: int | None = None,
) -> keras.Model:
    """One tower of a two-tower model.

    Inputs (by name): `"embedding"` float32 `[B, embedding_dim]` (a
    precomputed sentence-transformer embedding of the user's or item's text);
    optionally `"id"` int64 `[B]` (a learned id embedding, index 0 reserved
    for ids unseen in training; ids outside the vocabulary count as 0) and
    `"features"` float32 `[B, feature_dim]` (categorical one-hots, numeric
    values). They are concatenated, passed through `Dense(relu)` + `Dropout`
    blocks with L2 weight decay, projected to `output_dim` and L2-normalized,
    so scores are cosine similarities.

    Args:
        embedding_dim: int. Width of the text embedding input.
        name: str. Model name, e.g. `"user_tower"`.
        output_dim: int. Width of the output vectors.
        hidden_units: ints. Hidden layers.
        dropout: float.
        weight_decay: float. L2 factor on kernels, and on the id embeddings
            looked up in each batch (per example).
        id_vocabulary_size: int or None. Adds the `"id"` input with this many
            ids (0 = unknown).
        id_embedding_dim: int. Width of the id embedding.
        id_dropout: float. Share of training examples whose id is replaced
            by 0 (unknown), so the tower also learns to work from text alone
            (cold start).
        feature_dim: int or None. Adds the `"features"` input.

    Returns:
        A functional Keras model: dict of inputs -> `[B, output_dim]` unit vectors.
    """
    for arg, value in (("embedding_dim", embedding_dim), ("output_dim", output_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    # === Layers ===
    inputs = {"embedding": keras.Input(shape=(embedding_dim,), name="embedding")}
    parts = [inputs["embedding"]]
    if id_vocabulary_size is not None:
        inputs["id"] = keras.Input(shape=(), dtype="int64", name="id")
        ids = inputs["id"]
        ids = IdDropout(id_dropout, num_ids=id_vocabulary_size, name="id_dropout")(ids)
        parts.append(
            RowEmbedding(
                id_vocabulary_size,
                id_embedding_dim,
                # On the batch's rows (divided by the batch size), not the
                # whole table: a step then costs the batch, not the catalogue.
                activity_regularizer=regularizer,
                name="id_embedding",
            )(ids)
        )
    if feature_dim is not None:
        inputs["features"] = keras.Input(shape=(feature_dim,), name="features")
        parts.append(inputs["features"])
    # === Functional Model ===
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="fuse")(parts)
    for index, units in enumerate(hidden_units):
        x = keras.layers.Dense(
            units, activation="relu", kernel_regularizer=regularizer, name=f"dense_{index}"
        )(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    x = keras.layers.Dense(output_dim, kernel_regularizer=regularizer, name="projection")(x)
    outputs = keras.layers.UnitNormalization(name="l2_normalize")(x)
    return keras.Model(inputs, outputs, name=name)
