"""`TwoTowerRetrieval`: user and item towers trained with in-batch softmax."""

from __future__ import annotations

import copy
from typing import Any

import keras
from keras import ops

_MASK = -1e9


@keras.saving.register_keras_serializable(package="keras_rec")
class TwoTowerRetrieval(keras.Model):
    """Trains a user tower and an item tower so that a user's items score highest.

    Each batch holds (user, item) positive pairs; every other item of the
    batch is a negative (in-batch softmax over `user @ item.T / temperature`).
    Popular items are negatives more often than uniform sampling would make
    them, so with `item_log_q` in the inputs the logits are corrected by
    subtracting the log of each item's sampling probability (log-Q
    correction). An item appearing twice in a batch is not its own negative
    (accidental hits are removed, using `item_key`).

    Args:
        user_tower: Keras model, user inputs -> unit vectors.
        item_tower: Keras model, item inputs -> unit vectors.
        temperature: float. Divides the cosine logits.
        remove_accidental_hits: bool.
        loss_reduction: str. `"mean"` over the batch, or `"sum"` (TFRS's
            `Retrieval` task sums, so its gradients grow with the batch size).

    Call arguments:
        inputs: dict with `"user"` and `"item"` (each the tower's inputs) and,
            for training, `"item_key"` int64 `[B]` (item ids) and optionally
            `"item_log_q"` float32 `[B]` (log sampling probability).

    Returns:
        `{"user": [B, D], "item": [B, D]}`.
    """

    def __init__(self, user_tower, item_tower, temperature: float = 0.05,
                 remove_accidental_hits: bool = True, loss_reduction: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"`temperature` must be positive. Received: {temperature!r}")
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(
                f"`loss_reduction` must be 'mean' or 'sum'. Received: {loss_reduction!r}"
            )
        self.loss_reduction = loss_reduction
        self.user_tower = user_tower
        self.item_tower = item_tower
        self.temperature = float(temperature)
        self.remove_accidental_hits = bool(remove_accidental_hits)

    def call(self, inputs, training=False):
        return {
            "user": self.user_tower(inputs["user"], training=training),
            "item": self.item_tower(inputs["item"], training=training),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits = in_batch_logits(
            y_pred["user"], y_pred["item"], self.temperature,
            item_log_q=x.get("item_log_q"),
            item_key=x.get("item_key") if self.remove_accidental_hits else None,
        )
        labels = ops.arange(ops.shape(logits)[0])
        loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        if sample_weight is not None:
            loss = loss * ops.cast(sample_weight, loss.dtype)
        total = ops.mean(loss) if self.loss_reduction == "mean" else ops.sum(loss)
        if self.losses:
            total = total + ops.sum(self.losses)
        return total

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "user_tower": keras.layers.serialize(self.user_tower),
            "item_tower": keras.layers.serialize(self.item_tower),
            "temperature": self.temperature,
            "remove_accidental_hits": self.remove_accidental_hits,
            "loss_reduction": self.loss_reduction,
        })
        return config

    @classmethod
    def from_config(cls, config):
        # `keras.layers.deserialize` empties the dicts it is given: work on a copy.
        config = copy.deepcopy(config)
        config["user_tower"] = keras.layers.deserialize(config["user_tower"])
        config["item_tower"] = keras.layers.deserialize(config["item_tower"])
        return cls(**config)


def in_batch_logits(user, item, temperature, item_log_q=None, item_key=None):
    """`[B, B]` logits of every user against every item of the batch.

    Row i's positive is column i. `item_log_q` (log sampling probability of
    each column's item) is subtracted from its column; where `item_key`
    says column j holds the same item as the diagonal i (j != i), the logit
    is masked out.
    """
    logits = ops.matmul(user, ops.transpose(item)) / temperature
    if item_log_q is not None:
        logits = logits - ops.cast(item_log_q, logits.dtype)[None, :]
    if item_key is not None:
        same = ops.equal(item_key[:, None], item_key[None, :])
        diagonal = ops.eye(ops.shape(logits)[0], dtype="bool")
        accidental = ops.logical_and(same, ops.logical_not(diagonal))
        logits = ops.where(accidental, ops.full_like(logits, _MASK), logits)
    return logits
