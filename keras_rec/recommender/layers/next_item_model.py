"""`NextItemModel`: a user's next item from their recent items, trained at every position."""

from __future__ import annotations

import copy
from typing import Any

import keras
from keras import ops

from keras_rec.recommender.data.user_sequences import TIME_GAP_BUCKETS
from keras_rec.recommender.layers.causal_sequence_encoder import CausalSequenceEncoder
from keras_rec.recommender.layers.two_tower_retrieval import (
    gather_from_replicas,
    in_batch_logits,
    replica_share,
)
from keras_rec.user_model_choices import SEQUENCE_LOSSES


def sequence_queries(encoder, history_vectors, valid, training=False, last_only=False):
    """The encoder's states over item vectors, L2-normalized: `[B, L, D]` query vectors
    (`[B, 1, D]`, the last position's, with `last_only`)."""
    states = encoder(history_vectors, valid, training=training, last_only=last_only)
    return ops.normalize(states, axis=-1)


# The training logit of an item with no training interaction (out of the full softmax).
UNTRAINED_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="keras_rec")
class NextItemModel(keras.Model):
    """Scores every item as the next one after a user's recent items (SASRec-style).

    Each item is its item-tower vector (text embedding + id embedding with
    id dropout, so an item unseen in training still has one); a
    `CausalSequenceEncoder` reads a user's last `max_history` item vectors
    in time order, and its state at each position, L2-normalized, scores
    every item by cosine / `temperature`. Training predicts the next item at
    every position of every window at once:

    - `loss="softmax"`: cross-entropy over the whole catalogue (every item
      vector computed each step: for catalogues that fit). Items without
      a training interaction (id input 0: held-out or newly added items)
      are left out: never a target, they would only ever be pushed down
      as negatives, below every trained item, and could not be
      recommended once they arrive (cold start);
    - `loss="sampled_softmax"`: over the batch's target items only, with
      log-Q correction (`item_log_q`: the log share of training steps
      that target each item) and accidental hits removed, so a step costs
      the batch, not the catalogue.

    The item tables (text embeddings, id indices, log-Q) are non-trainable
    weights set by `set_items`, so the model alone maps item rows to scores.

    Args:
        item_tower: Keras model, `{"embedding", "id"}` -> unit vectors `[B, D]`.
        num_items: int. Item rows `0 .. num_items - 1`.
        embedding_dim: int. Width of the items' text embeddings.
        max_history: int. Items a prediction looks back on.
        num_layers, num_heads, dropout: the encoder's.
        temperature: float. Divides the cosine logits.
        loss: str. One of `SEQUENCE_LOSSES`.
        time_gaps: bool. Add to each item's vector a learned embedding of
            the time since the item before it (`"gaps"`, bucketed log
            seconds: `time_gap_buckets`).
        seed: int or None.

    Call arguments:
        inputs: dict with `"history"` int64 `[B, max_history]` item rows,
            left-padded with -1 (rows outside the catalogue count as
            padding); with `time_gaps`, `"gaps"` int64 `[B, max_history]`,
            each position's gap bucket (0: none); for training also
            `"targets"` `[B, max_history]`, the next item row after each
            position (-1: none).

    Returns:
        float `[B, max_history, D]` unit query vectors (the last position's
        is the user's query for what comes next).
    """

    def __init__(
        self,
        item_tower,
        num_items: int,
        embedding_dim: int,
        max_history: int = 50,
        num_layers: int = 2,
        num_heads: int = 2,
        dropout: float = 0.2,
        temperature: float = 0.05,
        loss: str = "softmax",
        time_gaps: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in SEQUENCE_LOSSES:
            raise ValueError(f"`loss` must be one of {SEQUENCE_LOSSES}. Received: loss={loss!r}")
        if not temperature > 0:
            raise ValueError(f"`temperature` must be positive. Received: {temperature!r}")
        for name, value in (("num_items", num_items), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {value!r}")
        self.item_tower = item_tower
        self.num_items = num_items
        self.embedding_dim = embedding_dim
        self.max_history = max_history
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.dropout = float(dropout)
        self.temperature = float(temperature)
        self.loss_name = loss
        self.time_gaps = bool(time_gaps)
        self.seed = seed
        self.encoder = CausalSequenceEncoder(
            max_history, num_layers, num_heads, dropout=dropout, seed=seed, name="encoder"
        )
        self.gap_embedding = None
        if self.time_gaps:
            self.gap_embedding = keras.layers.Embedding(
                TIME_GAP_BUCKETS,
                item_tower.output_shape[-1],
                embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                name="time_gaps",
            )
            self.gap_embedding.build((None, max_history))
        self.item_embeddings = self.add_weight(
            shape=(num_items, embedding_dim),
            initializer="zeros",
            trainable=False,
            name="item_embeddings",
        )
        self.item_id_index = self.add_weight(
            shape=(num_items,), dtype="int64", initializer="zeros", trainable=False, name="item_id"
        )
        self.item_log_q = self.add_weight(
            shape=(num_items,), initializer="zeros", trainable=False, name="item_log_q"
        )

    def set_items(self, item_embeddings, item_id_index, item_log_q=None) -> None:
        """Sets the item tables: text embeddings `[N, E]`, tower id inputs `[N]`, log-Q `[N]`."""
        import numpy as np

        item_embeddings = np.asarray(item_embeddings, np.float32)
        if item_embeddings.shape != (self.num_items, self.embedding_dim):
            raise ValueError(
                f"`item_embeddings` must have shape {(self.num_items, self.embedding_dim)}. "
                f"Received: {item_embeddings.shape}"
            )
        self.item_embeddings.assign(item_embeddings)
        self.item_id_index.assign(np.asarray(item_id_index, np.int64))
        if item_log_q is not None:
            self.item_log_q.assign(np.asarray(item_log_q, np.float32))

    def item_vectors(self, rows=None, training=False):
        """Item-tower vectors of item `rows` (any shape; default: every item) `[..., D]`."""
        if rows is None:
            features = {"embedding": self.item_embeddings, "id": self.item_id_index}
            return self.item_tower(features, training=training)
        flat = ops.reshape(rows, [-1])
        features = {
            "embedding": ops.take(self.item_embeddings, flat, axis=0),
            "id": ops.take(self.item_id_index, flat, axis=0),
        }
        vectors = self.item_tower(features, training=training)
        return ops.reshape(vectors, [*ops.shape(rows), ops.shape(vectors)[-1]])

    def valid_rows(self, history):
        """`(valid bool, safe rows)`: which history entries are items, and rows with 0 elsewhere."""
        history = ops.cast(history, "int64")
        valid = ops.logical_and(history >= 0, history < self.num_items)
        return valid, ops.where(valid, history, ops.zeros_like(history))

    def queries(self, history_vectors, valid, training=False):
        """Unit query vectors `[B, L, D]` of item vectors `[B, L, D]` (valid `[B, L]`)."""
        return sequence_queries(self.encoder, history_vectors, valid, training=training)

    def history_vectors(self, inputs, training=False):
        """`(valid [B, L], vectors [B, L, D])`: what the encoder reads for `inputs`' history."""
        valid, rows = self.valid_rows(inputs["history"])
        vectors = self.item_vectors(rows, training=training)
        if self.time_gaps:
            if "gaps" not in inputs:
                raise ValueError("This model was built with `time_gaps`: `inputs` needs `gaps`.")
            gaps = ops.where(valid, ops.cast(inputs["gaps"], "int64"), 0)
            vectors = vectors + self.gap_embedding(gaps)
        return valid, vectors

    def gap_table(self):
        """float `[TIME_GAP_BUCKETS, D]`: each gap bucket's vector (None without time gaps)."""
        if not self.time_gaps:
            return None
        return ops.convert_to_numpy(self.gap_embedding.embeddings)

    def call(self, inputs, training=False):
        valid, vectors = self.history_vectors(inputs, training=training)
        return self.queries(vectors, valid, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        import tensorflow as tf

        valid, _ = self.valid_rows(x["history"])
        targets = ops.cast(x["targets"], "int64")
        valid = ops.logical_and(valid, targets >= 0)
        queries = tf.boolean_mask(y_pred, valid)
        targets = tf.boolean_mask(targets, valid)
        if self.loss_name == "softmax":
            items = self.item_vectors(training=training)
            logits = ops.matmul(queries, ops.transpose(items)) / self.temperature
            trained = ops.greater(self.item_id_index, 0)[None, :]
            logits = ops.where(trained, logits, ops.full_like(logits, UNTRAINED_LOGIT))
            labels = targets
        else:
            (items, log_q, keys), first = gather_from_replicas(
                self.item_vectors(targets, training=training),
                ops.take(self.item_log_q, targets, axis=0),
                targets,
            )
            logits = in_batch_logits(
                queries, items, self.temperature, item_log_q=log_q, item_key=keys,
                first_positive=first,
            )  # fmt: skip
            labels = first + ops.arange(ops.shape(logits)[0])
        loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        # An empty batch (no valid step) has loss 0, not NaN.
        total = ops.sum(loss) / ops.maximum(ops.cast(ops.size(loss), loss.dtype), 1.0)
        if self.losses:
            total = total + ops.sum(self.losses)
        return replica_share(total)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "item_tower": keras.layers.serialize(self.item_tower),
                "num_items": self.num_items,
                "embedding_dim": self.embedding_dim,
                "max_history": self.max_history,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "temperature": self.temperature,
                "loss": self.loss_name,
                "time_gaps": self.time_gaps,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        config["item_tower"] = keras.layers.deserialize(config["item_tower"])
        return cls(**config)
