"""`build_item_index`: the served top-K over item vectors, exact or IVF with a tuned `nprobe`."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import numpy as np

from keras_rec.index_choices import (
    AUTO_IVF_MIN_ITEMS,
    DEFAULT_TARGET_RECALL,
    INDEX_TYPES,
    STORAGES,
)
from keras_rec.recommender.index.ivf_partitions import kmeans_partitions

logger = logging.getLogger(__name__)

# Queries `nprobe` is tuned on (a seeded sample of the given ones).
TUNING_QUERIES = 1000
# Recall a doubling of nprobe must add for the search to go on below the target.
PLATEAU_GAIN = 0.001
# Relative score gap under which a found item ties the k-th exact one (float32
# dot products of a few hundred terms differ by ~1e-6 between kernels).
TIE_TOLERANCE = 1e-5
# The file, in `assets.extra/`, describing the index of a served model.
INDEX_FILE = "retrieval_index.json"
# Items scored at once by `exact_top_k` (bounds the [queries, block] score matrix).
_EXACT_BLOCK = 1 << 16


def resolve_index_type(index: str, num_items: int) -> str:
    """`"exact"` or `"ivf"`: `index` itself, or auto's choice for `num_items`."""
    if index not in INDEX_TYPES:
        raise ValueError(f"`index` must be one of {INDEX_TYPES}. Received: index={index!r}")
    if index == "auto":
        return "ivf" if num_items >= AUTO_IVF_MIN_ITEMS else "exact"
    return index


@dataclasses.dataclass(frozen=True)
class ItemIndexSettings:
    """How a served model indexes its items (the `--index*` flags).

    Args:
        index: str. `"exact"`, `"ivf"` or `"auto"` (IVF from
            `AUTO_IVF_MIN_ITEMS` items).
        target_recall: float in (0, 1]. Recall@k against exact that IVF's
            `nprobe` must reach on the sample queries.
        storage: str. IVF vector storage (`IVFTopK`'s `STORAGES`).
        num_partitions: int or None. IVF partitions (default ~sqrt(N)).
        seed: int. Seeds k-means and the query sample.
    """

    index: str = "auto"
    target_recall: float = DEFAULT_TARGET_RECALL
    storage: str = "float32"
    num_partitions: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.index not in INDEX_TYPES:
            raise ValueError(
                f"`index` must be one of {INDEX_TYPES}. Received: index={self.index!r}"
            )
        if not 0.0 < self.target_recall <= 1.0:
            raise ValueError(
                f"`target_recall` must be in (0, 1]. Received: target_recall={self.target_recall!r}"
            )
        if self.storage not in STORAGES:
            raise ValueError(
                f"`storage` must be one of {STORAGES}. Received: storage={self.storage!r}"
            )


def build_item_index(
    item_vectors,
    k: int,
    settings: ItemIndexSettings | None = None,
    *,
    sample_queries=None,
    sample_exclude=None,
    name: str = "item_index",
):
    """The layer that serves top-K over `item_vectors`, and a report of how it was chosen.

    Exact: a `BruteForceTopK`. IVF: an `IVFTopK` on seeded k-means
    partitions, with `nprobe` the smallest number of partitions whose top-K
    overlaps the exact top-K by at least `settings.target_recall` on (a
    seeded sample of `TUNING_QUERIES` of) `sample_queries` (`tune_nprobe`).

    Args:
        item_vectors: float `[N, D]`.
        k: int. Results per query.
        settings: `ItemIndexSettings` (default: auto, float32).
        sample_queries: float `[Q, D]` real queries (users' vectors, query
            text embeddings), or a callable returning `(queries, exclude)` or
            `(queries, exclude, description)` (called only for IVF; the
            description, a JSON-ready dict saying where the queries come
            from, is the report's `tuning_queries`). Required for IVF.
        sample_exclude: optional int `[Q, M]` item rows each sample query
            excludes (-1 padded), as served.
        name: str. Layer name.

    Returns:
        `(layer, report)`: report is a JSON-ready dict (`index`, `items`,
        and for IVF `num_partitions`, `nprobe`, `storage`, `target_recall`,
        `recall` reached, `curve` of `[nprobe, recall]` tried, `queries`,
        `partition_sizes` min/median/max, `build_seconds`, and
        `tuning_queries` when the sample came with a description).
    """
    from keras_rec.recommender.index.brute_force_top_k import BruteForceTopK
    from keras_rec.recommender.index.ivf_top_k import IVFTopK

    settings = settings or ItemIndexSettings()
    item_vectors = np.asarray(item_vectors, np.float32)
    kind = resolve_index_type(settings.index, len(item_vectors))
    if kind == "exact":
        layer = BruteForceTopK(item_vectors, np.arange(len(item_vectors)), k=k, name=name)
        return layer, describe_index(layer)
    described = None
    if callable(sample_queries):
        sample_queries, sample_exclude, *described = sample_queries()
        described = described[0] if described else None
    if sample_queries is None or len(sample_queries) == 0:
        raise ValueError("An IVF index needs `sample_queries` to choose `nprobe`.")
    start = time.perf_counter()
    partitions = kmeans_partitions(item_vectors, settings.num_partitions, settings.seed)
    layer = IVFTopK(item_vectors, k=k, partitions=partitions, storage=settings.storage, name=name)
    queries, exclude = _sample(sample_queries, sample_exclude, settings.seed)
    nprobe, recall, curve = tune_nprobe(
        layer, item_vectors, queries, exclude, settings.target_recall
    )
    report = {
        **describe_index(layer),
        "target_recall": settings.target_recall,
        "recall": recall,
        "curve": curve,
        "queries": len(queries),
        "seed": settings.seed,
        "build_seconds": round(time.perf_counter() - start, 2),
    }
    if described is not None:
        report["tuning_queries"] = described
    return layer, report


def index_layer(index, item_vectors, k: int, sample_queries=None, name: str = "item_index"):
    """`(layer, report)` for a served model's `index` argument.

    Args:
        index: `ItemIndexSettings`, None (exact), or an index layer already
            built over `item_vectors` (kept as is, e.g. by `add_items`).
        item_vectors: float `[N, D]`.
        k: int.
        sample_queries: a callable returning `(queries, exclude)`, called
            only when an IVF index is built.
        name: str. Layer name.
    """
    from keras_rec.recommender.index.brute_force_top_k import BruteForceTopK
    from keras_rec.recommender.index.ivf_top_k import IVFTopK

    if isinstance(index, (BruteForceTopK, IVFTopK)):
        if index.num_candidates != len(item_vectors) or index.k != k:
            raise ValueError(
                f"The index holds {index.num_candidates} items with k={index.k}; expected "
                f"{len(item_vectors)} items with k={k}."
            )
        return index, describe_index(index)
    if index is None:
        index = ItemIndexSettings("exact")
    if not isinstance(index, ItemIndexSettings):
        raise TypeError(
            "`index` must be an `ItemIndexSettings`, an index layer or None. "
            f"Received: {type(index).__name__}"
        )
    return build_item_index(item_vectors, k, index, sample_queries=sample_queries, name=name)


def describe_index(layer) -> dict[str, Any]:
    """What an index layer is: `index`, `items`, `k`, and IVF's partitions, nprobe, storage."""
    from keras_rec.recommender.index.ivf_top_k import IVFTopK

    if not isinstance(layer, IVFTopK):
        return {"index": "exact", "items": layer.num_candidates, "k": layer.k}
    sizes = layer.partitions().sizes()
    return {
        "index": "ivf",
        "items": layer.num_candidates,
        "k": layer.k,
        "num_partitions": layer.num_partitions,
        "nprobe": layer.nprobe,
        "storage": layer.storage,
        "partition_sizes": {
            "min": int(sizes.min()),
            "median": int(np.median(sizes)),
            "max": int(sizes.max()),
        },
    }


def padded_rows(lists, rows) -> np.ndarray:
    """Lists `rows` of `lists` (e.g. `UserItemLists`) as an int64 `[len(rows), M]`, -1 padded."""
    picked = [np.asarray(lists[int(row)], np.int64) for row in rows]
    width = max([len(p) for p in picked] + [0])
    padded = np.full((len(picked), width), -1, np.int64)
    for index, values in enumerate(picked):
        padded[index, : len(values)] = values
    return padded


def user_sample(user_vectors, seen_items=None):
    """`sample_queries` for a user-facing index: seeded users, their seen items excluded.

    The served queries are these users' own vectors, so the recall tuned on
    them is the recall they get (`add_items` re-measures it on the same sample).
    """

    def sample():
        rows = tuning_rows(len(user_vectors), seed=0)
        exclude = None if seen_items is None else padded_rows(seen_items, rows)
        description = {"from": "users", "seen_items_excluded": seen_items is not None}
        return np.asarray(user_vectors, np.float32)[rows], exclude, description

    return sample


def item_queries(item_vectors, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Queries made from the items, for tuning `nprobe` when no real ones are given.

    An item vector as its own query finds itself, in its own partition, and
    overstates the recall of real queries, which sit near the items but not
    on them. Each of a seeded sample of items (`tuning_rows`) is moved, in a
    random direction, half the distance to its nearest other item (about
    the radius of the region where it is still the nearest item), keeping
    its norm; its own row is excluded from the exact and the approximate
    top K. On clustered data this tracks the recall of queries drawn near
    the items (`benchmarks/retrieval_index.py`).

    Returns:
        `(queries [Q, D], exclude [Q, 1] (each query's own row), description)`;
        the description (JSON-ready) is what the index report records.
    """
    item_vectors = np.asarray(item_vectors, np.float32)
    rows = tuning_rows(len(item_vectors), seed)
    picked = item_vectors[rows]
    own = rows.reshape(-1, 1).astype(np.int64)
    nearest = exact_top_k(item_vectors, picked, 1, own)[:, 0]
    distance = np.linalg.norm(item_vectors[nearest] - picked, axis=1)
    direction = np.random.default_rng(seed).standard_normal(picked.shape).astype(np.float32)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    moved = picked + direction * (0.5 * distance)[:, None]
    norms = np.linalg.norm(picked, axis=1, keepdims=True)
    moved *= norms / np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12)
    description = {
        "from": "items",
        "own_row_excluded": True,
        "moved": "half the distance to the nearest other item, random direction",
        "median_distance_moved": round(float(np.median(0.5 * distance)), 5),
    }
    return moved.astype(np.float32), own, description


def tuning_rows(count: int, seed: int) -> np.ndarray:
    """The seeded sample of query rows `nprobe` is tuned on (all when <= `TUNING_QUERIES`)."""
    if count <= TUNING_QUERIES:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, TUNING_QUERIES, replace=False))


def tune_nprobe(layer, item_vectors, queries, exclude, target_recall: float):
    """The smallest `nprobe` reaching `target_recall`@k against exact on `queries`.

    Recall is `overlap_recall` with ties counted (duplicate items).

    Tries 1, 2, 4, ... partitions, then bisects between the last two, and
    sets the layer's `nprobe` to the answer. With compressed storage
    (bfloat16, int8), which caps recall below 1, the search stops when
    doubling `nprobe` gains less than `PLATEAU_GAIN` recall before the
    target: more partitions would only cost time, and the report's
    `recall` says what was reached. Float32 storage at full probe is exact,
    so its search goes on to the target (recall can stay flat over a few
    doublings and then rise).

    Returns:
        `(nprobe, recall at it, [[nprobe, recall], ...] in the order tried)`.
    """
    exact = exact_top_k(item_vectors, queries, layer.k, exclude)
    tried: dict[int, float] = {}
    search = searcher(layer)

    def recall_at(nprobe: int) -> float:
        if nprobe not in tried:
            layer.set_nprobe(nprobe)
            tried[nprobe] = overlap_recall(search(queries, exclude), exact, item_vectors, queries)
        return tried[nprobe]

    # Below `floor`, some queries probe more partitions than `nprobe` (to
    # hold k + their excluded items), so recall can be flat without a cap.
    floor = probes_needed(layer, queries, exclude)
    low, high = 0, 1
    while recall_at(high) < target_recall and high < layer.num_partitions:
        capped = layer.storage != "float32"  # float32 at full probe is exact
        if capped and 0 < low and floor <= low and recall_at(high) - recall_at(low) < PLATEAU_GAIN:
            logger.warning(
                "IVF recall@%d levels off at %.4f (nprobe %d -> %d), below the target %.4f: "
                "keeping nprobe %d. Float32 storage or more partitions may reach it.",
                layer.k, recall_at(high), low, high, target_recall, low,
            )  # fmt: skip
            high = low
            break
        low, high = high, min(2 * high, layer.num_partitions)
    while high - low > 1 and recall_at(high) >= target_recall:
        middle = (low + high) // 2
        if recall_at(middle) >= target_recall:
            high = middle
        else:
            low = middle
    layer.set_nprobe(high)
    curve = [[n, round(r, 5)] for n, r in tried.items()]
    return high, round(tried[high], 5), curve


def probes_needed(layer, queries, exclude=None) -> int:
    """The most partitions any of `queries` must probe to hold k + its excluded items."""
    partitions = layer.partitions()
    needed = layer.k + (0 if exclude is None else (np.asarray(exclude) >= 0).sum(axis=1))
    ranked = np.argsort(-(np.asarray(queries, np.float32) @ partitions.centroids.T), axis=1)
    held = np.cumsum(partitions.sizes()[ranked], axis=1)
    counts = (held < np.reshape(needed, (-1, 1))).sum(axis=1) + 1
    return int(min(counts.max(), layer.num_partitions))


def exact_top_k(item_vectors, queries, k: int, exclude=None) -> np.ndarray:
    """Rows of the exact top-k items by inner product, `[Q, k]`, excluded rows left out."""
    item_vectors = np.asarray(item_vectors, np.float32)
    queries = np.asarray(queries, np.float32)
    if exclude is not None:
        exclude = np.asarray(exclude, np.int64)
        excluded_queries, columns = np.nonzero(exclude >= 0)
        excluded_rows = exclude[excluded_queries, columns]
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(item_vectors), _EXACT_BLOCK):
        scores = queries @ item_vectors[start : start + _EXACT_BLOCK].T
        if exclude is not None:
            inside = (excluded_rows >= start) & (excluded_rows < start + scores.shape[1])
            scores[excluded_queries[inside], excluded_rows[inside] - start] = -np.inf
        rows = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        scores = np.concatenate([best_scores, scores], axis=1)
        rows = np.concatenate([best_rows, rows], axis=1)
        keep = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, keep, axis=1)
        best_rows = np.take_along_axis(rows, keep, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, axis=1)


def overlap_recall(found, exact, item_vectors=None, queries=None) -> float:
    """Mean share of each query's exact top-k that `found` also returned.

    With `item_vectors` and `queries` (the rows `found` and `exact` index),
    ties count: a found item scoring within `TIE_TOLERANCE` (relative) of
    the query's k-th exact score is a hit too. Duplicate items score the
    same, and which of them a top-k keeps depends on the order its sums
    ran in (AVX2 vs AVX-512 kernels), not on the index.
    """
    found, exact = np.asarray(found), np.asarray(exact)
    if item_vectors is None:
        hits = [len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact)]
        return float(np.mean(hits) / exact.shape[1])
    vectors = np.asarray(item_vectors, np.float32)
    queries = np.asarray(queries, np.float32)

    def scores_of(rows):
        return np.einsum("qd,qkd->qk", queries, vectors[np.maximum(rows, 0)])

    kth = np.where(exact >= 0, scores_of(exact), np.inf).min(axis=1, keepdims=True)
    valid = found >= 0
    tied = scores_of(found) >= kth - TIE_TOLERANCE * np.maximum(np.abs(kth), 1.0)
    in_exact = _row_isin(found, exact)
    hits = np.minimum((valid & (in_exact | tied)).sum(axis=1), exact.shape[1])
    return float(np.mean(hits) / exact.shape[1])


def _row_isin(found: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """`[Q, k]` bool: whether each `found[q, j]` is in row `exact[q]` (rows >= -1).

    One `np.isin` over keys made unique per row (`row * width + value`),
    instead of one call per query.
    """
    width = int(max(found.max(initial=-1), exact.max(initial=-1))) + 2
    rows = np.arange(len(found), dtype=np.int64)[:, None] * width
    return np.isin(rows + found + 1, rows + exact + 1)


def searcher(layer):
    """`queries[, exclude] -> found identifiers` in batches, through one traced call of `layer`."""
    import tensorflow as tf

    call = tf.function(lambda *args: layer(*args), reduce_retracing=True)

    def search(queries, exclude=None, batch: int = 256) -> np.ndarray:
        found = []
        for start in range(0, len(queries), batch):
            args = [tf.constant(queries[start : start + batch], tf.float32)]
            if exclude is not None:
                args.append(tf.constant(exclude[start : start + batch], tf.int64))
            found.append(call(*args)[1].numpy())
        return np.concatenate(found)

    return search


def _sample(queries, exclude, seed: int):
    queries = np.asarray(queries, np.float32)
    rows = tuning_rows(len(queries), seed)
    exclude = None if exclude is None else np.asarray(exclude, np.int64)[rows]
    return queries[rows], exclude


def index_metadata(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its bulky parts (the curve), for `keras_rec_export.json`."""
    return {key: value for key, value in report.items() if key != "curve"}
