"""`train_recommender`: MovieLens -> texts -> embeddings -> two towers -> evaluation -> exports."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any

import numpy as np

from keras_rec.metric_keys import with_old_keys
from keras_rec.precision import SERVING_TOLERANCE
from keras_rec.training.recommender_config import RecommenderTrainingConfig
from keras_rec.training.script_arguments import config_dict, require_positive_ints

logger = logging.getLogger(__name__)

EXPORT_NAMES = (
    "user_tower",
    "item_tower",
    "ranker",
    "retrieval",
    "recommend",
    "query_retrieval",
)
EXAMPLE_QUERIES = (
    "a space adventure with robots and a rebellion",
    "romantic comedy set in New York",
    "scary horror movie",
)
UNKNOWN_USER_ID = 999_999
RANKER_BATCH_SIZE = 1024
PREDICT_CHUNK = 65_536
# The figures of each baseline the printed summary keeps (the report keeps all).
BASELINE_SUMMARY = ("top100_accuracy", "user_recall_at_10", "user_ndcg_at_10", "user_mrr")


def train_recommender(config: RecommenderTrainingConfig) -> dict[str, Any]:
    """Trains, evaluates and exports the two-tower recommender; returns its summary.

    1. MovieLens-100K, checked (`DataValidationError` on missing ids or
       duplicate (user, item) pairs), keyed by "Title (Year)" as TFRS keys
       it, split by TFRS's basic-retrieval protocol (80% / 20% after a seeded
       shuffle), `validation_fraction` of training carved out as
       validation; with `cold_start_fraction`, those items leave training.
       (Or the user's own files: `prepare_user_inputs`.)
    2. Item texts (title, year, genres) and user texts (demographics, liked
       titles of the training split only) embedded through the cache.
    3. A user tower (text embedding, mean embedding of the training items,
       id) and an item tower (text embedding, id), trained with in-batch
       softmax (temperature, log-Q, accidental hits removed) under the
       `tf.distribute` strategy, stopped early on the validation loss.
    4. On validation: the epochs, the `l2` of the EASE baseline and of
       the EASE feature, and the two-stage model's re-ranker (trained on
       the towers' top-`recommend_candidates` for the validation pairs);
       then the towers are refit on training + validation for the chosen
       epochs (`refit`).
    5. Evaluation with known items removed per user, beside the
       popularity and EASE baselines (EASE fit on the towers' training
       pairs): top-100 accuracy, Recall/NDCG@10/100, MRR, cold start, for
       the towers alone and for the two-stage model.
    6. The ranker (concatenate -> MLP) on the text embeddings.
    7. `keras_rec.serving.export` of `user_tower`, `item_tower`, `ranker`,
       `retrieval` (user id -> top-K), `recommend` (user id -> top-K after
       re-ranking) and `query_retrieval` (text -> top-K); `metrics.json` in
       `output_dir`, in the run directory and in every export's
       `assets.extra/`.

    With MLflow tracking on (`mlflow=True` or `MLFLOW_TRACKING_URI`), the
    run logs the config, per-epoch losses, the final metrics, the recall@K
    and training-curve plots, the SavedModels, `query_retrieval` as a
    pyfunc model taking raw text, and the sentence-transformer.

    Args:
        config: a `RecommenderTrainingConfig`.

    Returns:
        A JSON-serializable summary: metrics, baseline, exports.
    """
    from keras_rec.tracking import tracking_run
    from keras_rec.training.training_run import training_run

    _check_config(config)
    with (
        training_run(config, "recommender") as run,
        tracking_run(
            config.mlflow, config.mlflow_experiment, "recommender", chief=run.chief
        ) as tracker,
    ):
        return _train_recommender(config, run, tracker)


def _train_recommender(config: RecommenderTrainingConfig, run, tracker) -> dict[str, Any]:
    import keras
    import tensorflow as tf
    from fsspec.implementations.local import LocalFileSystem

    from keras_rec.atomic_io import write_bytes_atomic
    from keras_rec.recommender.recommender_inputs import merge_validation
    from keras_rec.recommender.retrieval_evaluation import (
        CURVE_KS,
        evaluate_retrieval,
        popularity_baseline,
        vector_scores,
    )
    from keras_rec.recommender.two_stage import two_stage_scores
    from keras_rec.training.training_plots import plot_recall_curves, plot_training_curves

    start = time.perf_counter()
    tracker.log_params(config_dict(config))
    run_dir = run.run_dir

    # === Data and embeddings ===
    if config.interactions:
        inputs, data_report, hub_dir, embed = prepare_user_inputs(config)
    else:
        split, inputs, hub_dir, embed = prepare_movielens_inputs(config)
        data_report = {**split.summary(), "cold_item_ids": split.cold_item_ids.tolist()}
    sentence_encoder = getattr(embed, "sentence_encoder", None)
    embed_seconds = time.perf_counter() - start
    peak_rss = {"data": peak_rss_mb()}

    # === Retrieval training ===
    callbacks = [
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), write_graph=False),
        *tracker.keras_callbacks(),
    ]
    if len(inputs.val_items):
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
        )
    retrieval, history, train_seconds = fit_retrieval(
        config,
        inputs,
        run.strategy,
        callbacks=callbacks,
        checkpoint_dir=run.checkpoint_dir("retrieval"),
        chief=run.chief,
    )

    # === Validation: model selection, the re-ranker, refit ===
    validation, stage_two = {}, None
    if len(inputs.val_items):
        validation, stage_two = _select_on_validation(config, inputs, retrieval, history, run)
        if config.refit:
            inputs = merge_validation(inputs)
            retrieval, _, refit_seconds = fit_retrieval(
                dataclasses.replace(config, epochs=validation["chosen_epochs"]),
                inputs,
                run.strategy,
                checkpoint_dir=run.checkpoint_dir("retrieval_refit"),
                chief=run.chief,
                name="retrieval_refit",
            )
            train_seconds += refit_seconds
    peak_rss["training"] = peak_rss_mb()

    # === Evaluation ===
    evaluation_start = time.perf_counter()
    user_vectors, item_vectors = tower_vectors(retrieval, inputs)
    users = evaluation_users(inputs, config.eval_users, config.seed)
    metrics = evaluate_retrieval(vector_scores(user_vectors, item_vectors), inputs, CURVE_KS, users)
    popularity = popularity_baseline(inputs, CURVE_KS, users)
    curves = {
        "two-tower": metrics.pop("recall_curve"),
        "popularity": popularity.pop("recall_curve"),
    }
    ease = _ease_baseline(config, inputs, validation, users)
    if "recall_curve" in ease:
        curves["EASE"] = ease.pop("recall_curve")
    recommend = None
    if stage_two is not None:
        recommend = _two_stage(
            config,
            inputs,
            user_vectors,
            item_vectors,
            stage_two["reranker"],
            _item_neighbors(config, inputs, stage_two),
        )
        two_stage = evaluate_retrieval(two_stage_scores(recommend), inputs, CURVE_KS, users)
        curves["two-stage"] = two_stage.pop("recall_curve")
        # TFRS's top-100 accuracy ranks known items too; this model never does.
        del two_stage["top100_accuracy"]
        metrics["two_stage"] = two_stage
    if validation:
        metrics["validation"] = validation
    evaluation_seconds = time.perf_counter() - evaluation_start
    plots = [
        plot_recall_curves(curves, os.path.join(run_dir, "recall_at_k.png")),
        plot_training_curves(
            history.history,
            os.path.join(run_dir, "training_curves.png"),
            title="two-tower retrieval",
        ),
    ]
    ranker, ranker_metrics = _train_ranker(config, inputs, run, tracker)

    # === Export ===
    report = {
        "retrieval": metrics,
        "popularity": popularity,
        "ease": ease,
        "recall_curves": {name: {str(k): v for k, v in c.items()} for name, c in curves.items()},
        "ranker": ranker_metrics,
        "split": data_report,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "config": config_dict(config),
    }
    export_start = time.perf_counter()
    exports, query_retrieval, skipped = _export_all(
        config,
        retrieval,
        ranker,
        recommend,
        inputs,
        user_vectors,
        item_vectors,
        hub_dir,
        report,
        run.chief,
    )
    served = _evaluate_served_index(exports, report["indexes"], inputs, users, metrics)
    export_seconds = time.perf_counter() - export_start
    peak_rss["evaluation_and_export"] = peak_rss_mb()
    summary = {
        **{k: metrics[k] for k in metrics if k != "test_pairs"},
        "popularity": {k: popularity[k] for k in BASELINE_SUMMARY},
        "ease": {k: ease[k] for k in BASELINE_SUMMARY if k in ease} or ease,
        "ranker": ranker_metrics,
        "train_pairs": int(len(inputs.train_items)),
        "validation_pairs": validation.get("pairs", 0),
        "test_pairs": int(len(inputs.test_items)),
        "items": inputs.num_items,
        "users": inputs.num_users,
        "cold_items": int(len(inputs.cold_items)),
        "embedding_dim": inputs.embedding_dim,
        "embedding_cache": (
            {"encoded": embed.encoded, "cached": embed.cached}
            if hasattr(embed, "encoded")
            else None
        ),
        "exports": {name: result.path for name, result in exports.items()},
        "exports_skipped": skipped,
        "indexes": report["indexes"],
        "served_retrieval": served,
        "run_dir": run_dir,
        "resumed": run.resumed,
        "resumed_at_epoch": history.resumed_at[0] + 1 if history.resumed_at else None,
        "workers": run.workers,
        "epochs_run": len(history.history.get("loss", [])),
        "embed_seconds": round(embed_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "evaluation_seconds": round(evaluation_seconds, 1),
        "export_seconds": round(export_seconds, 1),
        "train_examples_per_second": round(
            len(history.history.get("loss", []))
            * len(inputs.train_items)
            / max(train_seconds, 1e-9),
            1,
        ),
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mb": peak_rss,
    }
    text = json.dumps({**summary, "report": report}, indent=1)
    if run.chief:
        for path in (
            os.path.join(run_dir, "metrics.json"),
            os.path.join(config.output_dir, "metrics.json"),
        ):
            write_bytes_atomic(LocalFileSystem(), path, text.encode("utf-8"))
        summary["metrics_json"] = os.path.join(config.output_dir, "metrics.json")

    # === Tracking ===
    if tracker.enabled:
        tracker.log_metrics(
            {
                **metrics,
                "popularity": popularity,
                **({"ease": ease} if "skipped" not in ease else {}),
                "ranker": ranker_metrics,
                "train_seconds": train_seconds,
            }
        )
        for path in (*plots, os.path.join(run_dir, "metrics.json")):
            tracker.log_artifact(path, "evaluation")
        for name, result in exports.items():
            if result.written:
                tracker.log_artifacts(result.path, f"saved_models/{name}")
        if "query_retrieval" in exports and exports["query_retrieval"].written:
            queries = list(EXAMPLE_QUERIES)
            in_memory = query_retrieval.serve(tf.constant(queries))
            summary["mlflow_model_uri"] = tracker.log_text_model(
                exports["query_retrieval"].path,
                "query_retrieval",
                queries,
                name="query_retrieval",
                expected={
                    "item_ids": in_memory["item_ids"].numpy(),
                    "scores": in_memory["scores"].numpy(),
                },
            )
        if sentence_encoder is not None:
            summary["mlflow_sentence_transformer_uri"] = tracker.log_sentence_transformer(
                sentence_encoder.model, list(EXAMPLE_QUERIES)
            )
        summary["mlflow_run_id"] = tracker.run_id
    return summary


def prepare_movielens_inputs(config: RecommenderTrainingConfig):
    """`(split, RecommenderInputs, hub_dir, embed)`: the split, embedded through the cache.

    `hub_dir` holds the TF Hub preprocessor and encoder of the
    sentence-transformer (exported once); `embed` is the text embedding
    function used (with `encoded` / `cached` counts when it uses the cache).
    """
    from keras_rec.embeddings.text_embedder import text_embedder
    from keras_rec.hub.local_hub import hub_modules
    from keras_rec.recommender.recommender_inputs import build_inputs

    split, items, users = _movielens_split(config)
    logger.info("Split %s", split.summary())
    hub_dir, sentence_encoder = hub_modules(config.model, config.hub_dir, config.encoder_precision)
    embed = text_embedder(sentence_encoder, config.cache, hub_dir)
    return split, build_inputs(split, items, users, embed), hub_dir, embed


def prepare_user_inputs(config: RecommenderTrainingConfig):
    """`(RecommenderInputs, data report, hub_dir or None, embed or None)` of the user's files.

    The sentence-transformer (and its TF Hub export, for `query_retrieval`)
    is loaded only when item or user texts must be encoded; with
    `--item-embeddings` (and `--user-embeddings` or no users) nothing is.
    """
    from keras_rec.recommender.user_data import load_user_inputs

    loaded = {}

    def embed():
        if "embed" not in loaded:
            from keras_rec.embeddings.text_embedder import text_embedder
            from keras_rec.hub.local_hub import hub_modules

            hub_dir, sentence_encoder = hub_modules(
                config.model, config.hub_dir, config.encoder_precision
            )
            loaded.update(
                hub_dir=hub_dir, embed=text_embedder(sentence_encoder, config.cache, hub_dir)
            )
        return loaded["embed"]

    inputs, report = load_user_inputs(config, embed)
    logger.info("Data %s", report)
    return inputs, report, loaded.get("hub_dir"), loaded.get("embed")


def peak_rss_mb() -> int:
    """This process's peak resident memory so far, in MiB."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def evaluation_users(inputs, count: int | None, seed: int) -> np.ndarray:
    """User rows with test pairs, or a seeded sample of `count` of them."""
    users = np.flatnonzero(np.bincount(inputs.test_users, minlength=inputs.num_users))
    if count is None or count >= len(users):
        return users
    return np.sort(np.random.default_rng(seed).choice(users, count, replace=False))


def _select_on_validation(config, inputs, retrieval, history, run):
    """Validation figures, the chosen epochs and (with `recommend_candidates`) the re-ranker.

    Returns `(validation report, stage-two parts or None)`: the parts are
    the trained re-ranker and the item-item feature's EASE `l2` and text
    weight, chosen on validation.
    """
    from keras_rec.recommender.baseline_tuning import tune_text_ease, validation_choice
    from keras_rec.recommender.item_item_baselines import MAX_ITEM_ITEM_ITEMS
    from keras_rec.recommender.recommender_inputs import validation_view
    from keras_rec.recommender.reranker_training import TooFewTargets, fit_reranker
    from keras_rec.recommender.retrieval_evaluation import evaluate_retrieval, vector_scores
    from keras_rec.recommender.two_stage import two_stage_scores
    from keras_rec.recommender.user_item_lists import UserItemLists

    view = validation_view(inputs)
    user_vectors, item_vectors = tower_vectors(retrieval, inputs)
    # Epoch numbers of the logged losses: a resumed run logs from its resumed epoch on.
    losses = history.history.get("val_loss")
    first = history.resumed_at[0] if history.resumed_at else 0
    chosen = first + int(np.argmin(losses)) + 1 if losses else config.epochs
    report = {
        "pairs": int(len(inputs.val_items)),
        "retrieval": evaluate_retrieval(
            vector_scores(user_vectors, item_vectors),
            view,
            users=evaluation_users(view, config.eval_users, config.seed),
        ),
        "chosen_epochs": min(chosen, config.epochs),
    }
    if config.ease_baseline:
        report["ease"] = _tune_ease_baseline(inputs)
    if not config.recommend_candidates:
        return report, None
    item_item = {}
    if config.item_neighbors and inputs.num_items <= MAX_ITEM_ITEM_ITEMS:
        (l2, text_weight), results = tune_text_ease(inputs)
        item_item = {"l2": l2, "text_weight": text_weight}
        report["item_item"] = {
            "chosen": item_item,
            "validation_ndcg_at_10": validation_choice(results),
        }
    # History = training pairs only: the validation pairs are the targets.
    neighbors = _item_neighbors(config, view, item_item)
    candidates = _two_stage(config, view, user_vectors, item_vectors, None, neighbors)
    try:
        reranker, held_users, reranker_report = fit_reranker(
            candidates,
            UserItemLists(inputs.val_users, inputs.val_items, inputs.num_users),
            config.reranker_epochs,
            config.learning_rate,
            config.seed,
            run.strategy,
        )
    except TooFewTargets as e:
        logger.warning("No two-stage model: %s", e)
        report["reranker"] = {"skipped": str(e)}
        return report, None
    stage_two = {**item_item, "reranker": reranker}
    # Both stages on the re-ranker's held-out validation users.
    scored = _two_stage(config, view, user_vectors, item_vectors, reranker, neighbors)
    report["reranker"] = {
        **reranker_report,
        "holdout_retrieval": evaluate_retrieval(
            vector_scores(user_vectors, item_vectors), view, users=held_users
        ),
        "holdout_two_stage": evaluate_retrieval(two_stage_scores(scored), view, users=held_users),
    }
    return report, stage_two


def _tune_ease_baseline(inputs) -> dict:
    """EASE's `l2` chosen on the validation pairs, or why there is no EASE baseline."""
    from keras_rec.recommender.baseline_tuning import tune_ease, validation_choice
    from keras_rec.recommender.item_item_baselines import MAX_ITEM_ITEM_ITEMS

    if inputs.num_items > MAX_ITEM_ITEM_ITEMS:
        return {
            "skipped": f"{inputs.num_items:,} items: EASE's dense item x item solve is "
            f"limited to {MAX_ITEM_ITEM_ITEMS:,}"
        }
    l2, results = tune_ease(inputs)
    return {"chosen": {"l2": l2}, "validation_ndcg_at_10": validation_choice(results)}


def _ease_baseline(config, inputs, validation, users) -> dict:
    """EASE's test figures (with `recall_curve`), fit on the towers' training pairs.

    Returns `{"skipped": reason}` when there is none (`ease_baseline`
    off, no validation split to choose `l2` on, too many items).
    """
    from keras_rec.recommender.baseline_tuning import training_matrix
    from keras_rec.recommender.item_item_baselines import ease_weights, item_item_scores
    from keras_rec.recommender.retrieval_evaluation import CURVE_KS, evaluate_retrieval

    if not config.ease_baseline:
        return {"skipped": "ease_baseline is off"}
    if not validation:
        return {"skipped": "no validation split to choose EASE's l2 on"}
    tuned = validation["ease"]
    if "skipped" in tuned:
        return dict(tuned)
    l2 = tuned["chosen"]["l2"]
    matrix = training_matrix(inputs)
    scores = item_item_scores(matrix, ease_weights(matrix, l2))
    return {"l2": l2, **evaluate_retrieval(scores, inputs, CURVE_KS, users)}


def _item_neighbors(config, inputs, item_item) -> tuple:
    """`(item rows, weights)` of EASE (with item texts) on the known pairs, or `()` without it."""
    from keras_rec.recommender.item_item_baselines import (
        ease_weights,
        interaction_matrix,
        text_gram,
        top_neighbors,
    )

    if item_item.get("l2") is None:
        return ()
    matrix = interaction_matrix(*inputs.known_pairs(), inputs.num_users, inputs.num_items)
    side = None
    if item_item.get("text_weight"):
        side = text_gram(inputs.item_embeddings, item_item["text_weight"])
    return top_neighbors(ease_weights(matrix, item_item["l2"], side), config.item_neighbors)


def _known_popularity(inputs) -> tuple[np.ndarray, np.ndarray]:
    """`(known pairs per item, item rows by decreasing count)`: the unknown users' fallback."""
    counts = np.bincount(inputs.known_pairs()[1], minlength=inputs.num_items)
    return counts, np.argsort(-counts, kind="stable")


def _two_stage(config, inputs, user_vectors, item_vectors, reranker, neighbors):
    """The `TwoStageRecommender` of `inputs` (its known pairs are the history)."""
    from keras_rec.recommender.recommender_inputs import seen_items_by_user
    from keras_rec.recommender.two_stage import TwoStageRecommender

    counts, popular = _known_popularity(inputs)
    candidates = min(config.recommend_candidates, inputs.num_items)
    return TwoStageRecommender(
        user_vectors,
        inputs.user_ids,
        item_vectors,
        inputs.item_embeddings,
        inputs.item_ids,
        inputs.item_titles,
        counts,
        seen_items_by_user(inputs),
        reranker,
        min(config.k, candidates),
        candidates,
        popular,
        counts[popular] / max(counts.sum(), 1),
        *neighbors,
        index=index_settings(config),
    )


def fit_retrieval(
    config: RecommenderTrainingConfig,
    inputs,
    strategy=None,
    callbacks=None,
    checkpoint_dir: str | None = None,
    chief: bool = True,
    name: str = "retrieval",
):
    """Builds and trains the two towers; returns `(TwoTowerRetrieval, History, seconds)`.

    The model is built and compiled under `strategy.scope()` (default: the
    current strategy) and trained by `strategy_fit`, so `MirroredStrategy`
    and `MultiWorkerMirroredStrategy` replicate it; `config.batch_size` is
    the global batch, and each replica's in-batch softmax runs over all
    of it. Pairs stream as row indices (`IndexedExamples`): each batch's
    features are looked up in the user and item tables. `LazyAdam` updates
    only the id embeddings in the batch. With validation pairs, `val_loss`
    is logged each epoch. With `checkpoint_dir`, training resumes from (and
    writes) checkpoints there.
    """
    import tensorflow as tf

    from keras_rec.recommender.lazy_adam import LazyAdam
    from keras_rec.training.strategy_fit import strategy_fit

    strategy = strategy or tf.distribute.get_strategy()
    start = time.perf_counter()
    with strategy.scope():
        retrieval = _build_retrieval(config, inputs)
        retrieval.compile(optimizer=LazyAdam(config.learning_rate))
        retrieval(
            {
                "user": inputs.user_features(inputs.train_users[:2]),
                "item": inputs.item_features(inputs.train_items[:2]),
            }
        )
    validation = None
    if len(inputs.val_items):
        validation = training_pairs(inputs, config, inputs.val_users, inputs.val_items)
    history = strategy_fit(
        retrieval,
        training_pairs(inputs, config),
        config.batch_size,
        config.epochs,
        strategy=strategy,
        seed=config.seed,
        validation_examples=validation,
        callbacks=callbacks or [],
        checkpoint_dir=checkpoint_dir,
        checkpoint_steps=config.checkpoint_steps,
        chief=chief,
        name=name,
    )
    return retrieval, history, time.perf_counter() - start


def tower_vectors(retrieval, inputs) -> tuple[np.ndarray, np.ndarray]:
    """`(user vectors [U, D], item vectors [N, D])` of every user and item row."""
    return (
        predict_rows(retrieval.user_tower, inputs.user_features, inputs.num_users),
        predict_rows(retrieval.item_tower, inputs.item_features, inputs.num_items),
    )


def predict_rows(model, features, count: int, chunk: int = PREDICT_CHUNK) -> np.ndarray:
    """float32 outputs of `model` on `features(rows)` for rows `0 .. count - 1`, a chunk at a time.

    Only one chunk's features exist at once (a table's rows are looked up
    per chunk, not copied whole).
    """
    from keras_rec.training.local_predict import predict_locally

    parts = [
        np.asarray(
            predict_locally(model, features(np.arange(start, min(start + chunk, count)))),
            np.float32,
        )
        for start in range(0, count, chunk)
    ]
    return np.concatenate(parts)


def _check_config(config: RecommenderTrainingConfig) -> None:
    require_positive_ints(config, ("epochs", "batch_size", "k", "output_dim"))
    if not 0.0 < config.index_recall <= 1.0:
        raise ValueError(f"`index_recall` must be in (0, 1]. Received: {config.index_recall!r}")
    if config.ranker_epochs < 0:
        raise ValueError(f"`ranker_epochs` must be >= 0. Received: {config.ranker_epochs!r}")
    if not 0.0 <= config.cold_start_fraction < 1.0:
        raise ValueError(
            f"`cold_start_fraction` must be in [0, 1). Received: {config.cold_start_fraction!r}"
        )
    if not 0.0 <= config.validation_fraction < 1.0:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1). Received: {config.validation_fraction!r}"
        )
    for name in ("recommend_candidates", "item_neighbors"):
        if getattr(config, name) < 0:
            raise ValueError(f"`{name}` must be >= 0. Received: {getattr(config, name)!r}")
    if config.recommend_candidates and config.reranker_epochs < 1:
        raise ValueError(f"`reranker_epochs` must be >= 1. Received: {config.reranker_epochs!r}")
    if config.eval_users is not None and config.eval_users < 1:
        raise ValueError(f"`eval_users` must be >= 1. Received: {config.eval_users!r}")
    if config.interactions is None:
        given = [
            name
            for name in (
                "items",
                "item_embeddings",
                "users",
                "user_embeddings",
                "test_interactions",
            )
            if getattr(config, name)
        ]
        if given:
            raise ValueError(
                f"`{given[0]}` describes your own data: pass `interactions` "
                "(`--interactions PATH`) too, or leave it out to train on MovieLens-100K."
            )
    if config.max_ratings is not None and config.max_ratings < 100:
        raise ValueError(f"`max_ratings` must be >= 100. Received: {config.max_ratings!r}")
    if config.ranker_task not in ("binary", "rating"):
        raise ValueError(
            f"`ranker_task` must be 'binary' or 'rating'. Received: {config.ranker_task!r}"
        )


def _movielens_split(config):
    """`(InteractionSplit, items table, users table)` of MovieLens-100K."""
    from keras_rec.data import movielens_100k
    from keras_rec.recommender.interactions import (
        carve_validation,
        check_interactions,
        cold_start_split,
        tfrs_protocol_split,
    )
    from keras_rec.recommender.recommender_inputs import (
        merge_duplicate_titles,
        movielens_tables,
    )

    data = movielens_100k(path=config.data)
    check_interactions(data.ratings, "MovieLens ratings")
    # Keyed by title as in TFRS: a user who rated both copies of a movie
    # listed twice keeps both rows, as there.
    data = merge_duplicate_titles(data)
    ratings = data.ratings
    if config.max_ratings is not None:
        ratings = ratings.iloc[: config.max_ratings]
    split = tfrs_protocol_split(ratings, seed=config.seed)
    if config.cold_start_fraction:
        split = cold_start_split(
            ratings,
            data.items["item_id"].to_numpy(),
            config.cold_start_fraction,
            config.seed,
            base=split,
        )
    if config.validation_fraction:
        split = carve_validation(split, config.validation_fraction, config.seed + 1)
    items, users = movielens_tables(data, split.train)
    return split, items, users


def _build_retrieval(config, inputs):
    from keras_rec.recommender.tower import build_tower
    from keras_rec.recommender.two_tower_retrieval import TwoTowerRetrieval

    common = dict(
        output_dim=config.output_dim,
        hidden_units=tuple(config.hidden_units),
        dropout=config.dropout,
        weight_decay=config.weight_decay,
        id_dropout=config.id_dropout,
    )
    dim = inputs.embedding_dim
    user_tower = build_tower(
        dim,
        "user_tower",
        id_vocabulary_size=inputs.num_users + 1,
        feature_dim=dim if inputs.user_text else None,
        **common,
    )
    item_tower = build_tower(dim, "item_tower", id_vocabulary_size=inputs.num_items + 1, **common)
    return TwoTowerRetrieval(
        user_tower,
        item_tower,
        temperature=config.temperature,
        loss=config.loss,
        num_negatives=config.num_negatives,
        seed=config.seed,
    )


def training_pairs(inputs, config, users=None, items=None):
    """`IndexedExamples` of `{"user", "item", "item_key", "item_log_q"}` pairs (default: training).

    The pairs stay two int arrays; a batch's tower inputs are looked up in
    the user and item tables when the batch is made. `item_key` is the item
    row (accidental hits are the same row).
    """
    import tensorflow as tf

    from keras_rec.training.indexed_examples import IndexedExamples

    users = inputs.train_users if users is None else users
    items = inputs.train_items if items is None else items
    log_q = inputs.item_log_q() if config.log_q else None

    def gather(rows):
        user_rows, item_rows = users[rows], items[rows]
        x = {
            "user": inputs.user_features(user_rows),
            "item": inputs.item_features(item_rows),
            "item_key": item_rows,
        }
        if log_q is not None:
            x["item_log_q"] = log_q[item_rows]
        return x

    def specs(tables):
        return {
            name: tf.TensorSpec(
                [None, *np.shape(table)[1:]], tf.as_dtype(np.asarray(table[:1]).dtype)
            )
            for name, table in tables.items()
        }

    signature = {
        "user": specs(inputs.user_tables()),
        "item": specs(inputs.item_tables()),
        "item_key": tf.TensorSpec([None], tf.int64),
    }
    if log_q is not None:
        signature["item_log_q"] = tf.TensorSpec([None], tf.float32)
    return IndexedExamples(len(users), gather, signature)


def _train_ranker(config, inputs, run, tracker):
    """The concatenate-MLP ranker on (user text, item text) embeddings, and its test figures.

    Binary task (rated vs not rated): each positive with `ranker_negatives`
    items drawn uniformly, never one of the user's train or test
    positives. Pairs stream as row indices; features are looked up per
    batch.
    """
    import keras
    import tensorflow as tf

    from keras_rec.recommender.ranker import build_ranker
    from keras_rec.training.indexed_examples import IndexedExamples
    from keras_rec.training.strategy_fit import strategy_fit

    dim = inputs.embedding_dim
    all_pairs = (
        np.concatenate([inputs.train_users, inputs.val_users, inputs.test_users]),
        np.concatenate([inputs.train_items, inputs.val_items, inputs.test_items]),
    )
    if config.ranker_task == "binary":
        from keras_rec.recommender.ranker_data import sampled_negative_pairs

        def pairs(users, items, seed):
            return sampled_negative_pairs(
                users, items, inputs.num_items, config.ranker_negatives, seed, all_pairs
            )

        users, items, labels = (
            pairs(inputs.train_users, inputs.train_items, config.seed)
            if config.ranker_epochs
            else (None, None, None)  # No training: no negatives to draw.
        )
        test_users, test_items, test_labels = pairs(
            inputs.test_users, inputs.test_items, config.seed + 1
        )
        loss = "binary_crossentropy"
    else:
        if not len(inputs.train_ratings):
            raise ValueError(
                "`ranker_task='rating'` needs ratings: pass `--rating-column` with your data."
            )
        users, items, labels = inputs.train_users, inputs.train_items, inputs.train_ratings
        test_users, test_items, test_labels = (
            inputs.test_users,
            inputs.test_items,
            inputs.test_ratings,
        )
        loss = "mse"
    with run.strategy.scope():
        ranker = build_ranker(dim, dim, task=config.ranker_task)
        ranker.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss)

    def features(u, i):
        return {"user": inputs.user_embeddings[u], "item": inputs.item_embeddings[i]}

    if config.ranker_epochs:
        spec = tf.TensorSpec([None, dim], tf.float32)
        examples = IndexedExamples(
            len(labels),
            lambda rows: (features(users[rows], items[rows]), labels[rows]),
            ({"user": spec, "item": spec}, tf.TensorSpec([None], tf.float32)),
        )
        strategy_fit(
            ranker,
            examples,
            RANKER_BATCH_SIZE,
            config.ranker_epochs,
            strategy=run.strategy,
            seed=config.seed,
            callbacks=tracker.keras_callbacks("ranker_"),
            checkpoint_dir=run.checkpoint_dir("ranker"),
            checkpoint_steps=config.checkpoint_steps,
            chief=run.chief,
            name="ranker",
        )
    predictions = predict_rows(
        ranker, lambda rows: features(test_users[rows], test_items[rows]), len(test_labels)
    ).reshape(-1)
    if config.ranker_task == "binary":
        from keras_rec.recommender.ranker_data import auc_report

        popularity = np.log1p(_known_popularity(inputs)[0])
        ranker_auc = auc_report(test_users, test_labels, predictions)
        metrics = {
            "task": "binary",
            "labels": "rated (1) vs not rated (0): test pairs, and sampled items never a positive",
            "test_auc": ranker_auc["pooled_auc"],
            "test_per_user_auc": ranker_auc["per_user_auc"],
            "popularity_test_auc": auc_report(test_users, test_labels, popularity[test_items]),
            "negatives_per_positive": config.ranker_negatives,
        }
    else:
        rmse = float(np.sqrt(np.mean((predictions - test_labels) ** 2)))
        mean_rmse = float(np.sqrt(np.mean((inputs.train_ratings.mean() - test_labels) ** 2)))
        metrics = {
            "task": "rating",
            "test_rmse": round(rmse, 4),
            "train_mean_rmse": round(mean_rmse, 4),
        }
    # Every pair the ranker scored on the test split: the positives and, for
    # `binary`, their sampled negatives (not the split's `test_pairs`).
    metrics["test_scored_pairs"] = int(len(test_labels))
    return ranker, with_old_keys(metrics, "ranker")


def _evaluate_served_index(exports, indexes, inputs, users, metrics):
    """Recall@10 of the exported `retrieval` as served, when its index is approximate (else None).

    Compared with the exact figure of the same towers on the same users.
    """
    from keras_rec.recommender.served_evaluation import evaluate_served_retrieval

    result = exports.get("retrieval")
    if result is None or not result.written or indexes.get("retrieval", {}).get("index") != "ivf":
        return None
    served = evaluate_served_retrieval(result.path, inputs, users)
    exact = metrics["user_recall_at_10"]
    served["exact_user_recall_at_10"] = exact
    served["recall_at_10_gap"] = round(exact - served["user_recall_at_10"], 4)
    return served


def index_settings(config: RecommenderTrainingConfig):
    """The `ItemIndexSettings` of the served models (`--index`, `--index-recall`, ...)."""
    from keras_rec.recommender.item_index import ItemIndexSettings

    return ItemIndexSettings(
        config.index, config.index_recall, config.index_storage, seed=config.seed
    )


def unknown_user_id(user_ids: np.ndarray):
    """An id absent from `user_ids` (same type), for the served fallback's example."""
    if user_ids.dtype == np.int64:
        return (
            UNKNOWN_USER_ID if UNKNOWN_USER_ID not in set(user_ids.tolist()) else user_ids.max() + 1
        )
    taken = set(user_ids.tolist())
    candidate = "unknown-user"
    while candidate in taken:
        candidate += "-"
    return candidate


def _export_all(
    config, retrieval, ranker, recommend, inputs, user_vectors, item_vectors, hub_dir, report, chief
):
    """Exports the SavedModels; returns `({name: ExportResult}, QueryRetrieval, skipped)`.

    `query_retrieval` needs the sentence-transformer that embedded the
    items: it is skipped (named in `skipped` with the reason) when the item
    embeddings came from a file; `recommend` without a trained re-ranker.
    Each model is built just before its export
    and released after, so one served copy of the tables exists at a time.
    """
    from keras_rec.recommender.item_index import INDEX_FILE, index_metadata
    from keras_rec.recommender.recommender_inputs import seen_items_by_user
    from keras_rec.recommender.retrieval_serving import (
        QueryRetrieval,
        UserRetrieval,
        ranker_serving_function,
        tower_serving_function,
    )
    from keras_rec.serving.saved_model_export import publish_exports, stage_export
    from keras_rec.serving.versioned_dir import model_dir, next_version

    rows = np.arange(min(4, inputs.num_users))
    item_rows = np.arange(min(4, inputs.num_items))
    counts, popular = _known_popularity(inputs)
    k = min(config.k, inputs.num_items)
    skipped = {}
    if recommend is None:
        skipped["recommend"] = (
            "no re-ranker was trained: it needs --validation-fraction > 0, "
            "--recommend-candidates > 0 and users with a validation item among their "
            "candidates (see the summary's validation.reranker)"
        )
    if hub_dir is None or (config.interactions and config.item_embeddings):
        skipped["query_retrieval"] = (
            "the item embeddings came from --item-embeddings: the sentence-transformer "
            "that made them is unknown, so query texts cannot be embedded the same way"
        )

    def user_retrieval():
        model = UserRetrieval(
            user_vectors,
            inputs.user_ids,
            item_vectors,
            inputs.item_ids,
            inputs.item_titles,
            k=k,
            popular_items=popular,
            popular_scores=counts[popular] / max(counts.sum(), 1),
            seen_items=seen_items_by_user(inputs),
            index=index_settings(config),
        )
        user_ids = np.append(inputs.user_ids[rows], unknown_user_id(inputs.user_ids))
        return model, model.serve, {"user_id": user_ids}

    def query_retrieval():
        model = QueryRetrieval(
            os.path.join(hub_dir, "preprocess"),
            os.path.join(hub_dir, "encoder"),
            inputs.item_embeddings,
            inputs.item_ids,
            inputs.item_titles,
            k=k,
            index=index_settings(config),
            # The users' own texts (or their histories) stand in for query texts.
            sample_queries=inputs.user_embeddings,
        )
        return model, model.serve, {"text": np.array(EXAMPLE_QUERIES, object)}

    plan = {
        "user_tower": lambda: (
            retrieval.user_tower,
            tower_serving_function(retrieval.user_tower),
            inputs.user_features(rows),
        ),
        "item_tower": lambda: (
            retrieval.item_tower,
            tower_serving_function(retrieval.item_tower),
            inputs.item_features(item_rows),
        ),
        "ranker": lambda: (
            ranker,
            ranker_serving_function(ranker),
            {
                "user": inputs.user_embeddings[rows],
                "item": inputs.item_embeddings[item_rows[: len(rows)]],
            },
        ),
        "retrieval": user_retrieval,
        "recommend": lambda: (
            recommend,
            recommend.serve,
            {"user_id": np.append(inputs.user_ids[rows], unknown_user_id(inputs.user_ids))},
        ),
        "query_retrieval": query_retrieval,
    }
    metrics_text = json.dumps(report, indent=1)
    staged = {}
    index_reports = {}
    query_model = None
    # Each model is staged (saved, op-checked) and released; then one fresh
    # TensorFlow process checks every export, and each is published.
    try:
        for name, build in plan.items():
            if name in skipped:
                continue
            model, signature, examples = build()
            assets_extra = {"metrics.json": metrics_text}
            metadata = {"config": config_dict(config), "k": k}
            if name == "retrieval" and "item_tower" in staged:
                # `keras-rec add-items` embeds new items with this tower version.
                metadata["item_tower_version"] = staged["item_tower"].version
            if hasattr(model, "index_json"):
                assets_extra[INDEX_FILE] = model.index_json
                metadata["index"] = index_metadata(json.loads(model.index_json))
                index_reports[name] = metadata["index"]
            staged[name] = stage_export(
                model,
                config.output_dir,
                name,
                # Named before publishing: the retrieval export records it.
                version=next_version(model_dir(config.output_dir, name)) if chief else None,
                examples=examples,
                signatures={"serving_default": signature},
                target=config.target,
                chief=chief,
                # Only query_retrieval runs the TF Hub encoder.
                atol=SERVING_TOLERANCE[
                    config.encoder_precision if name == "query_retrieval" else "float32"
                ],
                assets_extra=assets_extra,
                metadata=metadata,
            )
            if name == "query_retrieval":
                query_model = model
            del model, signature
        results = dict(zip(staged, publish_exports(list(staged.values()))))
    except BaseException:
        for item in staged.values():
            item.discard()
        raise
    for name, result in results.items():
        logger.info("Exported %s to %s", name, result.path)
    report["indexes"] = index_reports
    return results, query_model, skipped
