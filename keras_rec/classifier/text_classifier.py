"""Text classifiers: TF Hub preprocessor -> TF Hub encoder -> dense head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_rec.hub.hub_layer import HubLayer

TOKEN_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def build_classifier_head(
    embedding_dim: int,
    num_classes: int,
    hidden_units: Sequence[int] = (128,),
    dropout: float = 0.2,
    multi_label: bool = False,
    name: str = "classifier_head",
) -> keras.Model:
    """The dense head: `[B, embedding_dim]` embeddings -> `[B, num_classes]` probabilities.

    Args:
        embedding_dim: int. Width of the encoder output.
        num_classes: int. Number of classes (>= 2 for softmax, >= 1 multi-label).
        hidden_units: ints. One `Dense(relu)` + `Dropout` block per entry.
        dropout: float. Dropout rate before each dense layer.
        multi_label: bool. Sigmoid per class instead of a softmax.
        name: str.

    Returns:
        A functional Keras model with input `"embedding"` and output
        `"probabilities"`.
    """
    _check_head_arguments(num_classes, hidden_units, dropout, multi_label)
    # === Layers ===
    embedding = keras.Input(shape=(embedding_dim,), name="embedding")
    x = embedding
    for index, units in enumerate(hidden_units):
        x = keras.layers.Dropout(dropout, name=f"head_dropout_{index}")(x)
        x = keras.layers.Dense(units, activation="relu", name=f"head_dense_{index}")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout_out")(x)
    # === Functional Model ===
    probabilities = keras.layers.Dense(
        num_classes, activation="sigmoid" if multi_label else "softmax", name="probabilities"
    )(x)
    return keras.Model(embedding, probabilities, name=name)


def build_text_classifier(
    preprocessor: str | HubLayer,
    encoder: str | HubLayer,
    num_classes: int,
    trainable: bool = False,
    hidden_units: Sequence[int] = (128,),
    dropout: float = 0.2,
    multi_label: bool = False,
    encoder_output: str = "sentence_embedding",
    head: keras.Model | None = None,
    name: str = "text_classifier",
) -> keras.Model:
    """Raw strings in, class probabilities out, on TF Hub preprocessing + encoder.

    `text` (tf.string `[B]`) -> `HubLayer(preprocessor)` -> `HubLayer(encoder,
    trainable)` -> dense head -> softmax (or sigmoid for `multi_label`). A
    frozen encoder (`trainable=False`) has no trainable weights and always
    runs in inference mode (no dropout), as `hub.KerasLayer` does.

    Args:
        preprocessor: a TF Hub handle (URL, Kaggle handle, local path; e.g.
            `keras-rec export-hub` output `DIR/preprocess`) or a `HubLayer`.
        encoder: a TF Hub handle or `HubLayer` of a text encoder taking the
            preprocessor's outputs.
        num_classes: int. Number of classes.
        trainable: bool. Fine-tune the encoder.
        hidden_units: ints. Hidden dense layers of the head.
        dropout: float. Dropout rate in the head.
        multi_label: bool. Independent sigmoid per class.
        encoder_output: str. The encoder output the head reads:
            `"sentence_embedding"` (the sentence-transformer's pooling, from
            `export-hub`) or `"pooled_output"` (any TF Hub BERT).
        head: a head from `build_classifier_head` to reuse (e.g. trained on
            precomputed embeddings); built fresh when None.
        name: str.

    Returns:
        A functional Keras model with input `"text"` and output
        `"probabilities"`.

    Example:

    >>> model = keras_rec.classifier.build_text_classifier(
    ...     "hub/minilm/preprocess", "hub/minilm/encoder", num_classes=3, trainable=True
    ... )
    >>> model(tf.constant(["what a film"])).shape
    TensorShape([1, 3])
    """
    # === Layers ===
    preprocessor_layer = _hub_layer(preprocessor, "preprocessor", trainable=False)
    encoder_layer = _hub_layer(encoder, "encoder", trainable=trainable, output_key=encoder_output)
    # === Functional Model ===
    text = keras.Input(shape=(), dtype="string", name="text")
    embedding = encoder_layer(preprocessor_layer(text))
    head = head or build_classifier_head(
        int(embedding.shape[-1]), num_classes, hidden_units, dropout, multi_label
    )
    _check_head_fits(head, embedding, num_classes)
    return keras.Model(text, head(embedding), name=name)


def build_token_id_classifier(
    encoder: str | HubLayer,
    num_classes: int,
    trainable: bool = False,
    hidden_units: Sequence[int] = (128,),
    dropout: float = 0.2,
    multi_label: bool = False,
    encoder_output: str = "sentence_embedding",
    head: keras.Model | None = None,
    name: str = "token_id_classifier",
) -> keras.Model:
    """Like `build_text_classifier`, but takes token ids made outside the model.

    Inputs are the preprocessor's outputs, int32 `[B, T]`: `input_word_ids`,
    `input_mask`, `input_type_ids`. Produce them with the same preprocessor
    the encoder was exported with, e.g.
    `tf.saved_model.load("hub/minilm/preprocess")(tf.constant(texts))`, or in
    a `tf.data` pipeline (`dataset.map(preprocess)`), which keeps string ops
    off the accelerator.

    Args:
        encoder: a TF Hub handle or `HubLayer` of the encoder.
        num_classes, trainable, hidden_units, dropout, multi_label,
        encoder_output, head, name: as in `build_text_classifier`.

    Returns:
        A functional Keras model with the three token inputs and output
        `"probabilities"`.
    """
    encoder_layer = _hub_layer(encoder, "encoder", trainable=trainable, output_key=encoder_output)
    tokens = {key: keras.Input(shape=(None,), dtype="int32", name=key) for key in TOKEN_INPUTS}
    embedding = encoder_layer(tokens)
    head = head or build_classifier_head(
        int(embedding.shape[-1]), num_classes, hidden_units, dropout, multi_label
    )
    _check_head_fits(head, embedding, num_classes)
    return keras.Model(tokens, head(embedding), name=name)


def _hub_layer(handle: Any, name: str, trainable: bool, output_key: str | None = None):
    if isinstance(handle, HubLayer):
        if handle.trainable != trainable:
            handle.trainable = trainable
        return handle
    if not isinstance(handle, str):
        raise TypeError(
            f"The {name} must be a TF Hub handle (str) or a `keras_rec.hub.HubLayer`. "
            f"Received: {type(handle).__name__}"
        )
    return HubLayer(handle, trainable=trainable, output_key=output_key, name=name)


def _check_head_arguments(num_classes, hidden_units, dropout, multi_label) -> None:
    minimum = 1 if multi_label else 2
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < minimum:
        raise ValueError(
            f"`num_classes` must be an integer >= {minimum}. Received: num_classes={num_classes!r}"
        )
    if any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in hidden_units):
        raise ValueError(
            "`hidden_units` must be positive integers. "
            f"Received: hidden_units={tuple(hidden_units)!r}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")


def _check_head_fits(head: keras.Model, embedding, num_classes: int) -> None:
    expected = (int(embedding.shape[-1]), num_classes)
    actual = (int(head.inputs[0].shape[-1]), int(head.outputs[0].shape[-1]))
    if actual != expected:
        raise ValueError(
            f"`head` maps {actual[0]} -> {actual[1]}, but the encoder gives {expected[0]} "
            f"and num_classes={num_classes}."
        )
