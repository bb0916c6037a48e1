"""Recommender quality against the strongest baselines on MovieLens-100K, 3 seeds; and speed.

Protocol, for each seed s (split and model seeds): TFRS's basic-retrieval
split (shuffle with s: 80% train, 20% test), then a random 10% of training
carved out as validation (seed s + 1). Every hyperparameter and epoch
count of every model is chosen on validation (NDCG@10, training items
removed); each model is then refit on training + validation and scored
once on the test split by the same `evaluate_retrieval` (known items
removed per user):

1. popularity (training counts);
2. EASE (Steck 2019), l2 from `EASE_L2_GRID`;
3. item-kNN (cosine), neighbors from `KNN_NEIGHBORS_GRID`;
4. TFRS's tutorial model (32-d ids, Adagrad 0.1, batch 8,192), epochs 1-12
   chosen on validation;
5. our two towers on ids only (same recipe, no text: what the text adds),
   epochs by early stopping;
6. `keras-rec train-recommender` as a user runs it (default settings):
   the towers on all-MiniLM-L6-v2 embeddings (`retrieval`) and the
   two-stage model (`recommend`: top-100 re-ranked).

Ratios are against the strongest baseline (highest mean test NDCG@10 of
1-5). Targets: Recall@10 and NDCG@10 of the better keras_rec model (chosen
on validation) >= 1.05x the strongest baseline's. Cold start: 10% of the
items held out of training (seed s), their Recall@100 for our towers, for
a content-only model (each user's mean history text embedding against the
item text embeddings, no training) and at random.

Speed: latency p50/p99 of top-10 retrieval through an exported SavedModel
over 100k and 1M synthetic 128-d item vectors, one query and batches of
256, beside numpy's brute force (argpartition) on the same vectors.

    python benchmarks/recommender_quality.py [--seeds 42 43 44] [--skip-speed | --speed-only]

`--protocol temporal`: the next-item protocol instead (each user's last 2
ratings by time are the test; Markov, EASE, item-kNN, popularity and
RecBole's SASRec and GRU4Rec against `--user-model mean` and `sequence`):
see `next_item_protocol.py`. `--recbole off` leaves RecBole out (default:
run it when its venv exists, `benchmarks/recbole_env.sh`);
`--recbole-models`, `--recbole-epochs` and `--user-models` run a part of it.
`--protocol temporal-cold`: cold items on that protocol (10% of the items out
of training, their earlier ratings left in the users' histories), the towers'
`retrieval` and the sequence model's `retrieval` and `next_items` answered
through TF Serving's Session loader (`next_item_protocol.cold_start`).

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

TARGET_RATIO = 1.05
FIGURES = (
    "user_recall_at_10",
    "user_ndcg_at_10",
    "user_mrr",
    "user_recall_at_100",
    "top100_accuracy",
)
TFRS_MAX_EPOCHS = 12


def _figures(metrics: dict) -> dict:
    # The two-stage model has no top-100 accuracy: it never ranks known items.
    return {name: metrics[name] for name in FIGURES if name in metrics}


def baselines(config) -> dict:
    """Test figures of every baseline on `config`'s split, each tuned on validation."""
    from keras_rec.recommender.baselines.baseline_tuning import (
        SELECTION_METRIC,
        training_matrix,
        tune_ease,
        tune_item_knn,
        validation_choice,
    )
    from keras_rec.recommender.baselines.id_only_baseline import train_id_only_baseline
    from keras_rec.recommender.baselines.item_item_baselines import (
        ease_weights,
        item_item_scores,
        item_knn_weights,
    )
    from keras_rec.recommender.data.recommender_inputs import merge_validation, validation_view
    from keras_rec.recommender.evaluation.retrieval_evaluation import (
        evaluate_retrieval,
        popularity_baseline,
        vector_scores,
    )
    from keras_rec.recommender.stages.inputs import prepare_movielens_inputs

    _, inputs, _, _ = prepare_movielens_inputs(config)
    merged = merge_validation(inputs)
    view = validation_view(inputs)
    matrix = training_matrix(merged)
    results = {"popularity": {"test": _figures(popularity_baseline(merged))}}
    for name, tune, setting, weights_of in (
        ("ease", tune_ease, "l2", ease_weights),
        ("item_knn", tune_item_knn, "neighbors", item_knn_weights),
    ):
        value, on_validation = tune(inputs)
        scores = item_item_scores(matrix, weights_of(matrix, value))
        results[name] = {
            "chosen": {setting: value},
            "validation": validation_choice(on_validation),
            "test": _figures(evaluate_retrieval(scores, merged)),
        }
    tfrs_val = {}

    def score_epoch(epoch, users, items):
        tfrs_val[epoch] = evaluate_retrieval(vector_scores(users, items), view)[SELECTION_METRIC]

    ids = dict(num_users=inputs.num_users, num_items=inputs.num_items, seed=config.seed)
    train_id_only_baseline(
        inputs.train_users, inputs.train_items, epochs=TFRS_MAX_EPOCHS, on_epoch=score_epoch, **ids
    )
    epochs = max(tfrs_val, key=tfrs_val.get)
    users, items = train_id_only_baseline(
        merged.train_users, merged.train_items, epochs=epochs, **ids
    )
    results["tfrs_tutorial"] = {
        "chosen": {"epochs": epochs},
        "validation": {str(e): round(v, 4) for e, v in tfrs_val.items()},
        "test": _figures(evaluate_retrieval(vector_scores(users, items), merged)),
    }
    results["ours_ids_only"] = ids_only(config, inputs)
    return results


def ids_only(config, inputs) -> dict:
    """Our towers and recipe with no text: every embedding input a constant 0."""
    import keras

    from keras_rec.recommender.data.recommender_inputs import merge_validation
    from keras_rec.recommender.evaluation.retrieval_evaluation import (
        evaluate_retrieval,
        vector_scores,
    )
    from keras_rec.recommender.stages.towers import fit_retrieval, tower_vectors

    def without_text(x):
        zeros = {"item_embeddings": np.zeros((x.num_items, 1), np.float32)}
        users = np.zeros((x.num_users, 1), np.float32)
        return dataclasses.replace(
            x, **zeros, user_embeddings=users, user_history=users, user_text=False
        )

    config = dataclasses.replace(config, id_dropout=0.0)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    _, history, _ = fit_retrieval(config, without_text(inputs), callbacks=[stop])
    epochs = int(np.argmin(history.history["val_loss"])) + 1
    merged = without_text(merge_validation(inputs))
    retrieval, _, _ = fit_retrieval(dataclasses.replace(config, epochs=epochs), merged)
    users, items = tower_vectors(retrieval, merged)
    return {
        "chosen": {"epochs": epochs},
        "test": _figures(evaluate_retrieval(vector_scores(users, items), merged)),
    }


def ours(config) -> dict:
    """`train_recommender` with default settings: test figures of `retrieval` and `recommend`."""
    from keras_rec.recommender.train_recommender import train_recommender

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = train_recommender(dataclasses.replace(config, output_dir=out))
        seconds = time.perf_counter() - start
    validation = summary["validation"]
    held = validation["reranker"]
    return {
        "retrieval": {"test": _figures(summary)},
        "two_stage": {"test": _figures(summary["two_stage"])},
        "chosen": {
            "epochs": validation["chosen_epochs"],
            "item_item": validation.get("item_item", {}).get("chosen"),
            # The re-ranker's held-out validation users decide which model is "ours".
            "model": (
                "two_stage"
                if held["holdout_two_stage"]["user_ndcg_at_10"]
                > held["holdout_retrieval"]["user_ndcg_at_10"]
                else "retrieval"
            ),
        },
        "ranker": summary["ranker"],
        "seconds": round(seconds, 1),
    }


def cold_start(config) -> dict:
    """Recall@100 of held-out items: our towers, content only, random."""
    from keras_rec.recommender.data.recommender_inputs import merge_validation
    from keras_rec.recommender.evaluation.retrieval_evaluation import (
        evaluate_retrieval,
        vector_scores,
    )
    from keras_rec.recommender.stages.inputs import prepare_movielens_inputs
    from keras_rec.recommender.train_recommender import train_recommender

    config = dataclasses.replace(config, cold_start_fraction=0.1)
    with tempfile.TemporaryDirectory() as out:
        summary = train_recommender(
            dataclasses.replace(config, output_dir=out, recommend_candidates=0)
        )
    _, inputs, _, _ = prepare_movielens_inputs(config)
    merged = merge_validation(inputs)
    texts = merged.item_embeddings / np.linalg.norm(merged.item_embeddings, axis=1, keepdims=True)
    content = evaluate_retrieval(vector_scores(merged.user_history, texts), merged)
    seen = np.bincount(merged.train_users, minlength=merged.num_users)
    tested = np.flatnonzero(np.bincount(merged.test_users, minlength=merged.num_users))
    cold_tested = np.isin(merged.test_items, merged.cold_items)
    cold_users = np.unique(merged.test_users[cold_tested])
    random = float(np.mean(np.minimum(1.0, 100 / (merged.num_items - seen[cold_users]))))
    return {
        "ours_cold_start_recall_at_100": summary["cold_start_recall_at_100"],
        "ours_cold_start_recall_at_10": summary["cold_start_recall_at_10"],
        "content_only_cold_start_recall_at_100": content["cold_start_recall_at_100"],
        "content_only_cold_start_recall_at_10": content["cold_start_recall_at_10"],
        "random_cold_start_recall_at_100": round(random, 4),
        "cold_items": int(len(merged.cold_items)),
        "test_users": int(len(tested)),
    }


def mean_std(values) -> dict:
    values = np.asarray(values, np.float64)
    return {"mean": round(float(values.mean()), 4), "std": round(float(values.std(ddof=1)), 4)}


def quality(args) -> dict:
    from keras_rec.recommender.train_recommender import RecommenderTrainingConfig

    runs = []
    for seed in args.seeds:
        config = RecommenderTrainingConfig(seed=seed)
        run = {"seed": seed, **baselines(config)}
        ours_run = ours(config)
        run["ours_retrieval"] = ours_run["retrieval"]
        run["ours_two_stage"] = ours_run["two_stage"]
        run["ours_chosen"] = ours_run["chosen"]
        run["ranker"] = ours_run["ranker"]
        run["cold_start"] = cold_start(config) if not args.skip_cold else None
        print("seed", seed, json.dumps(run), flush=True)
        runs.append(run)
    models = [m for m in runs[0] if isinstance(runs[0][m], dict) and "test" in runs[0][m]]
    table = {
        model: {f: mean_std([r[model]["test"][f] for r in runs]) for f in runs[0][model]["test"]}
        for model in models
    }
    # "Ours" per seed: the model its validation chose.
    chosen = [r["ours_" + r["ours_chosen"]["model"]]["test"] for r in runs]
    table["ours_chosen"] = {
        f: mean_std([c[f] for c in chosen]) for f in FIGURES if all(f in c for c in chosen)
    }
    baseline_names = ("popularity", "ease", "item_knn", "tfrs_tutorial", "ours_ids_only")
    strongest = max(baseline_names, key=lambda m: table[m]["user_ndcg_at_10"]["mean"])
    ratios = {
        model: {
            f: round(table[model][f]["mean"] / table[strongest][f]["mean"], 3)
            for f in ("user_recall_at_10", "user_ndcg_at_10")
        }
        for model in ("ours_retrieval", "ours_two_stage", "ours_chosen")
    }
    cold = [r["cold_start"] for r in runs if r["cold_start"]]
    return {
        "seeds": list(args.seeds),
        "table": table,
        "strongest_baseline": strongest,
        "ratios_vs_strongest": ratios,
        "targets_met": all(v >= TARGET_RATIO for v in ratios["ours_chosen"].values()),
        "cold_start": {key: mean_std([c[key] for c in cold]) for key in (cold[0] if cold else {})},
        "ranker": {
            "test_auc": mean_std([r["ranker"]["test_auc"] for r in runs]),
            "test_per_user_auc": mean_std([r["ranker"]["test_per_user_auc"] for r in runs]),
            "popularity_test_auc": mean_std(
                [r["ranker"]["popularity_test_auc"]["pooled_auc"] for r in runs]
            ),
            "popularity_test_per_user_auc": mean_std(
                [r["ranker"]["popularity_test_auc"]["per_user_auc"] for r in runs]
            ),
        },
        "runs": runs,
    }


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

    from keras_rec.recommender.index.brute_force_top_k import BruteForceTopK
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--repeats", type=int, default=200, help="single-query latency calls")
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument(
        "--protocol",
        choices=("random", "temporal", "temporal-cold"),
        default="random",
        help="temporal-cold: cold items on the temporal protocol, through the served models",
    )
    parser.add_argument("--recbole", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--recbole-models", default="SASRec,GRU4Rec", help="temporal protocol")
    parser.add_argument(
        "--recbole-epochs", default="10,20,40,80", help="the epochs RecBole's peers choose from"
    )
    parser.add_argument("--user-models", default="mean,sequence", help="temporal protocol: ours")
    args = parser.parse_args()

    summary = {}
    if args.protocol == "temporal-cold" and not args.speed_only:
        from next_item_protocol import temporal_cold_start

        summary = temporal_cold_start(args.seeds, mean_std)
    elif args.protocol == "temporal" and not args.speed_only:
        from next_item_protocol import recbole_available, temporal_quality

        recbole = args.recbole == "on" or (args.recbole == "auto" and recbole_available())
        summary = temporal_quality(
            args.seeds,
            _figures,
            mean_std,
            TARGET_RATIO,
            recbole_models=args.recbole_models.split(",") if recbole else (),
            recbole_epochs=tuple(int(e) for e in args.recbole_epochs.split(",")),
            user_models=tuple(args.user_models.split(",")),
        )
    elif not args.speed_only:
        summary = quality(args)
    if not args.skip_speed:
        summary["retrieval_latency"] = {
            f"{n // 1000}k_items": retrieval_latency(n, 128, args.repeats)
            for n in (100_000, 1_000_000)
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
