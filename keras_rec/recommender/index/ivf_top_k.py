"""`IVFTopK`: approximate top-K retrieval by an inverted-file index, in core TF ops."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_rec.index_choices import STORAGES
from keras_rec.recommender.index.brute_force_top_k import candidate_identifiers
from keras_rec.recommender.index.ivf_partitions import IVFPartitions, kmeans_partitions

_INT8_LEVELS = 127.0
# Rows converted to the storage dtype at once (bounds the float32 copy).
_STORE_BLOCK = 1 << 18


@keras.saving.register_keras_serializable(package="keras_rec")
class IVFTopK(keras.layers.Layer):
    """Scores a query against the items of its `nprobe` nearest partitions; returns the K best.

    The item vectors are split into k-means partitions (`IVFPartitions`) and
    stored grouped by partition (`offsets[p]:offsets[p + 1]` holds partition
    `p`). A query scores the centroids, takes the `nprobe` best partitions
    (more when those hold fewer than k items beyond the ones it excludes),
    gathers and scores their items, and keeps the top K; items to exclude
    (a user's seen items) are masked among the best `k + excluded`
    candidates. Everything is a core TensorFlow op (MatMul, TopKV2, Gather,
    RaggedRange, a While loop over the batch), so stock TF Serving and
    SageMaker's image serve it; every table is a non-trainable variable, so
    the SavedModel's graph stays small (the 2 GB GraphDef limit) whatever
    the item count. `nprobe` is a variable too: `set_nprobe` changes it
    without rebuilding.

    Storage `"bfloat16"` halves the vectors' memory, `"int8"` quarters it
    (one float32 scale per vector, `max|v| / 127`); scores are computed in
    float32 from the dequantized vectors.

    Args:
        candidates: float array `[N, D]`. Item vectors, in row order.
        identifiers: int array `[N]`. Item ids (default 0..N-1).
        k: int. Results per query.
        partitions: `IVFPartitions` or None (then `kmeans_partitions(
            candidates, num_partitions, seed)`).
        nprobe: int. Partitions searched per query (clipped to the count).
        storage: str. One of `STORAGES`.
        num_partitions: int or None. Used when `partitions` is None.
        seed: int. Used when `partitions` is None.
        num_candidates, dim: ints, for `from_config` (a weights-only
            rebuild; the weights then come from the saved model).

    Call arguments:
        queries: float `[B, D]`.
        exclude: optional int64 `[B, M]` candidate rows to leave out per
            query; pad with -1.

    Returns:
        `(scores [B, k] float32, identifiers [B, k])`. Only when the whole
        catalogue minus a query's excluded items is smaller than k do
        places score `-inf` (as with brute force).

    Example:

    >>> index = keras_rec.recommender.IVFTopK(item_vectors, k=10, nprobe=8)
    >>> scores, ids = index(user_vectors)
    """

    def __init__(
        self,
        candidates=None,
        identifiers=None,
        k: int = 10,
        partitions: IVFPartitions | None = None,
        nprobe: int = 1,
        storage: str = "float32",
        num_partitions: int | None = None,
        seed: int = 0,
        num_candidates: int | None = None,
        dim: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if storage not in STORAGES:
            raise ValueError(f"`storage` must be one of {STORAGES}. Received: storage={storage!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"`k` must be a positive integer. Received: k={k!r}")
        if candidates is not None:
            candidates = np.asarray(candidates, dtype=np.float32)
            if candidates.ndim != 2:
                raise ValueError(f"`candidates` must be [N, D]. Received: {candidates.shape}")
            num_candidates, dim = candidates.shape
            if partitions is None:
                partitions = kmeans_partitions(candidates, num_partitions, seed)
            if len(partitions.assignments) != num_candidates:
                raise ValueError(
                    f"`partitions` assign {len(partitions.assignments)} items; "
                    f"`candidates` has {num_candidates}."
                )
            num_partitions = partitions.num_partitions
            identifiers = candidate_identifiers(identifiers, num_candidates)
        if num_candidates is None or num_partitions is None:
            raise ValueError("`candidates` is required.")
        if k > num_candidates:
            raise ValueError(f"`k` must be <= the {num_candidates} candidates. Received: k={k}")
        self.k = k
        self.storage = storage
        self.seed = seed
        self.num_candidates = int(num_candidates)
        self.num_partitions = int(num_partitions)
        self.dim = int(dim)
        self.nprobe = _check_nprobe(nprobe, self.num_partitions)
        weight = self._table
        self.centroids = weight("centroids", (self.num_partitions, self.dim), "float32")
        self.offsets = weight("offsets", (self.num_partitions + 1,), "int64")
        self.vectors = weight("vectors", (self.num_candidates, self.dim), storage)
        self.scales = (
            weight("scales", (self.num_candidates,), "float32") if storage == "int8" else None
        )
        self.rows = weight("rows", (self.num_candidates,), "int64")
        self.identifiers = weight("identifiers", (self.num_candidates,), "int64")
        self.nprobe_variable = weight("nprobe", (), "int32")
        self.nprobe_variable.assign(self.nprobe)
        if candidates is not None:
            self._fill(candidates, partitions, identifiers)

    def _table(self, name, shape, dtype):
        return self.add_weight(
            shape=shape, dtype=dtype, initializer="zeros", trainable=False, name=name
        )

    def _fill(self, candidates, partitions: IVFPartitions, identifiers) -> None:
        order = np.argsort(partitions.assignments, kind="stable")
        self.centroids.assign(partitions.centroids.astype(np.float32))
        self.offsets.assign(np.concatenate([[0], np.cumsum(partitions.sizes())]).astype(np.int64))
        self.rows.assign(order.astype(np.int64))
        self.identifiers.assign(identifiers)
        dtype = tf.as_dtype(self.storage).as_numpy_dtype
        stored = np.empty(candidates.shape, dtype)
        scales = np.empty(len(candidates), np.float32)
        for start in range(0, len(order), _STORE_BLOCK):
            block = candidates[order[start : start + _STORE_BLOCK]]
            stop = start + len(block)
            if self.storage == "int8":
                scale = np.abs(block).max(axis=1) / _INT8_LEVELS
                scale[scale == 0] = 1.0
                stored[start:stop] = np.rint(block / scale[:, None]).astype(np.int8)
                scales[start:stop] = scale
            else:
                stored[start:stop] = block.astype(dtype)
        self.vectors.assign(stored)
        del stored
        if self.scales is not None:
            self.scales.assign(scales)

    def set_nprobe(self, nprobe: int) -> None:
        """Partitions searched per query from now on (the served value once exported)."""
        self.nprobe = _check_nprobe(nprobe, self.num_partitions)
        self.nprobe_variable.assign(self.nprobe)

    def call(self, queries, exclude=None):
        queries = tf.convert_to_tensor(queries, tf.float32)
        batch = tf.shape(queries)[0]
        centroid_scores = tf.matmul(queries, self.centroids, transpose_b=True)
        # Every partition ranked: a query whose first `nprobe` partitions hold
        # fewer than k + its excluded items probes on until they do.
        _, ranked = tf.math.top_k(centroid_scores, k=self.num_partitions)
        if exclude is None:
            exclude = tf.fill([batch, 0], tf.constant(-1, tf.int64))
        exclude = tf.cast(exclude, tf.int64)
        scores, rows = tf.map_fn(
            self._search_one,
            (queries, ranked, exclude),
            fn_output_signature=(
                tf.TensorSpec([self.k], tf.float32),
                tf.TensorSpec([self.k], tf.int64),
            ),
        )
        identifiers = tf.gather(tf.convert_to_tensor(self.identifiers), tf.maximum(rows, 0))
        return scores, identifiers

    def _search_one(self, elements):
        query, ranked, excluded = elements
        offsets = tf.convert_to_tensor(self.offsets)
        excluded = tf.boolean_mask(excluded, excluded >= 0)
        needed = self.k + tf.size(excluded, out_type=tf.int64)
        held = tf.cumsum(tf.gather(offsets[1:] - offsets[:-1], ranked))
        nprobe = tf.maximum(
            self.nprobe_variable,
            tf.cast(tf.reduce_sum(tf.cast(held < needed, tf.int32)), tf.int32) + 1,
        )
        probes = ranked[: tf.minimum(nprobe, self.num_partitions)]
        positions = tf.ragged.range(
            tf.gather(offsets, probes), tf.gather(offsets, probes + 1)
        ).flat_values
        vectors = tf.cast(tf.gather(self.vectors, positions), tf.float32)
        scores = tf.linalg.matvec(vectors, query)
        if self.scales is not None:
            scores = scores * tf.gather(self.scales, positions)
        rows = tf.gather(self.rows, positions)
        # k places of padding (-inf, row -1) keep top_k defined when excluded
        # items leave fewer than k (as brute force would return -inf too).
        scores = tf.concat([scores, tf.fill([self.k], -np.inf)], 0)
        rows = tf.concat([rows, tf.fill([self.k], tf.constant(-1, tf.int64))], 0)
        shortlist = tf.minimum(tf.size(scores), self.k + tf.size(excluded))
        scores, picked = tf.math.top_k(scores, k=shortlist)
        rows = tf.gather(rows, picked)
        seen = tf.reduce_any(tf.equal(rows[:, None], excluded[None, :]), axis=1)
        scores = tf.where(seen, tf.constant(-np.inf), scores)
        scores, picked = tf.math.top_k(scores, k=self.k)
        return scores, tf.gather(rows, picked)

    def item_vectors(self) -> np.ndarray:
        """The stored item vectors in row order, dequantized, `[N, D]` float32."""
        stored = np.array(tf.cast(self.vectors, tf.float32))
        if self.scales is not None:
            stored *= np.asarray(self.scales)[:, None]
        vectors = np.empty_like(stored)
        vectors[np.asarray(self.rows)] = stored
        return vectors

    def partitions(self) -> IVFPartitions:
        """The centroids and each row's partition, as stored."""
        sizes = np.diff(np.asarray(self.offsets))
        assignments = np.empty(self.num_candidates, np.int32)
        assignments[np.asarray(self.rows)] = np.repeat(
            np.arange(self.num_partitions, dtype=np.int32), sizes
        )
        return IVFPartitions(np.asarray(self.centroids), assignments)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "k": self.k,
                "nprobe": self.nprobe,
                "storage": self.storage,
                "num_partitions": self.num_partitions,
                "seed": self.seed,
                "num_candidates": self.num_candidates,
                "dim": self.dim,
            }
        )
        return config


def _check_nprobe(nprobe, num_partitions: int) -> int:
    if isinstance(nprobe, bool) or not isinstance(nprobe, (int, np.integer)) or nprobe < 1:
        raise ValueError(f"`nprobe` must be a positive integer. Received: nprobe={nprobe!r}")
    return int(min(nprobe, num_partitions))
