"""`TwoTowerRetrieval`: user and item towers trained with in-batch softmax."""

from __future__ import annotations

import copy
from typing import Any

import keras
from keras import ops

_MASK = -1e9
LOSSES = ("softmax", "sampled_bce")


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

    With `loss="sampled_bce"` each user is instead scored against its item
    (label 1) and `num_negatives` other items drawn at random from the batch
    (label 0), with binary cross-entropy; accidental hits get weight 0.

    Args:
        user_tower: Keras model, user inputs -> unit vectors.
        item_tower: Keras model, item inputs -> unit vectors.
        temperature: float. Divides the cosine logits.
        remove_accidental_hits: bool.
        loss_reduction: str. `"mean"` over the batch, or `"sum"` (TFRS's
            `Retrieval` task sums, so its gradients grow with the batch size).
        loss: str. `"softmax"` (in-batch softmax) or `"sampled_bce"`.
        num_negatives: int. Negatives per user for `"sampled_bce"`.
        seed: int or None. Seed of the negative sampling.

    Call arguments:
        inputs: dict with `"user"` and `"item"` (each the tower's inputs) and,
            for training, `"item_key"` int64 `[B]` (item ids) and optionally
            `"item_log_q"` float32 `[B]` (log sampling probability).

    Returns:
        `{"user": [B, D], "item": [B, D]}`.
    """

    def __init__(
        self,
        user_tower,
        item_tower,
        temperature: float = 0.05,
        remove_accidental_hits: bool = True,
        loss_reduction: str = "mean",
        loss: str = "softmax",
        num_negatives: int = 4,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}. Received: loss={loss!r}")
        if (
            isinstance(num_negatives, bool)
            or not isinstance(num_negatives, int)
            or num_negatives < 1
        ):
            raise ValueError(
                f"`num_negatives` must be a positive integer. Received: {num_negatives!r}"
            )
        self.loss_name = loss
        self.num_negatives = num_negatives
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
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
        item_key = x.get("item_key") if self.remove_accidental_hits else None
        (items, item_log_q, item_key), first_positive = gather_from_replicas(
            y_pred["item"], x.get("item_log_q"), item_key
        )
        logits = in_batch_logits(
            y_pred["user"],
            items,
            self.temperature,
            item_log_q=item_log_q,
            item_key=item_key,
            first_positive=first_positive,
        )
        if self.loss_name == "softmax":
            labels = first_positive + ops.arange(ops.shape(logits)[0])
            loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        else:
            loss = sampled_bce_loss(logits, self.num_negatives, self.seed_generator, first_positive)
        if sample_weight is not None:
            loss = loss * ops.cast(sample_weight, loss.dtype)
        total = ops.mean(loss) if self.loss_reduction == "mean" else ops.sum(loss)
        if self.losses:
            total = total + ops.sum(self.losses)
        return replica_share(total)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "user_tower": keras.layers.serialize(self.user_tower),
                "item_tower": keras.layers.serialize(self.item_tower),
                "temperature": self.temperature,
                "remove_accidental_hits": self.remove_accidental_hits,
                "loss_reduction": self.loss_reduction,
                "loss": self.loss_name,
                "num_negatives": self.num_negatives,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # `keras.layers.deserialize` empties the dicts it is given: work on a copy.
        config = copy.deepcopy(config)
        config["user_tower"] = keras.layers.deserialize(config["user_tower"])
        config["item_tower"] = keras.layers.deserialize(config["item_tower"])
        return cls(**config)


def gather_from_replicas(items, *columns):
    """Every replica's items (and per-item `columns`), so each replica scores the global batch.

    Under a `tf.distribute` strategy with several replicas each replica holds
    `batch / replicas` pairs; gathering the items makes every user's
    negatives the whole global batch, as on one device, so the loss (and
    the model) do not depend on how many workers train. Gradients flow back
    to the replica that computed each item.

    The gather is an all-reduce of each replica's rows placed at its offset
    in a zero buffer: `all_reduce` runs (and has a gradient) under every
    strategy, `MultiWorkerMirroredStrategy` included, where `all_gather`
    inside a traced step fails ("destinations can not be empty").

    Args:
        items: `[b, D]` this replica's item vectors.
        *columns: `[b]` tensors (or None) aligned with `items`.

    Returns:
        `((items [B, D], *columns [B]), first_positive)`: the gathered
        tensors, and the column of this replica's first positive (0 on one
        device).
    """
    if keras.backend.backend() != "tensorflow":
        return (items, *columns), 0
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return (items, *columns), 0
    replica = context.replica_id_in_sync_group
    rows = tf.shape(items)[0]
    sizes = context.all_reduce(
        tf.distribute.ReduceOp.SUM,
        tf.one_hot(replica, context.num_replicas_in_sync, dtype=tf.float32)
        * tf.cast(rows, tf.float32),
    )
    sizes = tf.cast(sizes, tf.int32)
    first_positive = tf.reduce_sum(sizes[:replica])
    after = tf.reduce_sum(sizes) - first_positive - rows

    def gather(tensor):
        if tensor is None:
            return None
        padding = [[first_positive, after]] + [[0, 0]] * (len(tensor.shape) - 1)
        dtype = tensor.dtype
        if not dtype.is_floating:
            tensor = tf.cast(tensor, tf.float64)
        gathered = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.pad(tensor, padding))
        return tf.cast(gathered, dtype)

    return tuple(gather(t) for t in (items, *columns)), first_positive


def replica_share(loss):
    """`loss / replicas` under a `tf.distribute` strategy, as Keras scales compiled losses.

    Each replica's optimizer step sums the gradients of every replica, so a
    replica's loss must be its share of the global loss; Keras' `train_step`
    then multiplies it back for the logged loss.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss * (1.0 / replicas)


def in_batch_logits(user, item, temperature, item_log_q=None, item_key=None, first_positive=0):
    """`[b, B]` logits of every user against every item of the batch.

    Row i's positive is column `first_positive + i` (`b == B` and
    `first_positive == 0` on one device; with items gathered from every
    replica, the replica's own block). `item_log_q` (log sampling
    probability of each column's item) is subtracted from its column; where
    `item_key` says column j holds the same item as row i's positive (and j
    is not that positive), the logit is masked out.
    """
    logits = ops.matmul(user, ops.transpose(item)) / temperature
    if item_log_q is not None:
        logits = logits - ops.cast(item_log_q, logits.dtype)[None, :]
    if item_key is not None:
        positives = _positive_columns(logits, first_positive)
        row_keys = ops.take(item_key, positives, axis=0)
        same = ops.equal(row_keys[:, None], item_key[None, :])
        columns = ops.arange(ops.shape(logits)[1], dtype="int32")
        diagonal = ops.equal(columns[None, :], positives[:, None])
        accidental = ops.logical_and(same, ops.logical_not(diagonal))
        logits = ops.where(accidental, ops.full_like(logits, _MASK), logits)
    return logits


def _positive_columns(logits, first_positive):
    """int32 `[b]`: the column of each row's positive."""
    return ops.cast(first_positive, "int32") + ops.arange(ops.shape(logits)[0], dtype="int32")


def sampled_bce_loss(logits, num_negatives, seed=None, first_positive=0):
    """Per-row binary cross-entropy: the row's positive and sampled in-batch negatives.

    Row i's positive is column `p = first_positive + i`; its negatives are
    columns `(p + offset) mod B` with offsets drawn uniformly from
    `[1, B - 1]`, so a row never samples its own positive. Masked logits
    (accidental hits, at `-1e9`) contribute nothing.

    Returns:
        float `[b]`: the positive's loss plus the mean loss of the negatives.
    """
    rows, batch = ops.shape(logits)[0], ops.shape(logits)[1]
    positives = _positive_columns(logits, first_positive)
    positive = ops.take_along_axis(logits, positives[:, None], axis=1)[:, 0]
    offsets = keras.random.randint(
        (rows, num_negatives), 1, ops.maximum(batch, 2), dtype="int32", seed=seed
    )
    columns = ops.mod(positives[:, None] + offsets, batch)
    negatives = ops.take_along_axis(logits, columns, axis=1)
    # A one-item batch has no negatives: its sampled column is the positive.
    valid = ops.cast(ops.not_equal(columns, positives[:, None]), logits.dtype)
    positive_loss = ops.softplus(-positive)  # -log(sigmoid(x))
    negative_loss = ops.softplus(negatives)  # -log(1 - sigmoid(x))
    return positive_loss + ops.sum(negative_loss * valid, axis=1) / float(num_negatives)
