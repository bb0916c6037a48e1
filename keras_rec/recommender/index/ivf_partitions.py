"""`IVFPartitions`: k-means partitions of item vectors, the coarse level of an IVF index."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

# Rows scored against the centroids at once: bounds the [rows, P] score block.
_SCORE_BLOCK_FLOATS = 1 << 25
# k-means trains on at most this many sampled vectors per centroid (faiss uses 256;
# 64 loses no recall on the benchmark's mixture and trains 4x faster).
SAMPLE_PER_PARTITION = 64
KMEANS_ITERATIONS = 12


def default_num_partitions(num_items: int) -> int:
    """`round(sqrt(N))` partitions: each ~sqrt(N) items, so a query scores ~nprobe x sqrt(N)."""
    if num_items < 1:
        raise ValueError(f"`num_items` must be positive. Received: num_items={num_items}")
    return max(1, min(num_items, round(math.sqrt(num_items))))


@dataclasses.dataclass
class IVFPartitions:
    """Centroids, and the partition of every item vector.

    Args:
        centroids: float32 `[P, D]`.
        assignments: int32 `[N]`: the partition of item row `i`.
    """

    centroids: np.ndarray
    assignments: np.ndarray

    @property
    def num_partitions(self) -> int:
        return len(self.centroids)

    def sizes(self) -> np.ndarray:
        """Items per partition, `[P]`."""
        return np.bincount(self.assignments, minlength=self.num_partitions)

    def add(self, vectors: np.ndarray) -> IVFPartitions:
        """These partitions with `vectors` appended as rows N.., each in its nearest partition."""
        vectors = _as_matrix(vectors, "vectors", self.centroids.shape[1])
        return IVFPartitions(
            self.centroids,
            np.concatenate([self.assignments, nearest_centroids(vectors, self.centroids)]),
        )


def kmeans_partitions(
    vectors: np.ndarray,
    num_partitions: int | None = None,
    seed: int = 0,
    iterations: int = KMEANS_ITERATIONS,
) -> IVFPartitions:
    """Trains k-means (Lloyd, L2) on a seeded sample of `vectors`, then assigns them all.

    Args:
        vectors: float `[N, D]`.
        num_partitions: int or None. Default `default_num_partitions(N)`.
        seed: int. Seeds the sample and the initial centroids.
        iterations: int. Lloyd iterations.

    Returns:
        `IVFPartitions`. An empty cluster is re-seeded with a random sample
        vector, so no partition is left without a centroid near data.
    """
    vectors = _as_matrix(vectors, "vectors")
    num_items = len(vectors)
    if num_partitions is None:
        num_partitions = default_num_partitions(num_items)
    if isinstance(num_partitions, bool) or not isinstance(num_partitions, int):
        raise ValueError(f"`num_partitions` must be an integer. Received: {num_partitions!r}")
    if not 1 <= num_partitions <= num_items:
        raise ValueError(
            f"`num_partitions` must be in [1, {num_items}] (the item count). "
            f"Received: num_partitions={num_partitions}"
        )
    rng = np.random.default_rng(seed)
    sample_size = min(num_items, SAMPLE_PER_PARTITION * num_partitions)
    sample = vectors[np.sort(rng.choice(num_items, sample_size, replace=False))]
    centroids = sample[rng.choice(sample_size, num_partitions, replace=False)].copy()
    for _ in range(iterations):
        labels = nearest_centroids(sample, centroids)
        counts = np.bincount(labels, minlength=num_partitions)
        order = np.argsort(labels, kind="stable")
        filled = counts > 0
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[filled]
        sums = np.add.reduceat(sample[order].astype(np.float64), starts, axis=0)
        centroids[filled] = (sums / counts[filled, None]).astype(np.float32)
        empty = ~filled
        if empty.any():
            centroids[empty] = sample[rng.choice(sample_size, int(empty.sum()), replace=False)]
    return IVFPartitions(centroids, nearest_centroids(vectors, centroids))


def nearest_centroids(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The L2-nearest centroid of each vector, `[N]` int32, in blocks of rows."""
    half_norms = 0.5 * np.einsum("pd,pd->p", centroids, centroids)
    block = max(1, _SCORE_BLOCK_FLOATS // len(centroids))
    labels = np.empty(len(vectors), np.int32)
    for start in range(0, len(vectors), block):
        scores = vectors[start : start + block] @ centroids.T
        scores -= half_norms
        labels[start : start + block] = scores.argmax(axis=1)
    return labels


def _as_matrix(vectors, name: str, dim: int | None = None) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"`{name}` must be a non-empty [N, D] matrix. Received: {vectors.shape}")
    if dim is not None and vectors.shape[1] != dim:
        raise ValueError(f"`{name}` must have width {dim}. Received: {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError(f"`{name}` holds NaN or infinite values.")
    return vectors
