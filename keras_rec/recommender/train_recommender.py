"""`train_recommender`: MovieLens -> texts -> embeddings -> two towers -> evaluation -> exports."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import numpy as np

from keras_rec.training.recommender_config import RecommenderTrainingConfig
from keras_rec.training.script_arguments import config_dict, require_positive_ints

logger = logging.getLogger(__name__)

EXPORT_NAMES = ("user_tower", "item_tower", "ranker", "retrieval", "query_retrieval")
EXAMPLE_QUERIES = (
    "a space adventure with robots and a rebellion",
    "romantic comedy set in New York",
    "scary horror movie",
)
UNKNOWN_USER_ID = 999_999
RANKER_BATCH_SIZE = 1024


def train_recommender(config: RecommenderTrainingConfig) -> dict[str, Any]:
    """Trains, evaluates and exports the two-tower recommender; returns its summary.

    1. MovieLens-100K, checked (`DataValidationError` on missing ids or
       duplicate (user, item) pairs), keyed by "Title (Year)" as TFRS keys
       it, split by TFRS's basic-retrieval protocol (80% / 20% after a seeded
       shuffle); with `cold_start_fraction`, those items leave training.
    2. Item texts (title, year, genres) and user texts (demographics, liked
       titles of the training split only) embedded through the cache.
    3. A user tower (text embedding, mean embedding of the training items,
       id) and an item tower (text embedding, id), trained with in-batch
       softmax (temperature, log-Q, accidental hits removed) under the
       `tf.distribute` strategy.
    4. Evaluation with training items removed per user, beside a popularity
       baseline: top-100 accuracy, Recall/NDCG@10/100, MRR, cold start.
    5. The ranker (concatenate -> MLP) on the text embeddings.
    6. `keras_rec.serving.export` of `user_tower`, `item_tower`, `ranker`,
       `retrieval` (user id -> top-K) and `query_retrieval` (text -> top-K);
       `metrics.json` in `output_dir`, in the run directory and in every
       export's `assets.extra/`.

    With MLflow tracking on (`mlflow=True` or `MLFLOW_TRACKING_URI`), the
    run logs the config, per-epoch losses, the final metrics, the recall@K
    and training-curve plots, the five SavedModels, `query_retrieval` as a
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
    from keras_rec.recommender.retrieval_evaluation import evaluate_retrieval, recall_curve
    from keras_rec.recommender.retrieval_metrics import popularity_scores
    from keras_rec.training.training_plots import plot_recall_curves, plot_training_curves

    start = time.perf_counter()
    tracker.log_params(config_dict(config))
    run_dir = run.run_dir

    # === Data and embeddings ===
    split, inputs, hub_dir, embed = prepare_movielens_inputs(config)
    sentence_encoder = getattr(embed, "sentence_encoder", None)
    embed_seconds = time.perf_counter() - start

    # === Retrieval training ===
    retrieval, history, train_seconds = fit_retrieval(
        config,
        inputs,
        run.strategy,
        callbacks=[
            keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), write_graph=False),
            *tracker.keras_callbacks(),
        ],
        checkpoint_dir=run.checkpoint_dir("retrieval"),
        chief=run.chief,
    )

    # === Evaluation ===
    user_vectors, item_vectors = tower_vectors(retrieval, inputs)
    scores = user_vectors @ item_vectors.T
    metrics = evaluate_retrieval(scores, inputs)
    popular = np.asarray(popularity_scores(inputs.train_items, inputs.num_items, inputs.num_users))
    popularity = evaluate_retrieval(popular, inputs)
    curves = {
        "two-tower": recall_curve(scores, inputs),
        "popularity": recall_curve(popular, inputs),
    }
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
        "recall_curves": {name: {str(k): v for k, v in c.items()} for name, c in curves.items()},
        "ranker": ranker_metrics,
        "split": {**split.summary(), "cold_item_ids": split.cold_item_ids.tolist()},
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "config": config_dict(config),
    }
    exports, query_retrieval = _export_all(
        config, retrieval, ranker, inputs, item_vectors, hub_dir, report, run.chief
    )
    summary = {
        **{k: metrics[k] for k in metrics if k != "test_pairs"},
        "popularity": {
            k: popularity[k]
            for k in ("top100_accuracy", "user_recall_at_10", "user_ndcg_at_10", "user_mrr")
        },
        "ranker": ranker_metrics,
        "train_pairs": int(len(inputs.train_items)),
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
        "run_dir": run_dir,
        "resumed": run.resumed,
        "resumed_at_epoch": history.resumed_at[0] + 1 if history.resumed_at else None,
        "workers": run.workers,
        "epochs_run": len(history.history.get("loss", [])),
        "embed_seconds": round(embed_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "train_examples_per_second": round(
            config.epochs * len(inputs.train_items) / max(train_seconds, 1e-9), 1
        ),
        "seconds": round(time.perf_counter() - start, 1),
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
                "ranker": ranker_metrics,
                "train_seconds": train_seconds,
            }
        )
        for path in (*plots, os.path.join(run_dir, "metrics.json")):
            tracker.log_artifact(path, "evaluation")
        for name, result in exports.items():
            if result.written:
                tracker.log_artifacts(result.path, f"saved_models/{name}")
        if exports["query_retrieval"].written:
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
    hub_dir, sentence_encoder = hub_modules(config.model, config.hub_dir)
    embed = text_embedder(sentence_encoder, config.cache, hub_dir)
    return split, build_inputs(split, items, users, embed), hub_dir, embed


def fit_retrieval(
    config: RecommenderTrainingConfig,
    inputs,
    strategy=None,
    callbacks=None,
    checkpoint_dir: str | None = None,
    chief: bool = True,
):
    """Builds and trains the two towers; returns `(TwoTowerRetrieval, History, seconds)`.

    The model is built and compiled under `strategy.scope()` (default: the
    current strategy) and trained by `strategy_fit`, so `MirroredStrategy`
    and `MultiWorkerMirroredStrategy` replicate it; `config.batch_size` is
    the global batch, and each replica's in-batch softmax runs over its
    share of it. With `checkpoint_dir`, training resumes from (and writes)
    checkpoints there.
    """
    import keras
    import tensorflow as tf

    from keras_rec.training.strategy_fit import strategy_fit

    strategy = strategy or tf.distribute.get_strategy()
    start = time.perf_counter()
    with strategy.scope():
        retrieval = _build_retrieval(config, inputs)
        retrieval.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        retrieval(
            {
                "user": inputs.user_features(inputs.train_users[:2]),
                "item": inputs.item_features(inputs.train_items[:2]),
            }
        )
    history = strategy_fit(
        retrieval,
        _training_pairs(inputs, config),
        config.batch_size,
        config.epochs,
        strategy=strategy,
        seed=config.seed,
        callbacks=callbacks or [],
        checkpoint_dir=checkpoint_dir,
        checkpoint_steps=config.checkpoint_steps,
        chief=chief,
        name="retrieval",
    )
    return retrieval, history, time.perf_counter() - start


def tower_vectors(retrieval, inputs) -> tuple[np.ndarray, np.ndarray]:
    """`(user vectors [U, D], item vectors [N, D])` of every user and item row."""
    from keras_rec.training.local_predict import predict_locally

    users = np.arange(inputs.num_users)
    items = np.arange(inputs.num_items)
    user_vectors = predict_locally(retrieval.user_tower, inputs.user_features(users))
    item_vectors = predict_locally(retrieval.item_tower, inputs.item_features(items))
    return np.asarray(user_vectors, np.float32), np.asarray(item_vectors, np.float32)


def _check_config(config: RecommenderTrainingConfig) -> None:
    require_positive_ints(config, ("epochs", "batch_size", "k", "output_dim"))
    if config.ranker_epochs < 0:
        raise ValueError(f"`ranker_epochs` must be >= 0. Received: {config.ranker_epochs!r}")
    if not 0.0 <= config.cold_start_fraction < 1.0:
        raise ValueError(
            f"`cold_start_fraction` must be in [0, 1). Received: {config.cold_start_fraction!r}"
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
        dim, "user_tower", id_vocabulary_size=inputs.num_users + 1, feature_dim=dim, **common
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


def _training_pairs(inputs, config):
    """Unbatched `tf.data` of `{"user", "item", "item_key", "item_log_q"}` training pairs."""
    import tensorflow as tf

    x = {
        "user": inputs.user_features(inputs.train_users),
        "item": inputs.item_features(inputs.train_items),
        "item_key": inputs.item_ids[inputs.train_items],
    }
    if config.log_q:
        x["item_log_q"] = inputs.item_log_q()[inputs.train_items]
    return tf.data.Dataset.from_tensor_slices(x)


def _train_ranker(config, inputs, run, tracker):
    """The concatenate-MLP ranker on (user text, item text) embeddings, and its test figures."""
    import keras
    import tensorflow as tf

    from keras_rec.recommender.ranker import build_ranker
    from keras_rec.training.local_predict import predict_locally
    from keras_rec.training.strategy_fit import strategy_fit

    dim = inputs.embedding_dim
    with run.strategy.scope():
        ranker = build_ranker(dim, dim, task=config.ranker_task)
    if config.ranker_task == "binary":
        from sklearn.metrics import roc_auc_score

        from keras_rec.recommender.ranker_data import sampled_negative_pairs

        users, items, labels = sampled_negative_pairs(
            inputs.train_users,
            inputs.train_items,
            inputs.num_items,
            config.ranker_negatives,
            seed=config.seed,
        )
        test_users, test_items, test_labels = sampled_negative_pairs(
            inputs.test_users,
            inputs.test_items,
            inputs.num_items,
            config.ranker_negatives,
            seed=config.seed + 1,
        )
        loss = "binary_crossentropy"
    else:
        users, items, labels = inputs.train_users, inputs.train_items, inputs.train_ratings
        test_users, test_items, test_labels = (
            inputs.test_users,
            inputs.test_items,
            inputs.test_ratings,
        )
        loss = "mse"
    with run.strategy.scope():
        ranker.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss)

    def features(u, i):
        return {"user": inputs.user_embeddings[u], "item": inputs.item_embeddings[i]}

    if config.ranker_epochs:
        strategy_fit(
            ranker,
            tf.data.Dataset.from_tensor_slices((features(users, items), labels)),
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
    predictions = predict_locally(ranker, features(test_users, test_items)).reshape(-1)
    if config.ranker_task == "binary":
        metrics = {
            "task": "binary",
            "test_auc": round(float(roc_auc_score(test_labels, predictions)), 4),
            "negatives_per_positive": config.ranker_negatives,
        }
    else:
        rmse = float(np.sqrt(np.mean((predictions - test_labels) ** 2)))
        mean_rmse = float(np.sqrt(np.mean((labels.mean() - test_labels) ** 2)))
        metrics = {
            "task": "rating",
            "test_rmse": round(rmse, 4),
            "train_mean_rmse": round(mean_rmse, 4),
        }
    metrics["test_pairs"] = int(len(test_labels))
    return ranker, metrics


def _export_all(config, retrieval, ranker, inputs, item_vectors, hub_dir, report, chief):
    """Exports the five SavedModels; returns `{name: ExportResult}`."""
    from keras_rec.recommender.recommender_inputs import seen_items_by_user
    from keras_rec.recommender.retrieval_serving import (
        QueryRetrieval,
        UserRetrieval,
        ranker_serving_function,
        tower_serving_function,
    )
    from keras_rec.serving.saved_model_export import export

    rows = np.arange(min(4, inputs.num_users))
    item_rows = np.arange(min(4, inputs.num_items))
    counts = np.bincount(inputs.train_items, minlength=inputs.num_items)
    popular = np.argsort(-counts, kind="stable")
    k = min(config.k, inputs.num_items)
    user_retrieval = UserRetrieval(
        retrieval.user_tower,
        inputs.user_ids,
        inputs.user_features(np.arange(inputs.num_users)),
        item_vectors,
        inputs.item_ids,
        inputs.item_titles,
        k=k,
        popular_items=popular,
        popular_scores=counts[popular] / max(counts.sum(), 1),
        seen_items=seen_items_by_user(inputs),
    )
    query_retrieval = QueryRetrieval(
        os.path.join(hub_dir, "preprocess"),
        os.path.join(hub_dir, "encoder"),
        inputs.item_embeddings,
        inputs.item_ids,
        inputs.item_titles,
        k=k,
    )
    user_ids = np.append(inputs.user_ids[rows], UNKNOWN_USER_ID)
    plan = {
        "user_tower": (
            retrieval.user_tower,
            tower_serving_function(retrieval.user_tower),
            inputs.user_features(rows),
        ),
        "item_tower": (
            retrieval.item_tower,
            tower_serving_function(retrieval.item_tower),
            inputs.item_features(item_rows),
        ),
        "ranker": (
            ranker,
            ranker_serving_function(ranker),
            {
                "user": inputs.user_embeddings[rows],
                "item": inputs.item_embeddings[item_rows[: len(rows)]],
            },
        ),
        "retrieval": (user_retrieval, user_retrieval.serve, {"user_id": user_ids}),
        "query_retrieval": (
            query_retrieval,
            query_retrieval.serve,
            {"text": np.array(EXAMPLE_QUERIES, object)},
        ),
    }
    metrics_text = json.dumps(report, indent=1)
    results = {}
    for name, (model, signature, examples) in plan.items():
        results[name] = export(
            model,
            config.output_dir,
            name,
            examples=examples,
            signatures={"serving_default": signature},
            target=config.target,
            chief=chief,
            assets_extra={"metrics.json": metrics_text},
            metadata={"config": config_dict(config), "k": k},
        )
        logger.info("Exported %s to %s", name, results[name].path)
    return results, query_retrieval
