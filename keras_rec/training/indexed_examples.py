"""`IndexedExamples`: training examples made batch by batch from row indices and tables."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class IndexedExamples:
    """Examples `0 .. count - 1` whose batches are looked up when they are needed.

    A recommender's training pairs are two integers each (a user row and an
    item row); their features are rows of a few `[rows, width]` tables.
    `tf.data.Dataset.from_tensor_slices` over the features would hold one
    copy of each feature per pair (150 GB for 100M pairs of 384-float
    embeddings). Here `strategy_fit` shuffles and shards the example
    *indices* (a permutation in NumPy, seeded per epoch and input pipeline)
    and `gather` builds each batch from them, so memory holds the tables
    once and the pairs as integers.

    Args:
        count: int. Number of examples.
        gather: callable, int64 NumPy `[b]` example indices -> the batch:
            NumPy arrays `[b, ...]` in the structure of `signature`
            (`x`, `(x, y)` or `(x, y, sample_weight)`).
        signature: the batch's structure of `tf.TensorSpec`s, batch
            dimension `None`.

    Example:

    >>> examples = keras_rec.training.IndexedExamples(
    ...     len(pairs), lambda rows: {"user": user_table[pairs[rows, 0]]}, signature)
    """

    count: int
    gather: Callable[[np.ndarray], Any]
    signature: Any

    def __post_init__(self):
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0:
            raise ValueError(
                f"`count` must be a non-negative integer. Received: count={self.count!r}"
            )

    def dataset(self, batch_rows: np.ndarray):
        """`tf.data` of batches, one per row of `batch_rows` (int64 `[batches, b]`)."""
        import tensorflow as tf

        specs = tf.nest.flatten(self.signature)

        def flat_batch(rows):
            return [
                np.asarray(value, spec.dtype.as_numpy_dtype)
                for value, spec in zip(tf.nest.flatten(self.gather(rows)), specs, strict=True)
            ]

        def lookup(rows):
            values = tf.numpy_function(flat_batch, [rows], [spec.dtype for spec in specs])
            for value, spec in zip(values, specs):
                value.set_shape([rows.shape[0], *spec.shape[1:]])
            return tf.nest.pack_sequence_as(self.signature, values)

        return tf.data.Dataset.from_tensor_slices(batch_rows).map(lookup)

    def epoch_rows(
        self,
        batch_size: int,
        batches: int,
        pipeline: int = 0,
        pipelines: int = 1,
        seed: int | None = None,
    ) -> np.ndarray:
        """int64 `[batches, batch_size]`: this input pipeline's example indices for an epoch.

        The pipeline reads examples `pipeline, pipeline + pipelines, ...`
        (as `Dataset.shard`), in a seeded random order when `seed` is given,
        wrapping to its start when it runs out, so every batch is full.
        """
        rows = np.arange(pipeline, self.count, pipelines, dtype=np.int64)
        if not len(rows):
            raise ValueError(
                f"Input pipeline {pipeline} of {pipelines} has no examples: "
                f"{self.count} examples are too few."
            )
        if seed is not None:
            rows = np.random.default_rng(seed).permutation(rows)
        return np.resize(rows, batches * batch_size).reshape(batches, batch_size)
