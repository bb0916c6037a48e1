"""The temporal (next-item) protocol of `recommender_quality.py --protocol temporal`.

MovieLens-100K, per user by time: each user's last 2 ratings (ties broken
by item id) are the test; each user's last training rating is the
validation. Every model is tuned on validation (NDCG@10, known items
removed), refit on training + validation with the chosen settings, and
scored once on the test by the same `evaluate_retrieval` (training and
validation items removed per user):

1. popularity; EASE (l2 grid); item-kNN (neighbors grid);
2. a first-order Markov baseline (`keras_rec.recommender.baselines.
   markov_baseline`: transitions within `window` steps, cosine-normalized,
   scored from the latest `history` items with `decay`; 96 settings);
3. RecBole 1.2.1's SASRec and GRU4Rec (`recbole_peers.py`, in their own
   venv; full cross-entropy; epochs chosen on validation from
   `RECBOLE_EPOCHS`), when the venv exists (`benchmarks/recbole_env.sh`);
4. `keras-rec train-recommender --split leave-last-out --leave-last 2`
   with `--user-model mean` and `--user-model sequence` (each with its
   two-stage model), all else default; "ours" per seed is the model with
   the best validation NDCG@10 (the re-ranker's held-out users decide
   between a user model and its two-stage model).

The split has no randomness: the seeds change the models' initialization
(and RecBole's), not the data, so the deterministic baselines (1, 2) are
fit once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

RECBOLE_MODELS = ("SASRec", "GRU4Rec")
RECBOLE_EPOCHS = (10, 20, 40, 80)
RECBOLE_VENV = os.environ.get("RECBOLE_VENV", os.path.expanduser("~/.cache/keras_rec/recbole-venv"))
PROTOCOL = {"split": "leave-last-out", "leave_last": 2}


def temporal_config(seed: int, **overrides):
    from keras_rec.training.recommender_config import RecommenderTrainingConfig

    return RecommenderTrainingConfig(seed=seed, **PROTOCOL, **overrides)


def deterministic_baselines(config, figures) -> dict:
    """Popularity, EASE, item-kNN and Markov, each tuned on validation, scored on the test."""
    from keras_rec.recommender.baselines.baseline_tuning import (
        training_matrix,
        tune_ease,
        tune_item_knn,
        validation_choice,
    )
    from keras_rec.recommender.baselines.item_item_baselines import (
        ease_weights,
        item_item_scores,
        item_knn_weights,
    )
    from keras_rec.recommender.baselines.markov_baseline import markov_scores, tune_markov
    from keras_rec.recommender.data.recommender_inputs import merge_validation, validation_view
    from keras_rec.recommender.data.user_sequences import time_ordered_items
    from keras_rec.recommender.evaluation.retrieval_evaluation import (
        evaluate_retrieval,
        popularity_baseline,
    )
    from keras_rec.recommender.stages.inputs import prepare_movielens_inputs

    _, inputs, _, _ = prepare_movielens_inputs(config)
    merged, view = merge_validation(inputs), validation_view(inputs)
    matrix = training_matrix(merged)
    results = {
        "popularity": {
            "validation": figures(popularity_baseline(view)),
            "test": figures(popularity_baseline(merged)),
        }
    }
    for name, tune, setting, weights_of in (
        ("ease", tune_ease, "l2", ease_weights),
        ("item_knn", tune_item_knn, "neighbors", item_knn_weights),
    ):
        value, on_validation = tune(inputs)
        scores = item_item_scores(matrix, weights_of(matrix, value))
        results[name] = {
            "chosen": {setting: value},
            "validation": figures(on_validation[value]),
            "validation_grid": validation_choice(on_validation),
            "test": figures(evaluate_retrieval(scores, merged)),
        }
    train_sequences = time_ordered_items(
        inputs.train_users, inputs.train_items, inputs.train_times, inputs.num_users
    )
    best, on_validation = tune_markov(
        train_sequences, lambda scores: evaluate_retrieval(scores, view), inputs.num_items
    )
    known = time_ordered_items(*merged.known_pairs(), merged.known_times(), merged.num_users)
    results["markov"] = {
        "chosen": dataclasses.asdict(best),
        "validation": figures(on_validation[best]),
        "test": figures(evaluate_retrieval(markov_scores(known, merged.num_items, best), merged)),
    }
    return results


def recbole_available() -> bool:
    return os.path.exists(os.path.join(RECBOLE_VENV, "bin", "python"))


def recbole_peer(config, model: str, figures, epochs=RECBOLE_EPOCHS) -> dict:
    """RecBole's `model`: `epochs` chosen on validation, then refit on training + validation."""
    from keras_rec.recommender.data.recommender_inputs import merge_validation, validation_view
    from keras_rec.recommender.stages.inputs import prepare_movielens_inputs

    _, inputs, _, _ = prepare_movielens_inputs(config)
    merged, view = merge_validation(inputs), validation_view(inputs)
    on_validation = _recbole_run(inputs, view, model, epochs, config.seed, figures)
    chosen = max(on_validation, key=lambda e: on_validation[e]["user_ndcg_at_10"])
    on_test = _recbole_run(merged, merged, model, (chosen,), config.seed, figures)
    return {
        "chosen": {"epochs": chosen},
        "validation": on_validation[chosen],
        "validation_grid": {str(e): m["user_ndcg_at_10"] for e, m in on_validation.items()},
        "test": on_test[chosen],
    }


def _recbole_run(fit_inputs, scored, model, epochs, seed, figures) -> dict:
    """`{epoch: figures}` of RecBole's `model` fit on `fit_inputs`' training pairs, scored on
    `scored`'s test pairs (the same users and items as every other model)."""
    from keras_rec.recommender.evaluation.retrieval_evaluation import evaluate_retrieval

    users = np.flatnonzero(np.bincount(scored.test_users, minlength=scored.num_users))
    results = {}
    with tempfile.TemporaryDirectory() as work:
        fit_path = os.path.join(work, "fit.csv")
        times = fit_inputs.train_times
        rows = np.stack([fit_inputs.train_users, fit_inputs.train_items, times], axis=1)
        np.savetxt(fit_path, rows, fmt="%d", delimiter=",", header="user_id,item_id,timestamp",
                   comments="")  # fmt: skip
        users_path = os.path.join(work, "users.txt")
        np.savetxt(users_path, users, fmt="%d")
        command = [
            os.path.join(RECBOLE_VENV, "bin", "python"),
            os.path.join(os.path.dirname(__file__), "recbole_peers.py"),
            "--model", model, "--train", fit_path, "--users", users_path,
            "--epochs-at", ",".join(str(e) for e in epochs), "--out-dir", work,
            "--seed", str(seed), "--top", "100",
        ]  # fmt: skip
        subprocess.run(command, check=True, stdout=sys.stderr)
        for epoch in epochs:
            found = np.load(os.path.join(work, f"top_epoch{epoch}.npz"))
            results[epoch] = figures(
                evaluate_retrieval(_rank_scores(found, scored.num_items), scored, users=users)
            )
            results[epoch]["seconds"] = float(found["seconds"])
    return results


def _rank_scores(found, num_items: int):
    """A score function from each user's ranked top items (rows: our user and item rows)."""
    position = {int(u): i for i, u in enumerate(found["users"])}
    top = found["items"]

    def scores(rows):
        # Items a peer did not rank are at -inf: they never count as hits.
        block = np.full((len(rows), num_items), -np.inf, np.float32)
        for i, row in enumerate(rows):
            ranked = top[position[int(row)]]
            ranked = ranked[ranked >= 0]
            block[i, ranked] = np.arange(len(ranked), 0, -1, dtype=np.float32)
        return block

    return scores


def ours(config, user_model: str, figures) -> dict:
    """`train_recommender` on the temporal split with `user_model`, all else default."""
    from keras_rec.recommender.train_recommender import train_recommender

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = train_recommender(
            dataclasses.replace(config, output_dir=out, user_model=user_model)
        )
        seconds = time.perf_counter() - start
    validation = summary["validation"]
    held = validation.get("reranker", {})
    two_stage_wins = bool(held) and bool(
        held["holdout_two_stage"]["user_ndcg_at_10"] > held["holdout_retrieval"]["user_ndcg_at_10"]
    )
    return {
        "retrieval": {
            "validation": figures(validation["retrieval"]),
            "test": figures(summary),
        },
        "two_stage": {"test": figures(summary["two_stage"])} if "two_stage" in summary else None,
        "chosen": {"epochs": validation["chosen_epochs"], "two_stage": two_stage_wins},
        "seconds": round(seconds, 1),
    }


COLD_START_FRACTION = 0.1


def cold_start(config) -> dict:
    """Cold items on the temporal protocol, answered by the served models.

    `COLD_START_FRACTION` of the items (seeded by `config.seed`) leave
    training entirely (`cold_start_split` on a time split): the test stays
    each user's last 2 ratings, and the cold items' earlier ratings stay in
    the users' histories, trained on by no model. Each user model is
    trained (`k=200`: room for the items removed after) and its exports
    answer every test user through TF Serving's Session loader: the
    towers' `retrieval` by user id (what they know of a user is fixed at
    training), the sequence model's
    `retrieval` by user id (its stored latest *training* items) and
    `next_items` given the user's last 50 ratings before the test, cold
    items included. Every rating before the test is then removed from the
    answer and the rest, in order, scored by `evaluate_retrieval` (an item
    not answered is never a hit): `cold_start_*` counts only the cold test
    items as relevant.
    """
    import pandas as pd

    from keras_rec.recommender.data.recommender_inputs import merge_validation
    from keras_rec.recommender.serving.next_items import PADDING_IDS
    from keras_rec.recommender.stages.inputs import prepare_movielens_inputs
    from keras_rec.recommender.train_recommender import train_recommender

    config = dataclasses.replace(config, cold_start_fraction=COLD_START_FRACTION, k=200)
    split, inputs, _, _ = prepare_movielens_inputs(config)
    before = pd.concat([split.train, split.validation, split.history], ignore_index=True)
    before = before.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    item_row = pd.Series(np.arange(inputs.num_items), index=inputs.item_ids)
    user_row = pd.Series(np.arange(inputs.num_users), index=inputs.user_ids)
    # Scored with every rating before the test known, so each is removed from the lists.
    scored = dataclasses.replace(
        merge_validation(inputs),
        train_users=user_row.loc[before["user_id"]].to_numpy(np.int64),
        train_items=item_row.loc[before["item_id"]].to_numpy(np.int64),
        train_times=np.zeros(0, np.float64),
    )
    users = np.flatnonzero(np.bincount(scored.test_users, minlength=scored.num_users))
    user_ids = inputs.user_ids[users]
    recent = np.full((len(users), HISTORY), PADDING_IDS["int64"], np.int64)
    for i, items in enumerate(before.groupby("user_id")["item_id"].apply(list).loc[user_ids]):
        latest = items[-HISTORY:]
        recent[i, HISTORY - len(latest) :] = latest
    requests = {"retrieval": {"user_id": user_ids}, "next_items": {"recent_item_ids": recent}}
    result = {"cold_items": int(len(inputs.cold_items)), "users": int(len(users))}
    for user_model in ("mean", "sequence"):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            summary = train_recommender(
                dataclasses.replace(config, output_dir=out, user_model=user_model)
            )
            run = {
                "pipeline": {k: v for k, v in summary.items() if k.startswith("cold_start")},
                "seconds": round(time.perf_counter() - start, 1),
            }
            for export in ("retrieval", "next_items"):
                model_dir = os.path.join(out, export)  # output_dir is the exports' base
                if not os.path.isdir(model_dir):
                    continue
                found = _served_top(model_dir, requests[export])
                rows = item_row.reindex(found.ravel()).fillna(-1).to_numpy(np.int64)
                ranked = {"users": users, "items": rows.reshape(found.shape)}
                run[export] = _cold_figures(evaluate_retrieval_of(ranked, scored, users))
        result[user_model] = run
        print("cold start", user_model, json.dumps(run, default=_plain), flush=True)
    return result


def temporal_cold_start(seeds, mean_std) -> dict:
    """`cold_start` over `seeds` (each seed its own cold items): every figure's mean and std."""
    runs = [cold_start(temporal_config(seed)) for seed in seeds]
    table = {}
    for user_model in ("mean", "sequence"):
        for part in ("pipeline", "retrieval", "next_items"):
            if part in runs[0][user_model]:
                table[f"{user_model}.{part}"] = {
                    key: mean_std([r[user_model][part][key] for r in runs])
                    for key in runs[0][user_model][part]
                }
    return {
        "protocol": "leave-last-out(last=2 per user)+validation(last=1 per user)"
        f"+cold_items(fraction={COLD_START_FRACTION})",
        "seeds": list(seeds),
        "table": table,
        "runs": runs,
    }


def _cold_figures(metrics: dict) -> dict:
    keys = (
        "user_recall_at_10", "user_recall_at_100", "user_ndcg_at_10", "cold_start_recall_at_10",
        "cold_start_recall_at_100", "cold_start_ndcg_at_10", "cold_start_evaluated_users",
    )  # fmt: skip
    return {key: metrics[key] for key in keys if key in metrics}


HISTORY = 50  # the recent items a next_items request carries (the default --max-history)


def _served_top(model_dir: str, request: dict) -> np.ndarray:
    """Raw item ids `[U, K]`: the latest version of `model_dir`, through the Session loader."""
    from keras_rec.serving.fresh_process import answer_in_fresh_process
    from keras_rec.serving.model_layout import version_dirs

    version = os.path.join(model_dir, list(version_dirs(model_dir).values())[-1])
    answered = answer_in_fresh_process(
        version, {"all": ("serving_default", request)}, loaders=("session",)
    )
    if answered["errors"].get("session"):
        raise RuntimeError(f"{version} did not answer: {answered['errors']['session']}")
    return np.asarray(answered["answers"]["session"]["all"]["item_ids"])


def evaluate_retrieval_of(ranked: dict, scored, users) -> dict:
    """`evaluate_retrieval` of ranked item rows per user (`_rank_scores`), on `users`."""
    from keras_rec.recommender.evaluation.retrieval_evaluation import evaluate_retrieval

    return evaluate_retrieval(_rank_scores(ranked, scored.num_items), scored, users=users)


def _plain(value):
    """NumPy scalars as Python numbers, for `json.dumps`."""
    return value.item() if hasattr(value, "item") else str(value)


def temporal_quality(
    seeds,
    figures,
    mean_std,
    target_ratio: float,
    recbole_models=RECBOLE_MODELS,
    recbole_epochs=RECBOLE_EPOCHS,
    user_models=("mean", "sequence"),
) -> dict:
    """The temporal protocol over `seeds`: every model's test figures, ratios, choices.

    `recbole_models` empty runs no RecBole peer; `user_models` are ours.
    """
    base = deterministic_baselines(temporal_config(seeds[0]), figures)
    print("baselines", json.dumps(base, default=_plain), flush=True)
    runs = []
    for seed in seeds:
        config = temporal_config(seed)
        run = {"seed": seed, **base}
        for model in recbole_models:
            run[f"recbole_{model.lower()}"] = recbole_peer(config, model, figures, recbole_epochs)
            print(model, json.dumps(run[f"recbole_{model.lower()}"], default=_plain), flush=True)
        for user_model in user_models:
            result = ours(config, user_model, figures)
            run[f"ours_{user_model}"] = result["retrieval"]
            if result["two_stage"]:
                run[f"ours_{user_model}_two_stage"] = result["two_stage"]
            run[f"ours_{user_model}_chosen"] = result["chosen"]
            run[f"ours_{user_model}_seconds"] = result["seconds"]
        # Ours: the user model with the better validation NDCG@10, then its two-stage
        # model if the re-ranker's held-out users chose it.
        user_model = max(
            user_models,
            key=lambda m: run[f"ours_{m}"]["validation"]["user_ndcg_at_10"],
        )
        two_stage = run[f"ours_{user_model}_chosen"]["two_stage"]
        run["ours_chosen"] = {
            "model": f"ours_{user_model}" + ("_two_stage" if two_stage else ""),
        }
        run["ours_chosen"]["test"] = run[run["ours_chosen"]["model"]]["test"]
        print("seed", seed, json.dumps(run, default=_plain), flush=True)
        runs.append(run)
    models = [m for m in runs[0] if isinstance(runs[0][m], dict) and "test" in runs[0][m]]
    table = {
        model: {f: mean_std([r[model]["test"][f] for r in runs]) for f in runs[0][model]["test"]}
        for model in models
    }
    baseline_names = [m for m in models if not m.startswith("ours")]
    strongest = max(baseline_names, key=lambda m: table[m]["user_ndcg_at_10"]["mean"])
    ratios = {
        model: {
            f: round(table[model][f]["mean"] / table[strongest][f]["mean"], 3)
            for f in ("user_recall_at_10", "user_ndcg_at_10")
        }
        for model in models
        if model.startswith("ours")
    }
    return {
        "protocol": "leave-last-out(last=2 per user)+validation(last=1 per user)",
        "seeds": list(seeds),
        "table": table,
        "strongest_baseline": strongest,
        "ratios_vs_strongest": ratios,
        "chosen_per_seed": [r["ours_chosen"]["model"] for r in runs],
        "targets_met": all(v >= target_ratio for v in ratios["ours_chosen"].values()),
        "recbole": {"models": list(recbole_models), "epochs": list(recbole_epochs)},
        "runs": runs,
    }
