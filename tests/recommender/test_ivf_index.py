"""The IVF item index: equal to brute force at full probe, recall when pruning, exclusions."""

import json
import os

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from helpers import assert_config_round_trip

from keras_rec.cli import main
from keras_rec.recommender.index.brute_force_top_k import BruteForceTopK
from keras_rec.recommender.index.item_index import (
    INDEX_FILE,
    ItemIndexSettings,
    build_item_index,
    exact_top_k,
    item_queries,
    overlap_recall,
    resolve_index_type,
)
from keras_rec.recommender.index.ivf_partitions import IVFPartitions, kmeans_partitions
from keras_rec.recommender.index.ivf_top_k import IVFTopK
from keras_rec.recommender.index.recall_recheck import measured_recall, recheck_line, recheck_recall
from keras_rec.serving.fresh_process import answer_in_fresh_process
from keras_rec.serving.versioned_dir import list_versions


def clustered(num_items=3000, dim=16, clusters=40, seed=0):
    """Unit vectors around `clusters` centers, and queries near random items."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    items = centers[rng.integers(0, clusters, num_items)] + 0.4 * rng.normal(size=(num_items, dim))
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    queries = items[rng.integers(0, num_items, 300)] + 0.1 * rng.normal(size=(300, dim))
    return items.astype(np.float32), queries.astype(np.float32)


def test_ivf_equals_exact_when_every_partition_is_probed():
    items, queries = clustered()
    ivf = IVFTopK(items, np.arange(len(items)) + 100, k=10, num_partitions=30, nprobe=30)
    exact = BruteForceTopK(items, np.arange(len(items)) + 100, k=10)
    exclude = np.full((len(queries), 4), -1, np.int64)
    exclude[:, :2] = exact_top_k(items, queries, 2)  # each query's two best items
    for args in ((queries,), (queries, exclude)):
        ivf_scores, ivf_ids = ivf(*args)
        exact_scores, exact_ids = exact(*args)
        np.testing.assert_allclose(ivf_scores, exact_scores, atol=1e-5)
        np.testing.assert_array_equal(ivf_ids, exact_ids)


def test_ivf_recall_on_a_clustered_set_with_pruning():
    items, queries = clustered()
    tune, held_out = queries[:150], queries[150:]
    settings = ItemIndexSettings("ivf", target_recall=0.95, num_partitions=50)
    layer, report = build_item_index(items, 10, settings, sample_queries=tune)
    assert report["index"] == "ivf" and report["num_partitions"] == 50
    assert report["recall"] >= 0.95 and report["nprobe"] < 25  # it prunes
    assert [nprobe for nprobe, _ in report["curve"]][0] == 1
    found = layer(held_out)[1].numpy()
    assert overlap_recall(found, exact_top_k(items, held_out, 10)) >= 0.9


def test_recall_counts_duplicate_items_as_ties():
    """Which of two equal items a top-k keeps is not the index's doing (kernel sum order)."""
    items, queries = clustered(num_items=500)
    items = np.concatenate([items, items])  # every item twice: rows i and i + 500
    best = exact_top_k(items, queries, 1)
    other_copy = np.where(best < 500, best + 500, best - 500)
    assert overlap_recall(other_copy, best) == 0.0
    assert overlap_recall(other_copy, best, items, queries) == 1.0
    exact = exact_top_k(items, queries, 10)
    # A genuinely worse item is still a miss.
    worse = exact.copy()
    worse[:, -1] = exact_top_k(items, queries, 60)[:, -1]
    assert overlap_recall(worse, exact, items, queries) == pytest.approx(0.9)
    # nprobe is tuned on that recall: all duplicates, yet the target is met before full probe.
    settings = ItemIndexSettings("ivf", target_recall=0.95, num_partitions=40)
    _, report = build_item_index(items, 10, settings, sample_queries=queries)
    assert report["recall"] >= 0.95 and report["nprobe"] < 40


def test_padding_and_excluded_items_are_never_returned():
    """Partitions smaller than k + excluded: the query probes on until it has enough."""
    items, queries = clustered(num_items=400)
    # 200 partitions of 1 item, one of 200: nprobe 1 often reaches a 1-item partition.
    assignments = np.concatenate([np.arange(200), np.full(200, 200)]).astype(np.int32)
    centroids = np.concatenate([items[:200], items[200:].mean(0, keepdims=True)])
    partitions = IVFPartitions(centroids, assignments)
    layer = IVFTopK(items, k=8, partitions=partitions, nprobe=1)
    exclude = exact_top_k(items, queries, 5)  # the five best of each query excluded
    scores, ids = (t.numpy() for t in layer(queries, exclude))
    assert np.isfinite(scores).all()
    assert ((ids >= 0) & (ids < len(items))).all()
    assert all(len(set(row)) == 8 for row in ids.tolist())
    assert not any(set(row) & set(ex) for row, ex in zip(ids.tolist(), exclude.tolist()))
    # Scores are the items' own, best first.
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, items[ids]), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


@pytest.mark.parametrize("storage", ["bfloat16", "int8"])
def test_compressed_storage_keeps_recall_and_shrinks(storage):
    items, queries = clustered(dim=64)
    layer = IVFTopK(items, k=10, num_partitions=20, nprobe=20, storage=storage)
    found = layer(queries)[1].numpy()
    assert overlap_recall(found, exact_top_k(items, queries, 10)) >= 0.9
    assert layer.vectors.dtype == storage
    np.testing.assert_allclose(layer.item_vectors(), items, atol=0.02)


def test_ivf_config_round_trip_and_weights_only_rebuild():
    items, queries = clustered(num_items=500)
    layer = IVFTopK(items, k=5, num_partitions=10, nprobe=3, storage="int8", seed=4)
    rebuilt = assert_config_round_trip(layer)
    for name in ("centroids", "offsets", "vectors", "scales", "rows", "identifiers"):
        getattr(rebuilt, name).assign(getattr(layer, name))
    rebuilt.nprobe_variable.assign(layer.nprobe_variable)
    np.testing.assert_array_equal(rebuilt(queries)[1], layer(queries)[1])
    assert rebuilt.get_config()["nprobe"] == 3


def test_kmeans_partitions_are_seeded_and_assign_every_item():
    items, _ = clustered()
    first = kmeans_partitions(items, 25, seed=3)
    second = kmeans_partitions(items, 25, seed=3)
    np.testing.assert_array_equal(first.assignments, second.assignments)
    assert first.sizes().sum() == len(items) and len(first.centroids) == 25
    added = first.add(items[:7])
    np.testing.assert_array_equal(added.assignments[-7:], first.assignments[:7])
    with pytest.raises(ValueError, match="num_partitions"):
        kmeans_partitions(items, len(items) + 1)
    with pytest.raises(ValueError, match="NaN"):
        kmeans_partitions(np.full((10, 4), np.nan))


def test_index_choice_and_bad_settings():
    assert resolve_index_type("auto", 99_999) == "exact"
    assert resolve_index_type("auto", 100_000) == "ivf"
    with pytest.raises(ValueError, match="`index` must be one of"):
        ItemIndexSettings("hnsw")
    with pytest.raises(ValueError, match="target_recall"):
        ItemIndexSettings("ivf", target_recall=1.5)
    with pytest.raises(ValueError, match="storage"):
        ItemIndexSettings("ivf", storage="float16")
    with pytest.raises(ValueError, match="sample_queries"):
        build_item_index(np.eye(4, dtype=np.float32), 2, ItemIndexSettings("ivf"))
    with pytest.raises(ValueError, match="nprobe"):
        IVFTopK(np.eye(4, dtype=np.float32), k=2, nprobe=0)


def _write_vectors(path, ids, vectors, id_column="sku"):
    from keras_rec.embeddings.embed_table import write_embeddings_parquet

    write_embeddings_parquet(pd.DataFrame({id_column: ids}), vectors, str(path))


def test_build_index_cli_exports_a_served_ivf_model(tmp_path, capsys):
    items, queries = clustered()
    ids = np.array([f"sku-{i}" for i in range(len(items))], object)
    _write_vectors(tmp_path / "items.parquet", ids, items)
    _write_vectors(tmp_path / "queries.parquet", np.arange(len(queries)), queries, "query")
    argv = [
        "build-index",
        "--item-vectors",
        str(tmp_path / "items.parquet"),
        "--id-column",
        "sku",
        "--index",
        "ivf",
        "--index-recall",
        "0.95",
        "--queries",
        str(tmp_path / "queries.parquet"),
        "--k",
        "10",
        "--output-dir",
        str(tmp_path / "models"),
        "--model-name",
        "similar_items",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["path"].endswith("similar_items/1")
    with open(os.path.join(summary["path"], "assets.extra", INDEX_FILE)) as file:
        recorded = json.load(file)
    assert recorded["index"] == "ivf" and recorded["recall"] >= 0.95
    assert recorded["tuning_queries_from"].endswith("queries.parquet")
    # As TF Serving runs it: the Session loader in a TensorFlow-only process.
    served = answer_in_fresh_process(
        summary["path"], {"q": ("serving_default", {"query": queries[:50]})}, ["session"]
    )
    answer = served["answers"]["session"]["q"]
    assert answer["item_ids"].shape == (50, 10)
    found = [[ids.tolist().index(i.decode()) for i in row] for row in answer["item_ids"]]
    assert overlap_recall(found, exact_top_k(items, queries[:50], 10)) >= 0.9
    # A file without the id column: a clear error and no new version.
    assert main([*argv[:2], str(tmp_path / "queries.parquet"), *argv[3:]]) == 2
    assert "sku" in capsys.readouterr().err
    assert list_versions(str(tmp_path / "models" / "similar_items")) == [1]


def test_build_index_auto_is_exact_for_a_small_catalogue(tmp_path, capsys):
    items, _ = clustered(num_items=200)
    _write_vectors(tmp_path / "items.parquet", np.arange(200) + 1, items)
    argv = ["build-index", "--item-vectors", str(tmp_path / "items.parquet")]
    argv += ["--id-column", "sku", "--output-dir", str(tmp_path), "--model-name", "m"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["index"]["index"] == "exact"
    serve = tf.saved_model.load(summary["path"]).signatures["serving_default"]
    ids = serve(query=tf.constant(items[:3]))["item_ids"].numpy()
    assert ids[:, 0].tolist() == [1, 2, 3]  # each item is its own nearest


def test_ivf_layer_is_a_keras_layer():
    assert isinstance(IVFTopK(np.eye(4, dtype=np.float32), k=2), keras.layers.Layer)


def test_tuning_reaches_the_target_when_exclusions_widen_the_probe():
    """Many excluded items make small nprobe values probe alike: not a recall ceiling."""
    items, queries = clustered(num_items=2000)
    exclude = exact_top_k(items, queries, 150)  # each query's 150 best are "seen"
    settings = ItemIndexSettings("ivf", target_recall=0.99, num_partitions=40)
    _, report = build_item_index(
        items, 20, settings, sample_queries=queries, sample_exclude=exclude
    )
    assert report["recall"] >= 0.99, report["curve"]


def test_item_queries_sit_near_the_items_and_exclude_their_own_row():
    items, _ = clustered()
    queries, own, description = item_queries(items, seed=0)
    assert own.shape == (len(queries), 1) and len(np.unique(own)) == len(queries)
    picked = items[own[:, 0]]
    np.testing.assert_allclose(
        np.linalg.norm(queries, axis=1), np.linalg.norm(picked, axis=1), rtol=1e-5
    )
    moved = np.linalg.norm(queries - picked, axis=1)
    assert (moved > 0).all()  # never the item itself
    nearest = exact_top_k(items, picked, 1, own)[:, 0]
    half_way = 0.5 * np.linalg.norm(items[nearest] - picked, axis=1)
    # Half-way to the nearest other item, give or take the norm being kept.
    assert (moved <= half_way * 1.02).all() and np.median(moved / half_way) > 0.9
    assert description["from"] == "items" and description["own_row_excluded"] is True
    assert description["median_distance_moved"] == pytest.approx(np.median(half_way), rel=1e-4)


def test_build_index_without_queries_reports_the_recall_of_queries_near_the_items(tmp_path, capsys):
    """The recorded recall is that of queries near the items, not of the items themselves."""
    items, _ = clustered(num_items=3000)
    rng = np.random.default_rng(5)
    near = items[rng.integers(0, len(items), 1000)] + 0.1 * rng.normal(size=(1000, 16))
    near = (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)
    _write_vectors(tmp_path / "items.parquet", np.arange(len(items)), items)
    argv = ["build-index", "--item-vectors", str(tmp_path / "items.parquet"), "--id-column"]
    argv += ["sku", "--index", "ivf", "--index-recall", "0.95", "--output-dir", str(tmp_path)]
    assert main([*argv, "--model-name", "m"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with open(os.path.join(summary["path"], "assets.extra", INDEX_FILE)) as file:
        recorded = json.load(file)
    assert recorded["tuning_queries_from"] == "items"
    assert recorded["tuning_queries"]["own_row_excluded"] is True
    layer = IVFTopK(items, k=10, partitions=kmeans_partitions(items, None, 0))
    layer.set_nprobe(recorded["nprobe"])
    assert recorded["num_partitions"] == layer.num_partitions
    assert abs(recorded["recall"] - measured_recall(layer, items, near)) <= 0.01


def test_recall_is_rechecked_once_the_catalogue_grew_ten_percent():
    items, queries = clustered(num_items=2000)
    layer = IVFTopK(items, k=10, num_partitions=30, nprobe=3)
    recorded = {"index": "ivf", "items": 2000, "target_recall": 0.99, "recall": 0.995}
    sample = lambda: (queries, None, {"from": "users"})  # noqa: E731
    kept = recheck_recall(recorded, layer, items[:2150], sample)
    assert kept["recall_rechecked"] is False and kept["recall"] == 0.995
    assert "not re-measured" in recheck_line(kept)
    grown = IVFTopK(
        items, k=10, partitions=kmeans_partitions(items[:1800], 30, 0).add(items[1800:]), nprobe=3
    )
    figures = recheck_recall({**recorded, "items": 1800}, grown, items, sample)
    assert figures["recall_rechecked"] is True and figures["growth"] == pytest.approx(
        2000 / 1800 - 1, abs=1e-4
    )
    assert figures["recall"] == measured_recall(grown, items, queries) < 1
    assert figures["recall_holds"] == (figures["recall"] >= 0.99)
    assert figures["recall_before"] == 0.995 and figures["recall_measured_at_items"] == 2000
    assert "re-measured on the same users" in recheck_line(figures)
    assert recheck_recall({"index": "exact", "items": 10}, layer, items, sample) == {}
