"""Two-tower quality against TFRS's basic-retrieval model on MovieLens-100K, and speed.

Protocol (TFRS basic-retrieval tutorial): 100k ratings reduced to (user id,
movie title "Title (Year)"); `tf.random.set_seed(42)`; shuffle with seed 42
and `reshuffle_each_iteration=False`; first 80k train, next 20k test;
candidates = all movies. Every model below is scored by the same code:

1. TFRS's tutorial model rebuilt in Keras 3 (32-d id embeddings, Adagrad 0.1,
   batch 8,192, 3 epochs, summed in-batch softmax): `tfrs_*`.
2. The popularity baseline (training counts): `popularity_*`.
3. `keras-rec train-recommender`'s two towers on all-MiniLM-L6-v2 embeddings
   of the user and item texts (default settings).

Figures: top-100 categorical accuracy per test pair (TFRS's
`FactorizedTopK`), and per user with training items removed Recall@10,
NDCG@10. Targets: top-100 >= 0.30 and both per-user figures >= 1.2x TFRS's.
Cold start: 10% of the items held out of training entirely (same base
split), their Recall@10/@100 for our model and the id-only one.

Speed: training examples/s; latency p50/p99 of top-10 retrieval through an
exported SavedModel over 100k and 1M synthetic 128-d item vectors, one
query and batches of 256, beside numpy's brute force (argpartition) on the
same vectors in the same run.

    python benchmarks/recommender_quality.py [--epochs 10] [--skip-speed | --speed-only]

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

PER_USER_TARGET = 1.2
TOP100_TARGET = 0.30


def quality(args) -> dict:
    from keras_rec.recommender.id_only_baseline import train_id_only_baseline
    from keras_rec.recommender.retrieval_evaluation import evaluate_retrieval, popularity_baseline
    from keras_rec.recommender.train_recommender import (
        RecommenderTrainingConfig,
        fit_retrieval,
        prepare_movielens_inputs,
        tower_vectors,
    )

    results = {}
    for name, fraction in (("protocol", 0.0), ("cold", args.cold_start_fraction)):
        config = RecommenderTrainingConfig(
            epochs=args.epochs, cold_start_fraction=fraction, seed=args.seed
        )
        _, inputs, _, _ = prepare_movielens_inputs(config)
        retrieval, _, seconds = fit_retrieval(config, inputs)
        users, items = tower_vectors(retrieval, inputs)
        ours = evaluate_retrieval(users @ items.T, inputs)
        tfrs_users, tfrs_items = train_id_only_baseline(
            inputs.train_users,
            inputs.train_items,
            inputs.num_users,
            inputs.num_items,
            seed=args.seed,
        )
        tfrs = evaluate_retrieval(tfrs_users @ tfrs_items.T, inputs)
        results[name] = {
            "ours": ours,
            "tfrs": tfrs,
            "popularity": popularity_baseline(inputs),
            "train_examples_per_second": round(
                config.epochs * len(inputs.train_items) / seconds, 1
            ),
            "train_pairs": int(len(inputs.train_items)),
            "test_pairs": int(len(inputs.test_items)),
        }
        print(name, json.dumps(results[name]), flush=True)
    return results


def _percentiles(times_s) -> dict:
    times = np.asarray(times_s) * 1e3
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
    }


def retrieval_latency(num_items: int, dim: int, repeats: int, seed: int = 0) -> dict:
    """Top-10 latency of an exported `BruteForceTopK` SavedModel vs numpy, same vectors."""
    import keras
    import tensorflow as tf

    from keras_rec.recommender.brute_force_top_k import BruteForceTopK
    from keras_rec.serving import export

    rng = np.random.default_rng(seed)
    items = rng.normal(size=(num_items, dim)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    query = keras.Input(shape=(dim,), name="query")
    scores, ids = BruteForceTopK(items, k=10, name="index")(query)
    model = keras.Model(query, {"scores": scores, "item_ids": ids})
    queries = rng.normal(size=(256, dim)).astype(np.float32)
    with tempfile.TemporaryDirectory() as base:
        result = export(
            model,
            base,
            "index",
            examples={"query": queries[:2]},
            chief=True,
            serving_check=False,
            warmup=False,
        )
        serve = tf.saved_model.load(result.path).signatures["serving_default"]
        figures = {}
        for batch in (1, 256):
            q = tf.constant(queries[:batch])
            expected = np.argsort(-(queries[:batch] @ items.T), axis=1)[:, :10]
            got = serve(query=q)["item_ids"].numpy()
            assert (got == expected).mean() > 0.999, "served top-10 differs from numpy"
            served, reference = [], []
            count = repeats if batch == 1 else max(5, repeats // 10)
            for _ in range(count):
                start = time.perf_counter()
                serve(query=q)["item_ids"].numpy()
                served.append(time.perf_counter() - start)
                start = time.perf_counter()
                s = queries[:batch] @ items.T
                part = np.argpartition(-s, 10, axis=1)[:, :10]
                np.take_along_axis(part, np.argsort(-np.take_along_axis(s, part, 1), 1), 1)
                reference.append(time.perf_counter() - start)
            figures[f"batch_{batch}"] = {
                "saved_model": _percentiles(served),
                "numpy": _percentiles(reference),
                "p50_ratio_vs_numpy": round(float(np.median(reference) / np.median(served)), 3),
            }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cold-start-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=200, help="single-query latency calls")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()

    if args.speed_only:
        print(
            json.dumps(
                {
                    "retrieval_latency": {
                        f"{n // 1000}k_items": retrieval_latency(n, 128, args.repeats)
                        for n in (100_000, 1_000_000)
                    }
                }
            )
        )
        return
    results = quality(args)
    protocol, cold = results["protocol"], results["cold"]
    ours, tfrs, popularity = protocol["ours"], protocol["tfrs"], protocol["popularity"]
    summary = {
        "top100_accuracy": ours["top100_accuracy"],
        "user_recall_at_10": ours["user_recall_at_10"],
        "user_ndcg_at_10": ours["user_ndcg_at_10"],
        "user_recall_at_100": ours["user_recall_at_100"],
        "user_mrr": ours["user_mrr"],
        "cold_start_recall_at_10": cold["ours"]["cold_start_recall_at_10"],
        "cold_start_recall_at_100": cold["ours"]["cold_start_recall_at_100"],
        "cold_split_top100_accuracy": cold["ours"]["top100_accuracy"],
        "tfrs_top100_accuracy": tfrs["top100_accuracy"],
        "tfrs_user_recall_at_10": tfrs["user_recall_at_10"],
        "tfrs_user_ndcg_at_10": tfrs["user_ndcg_at_10"],
        "tfrs_cold_start_recall_at_10": cold["tfrs"]["cold_start_recall_at_10"],
        "tfrs_cold_start_recall_at_100": cold["tfrs"]["cold_start_recall_at_100"],
        "popularity_top100_accuracy": popularity["top100_accuracy"],
        "popularity_user_recall_at_10": popularity["user_recall_at_10"],
        "popularity_user_ndcg_at_10": popularity["user_ndcg_at_10"],
        "popularity_cold_start_recall_at_100": cold["popularity"]["cold_start_recall_at_100"],
        "recall_at_10_ratio_vs_tfrs": round(
            ours["user_recall_at_10"] / tfrs["user_recall_at_10"], 3
        ),
        "ndcg_at_10_ratio_vs_tfrs": round(ours["user_ndcg_at_10"] / tfrs["user_ndcg_at_10"], 3),
        "train_examples_per_second": protocol["train_examples_per_second"],
    }
    summary["targets_met"] = bool(
        summary["top100_accuracy"] >= TOP100_TARGET
        and summary["recall_at_10_ratio_vs_tfrs"] >= PER_USER_TARGET
        and summary["ndcg_at_10_ratio_vs_tfrs"] >= PER_USER_TARGET
    )
    if not args.skip_speed:
        summary["retrieval_latency"] = {
            f"{n // 1000}k_items": retrieval_latency(n, 128, args.repeats)
            for n in (100_000, 1_000_000)
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
