"""Stage 10, tracking: the run's figures, plots, exports and models logged to MLflow."""

from __future__ import annotations

import os


def track_run(tracker, summary: dict, report: dict, plots: list, exports, prepared) -> dict:
    """Logs the run to `tracker`; returns the summary entries it adds (MLflow URIs, run id).

    Logged: the towers' figures, the baselines' (those not skipped), the
    ranker's and the training seconds; the plots and `metrics.json`; every
    SavedModel written; `query_retrieval` as a pyfunc model taking raw text
    (checked against the in-memory model); the sentence-transformer.
    """
    from keras_rec.recommender.stages.baselines import BASELINE_NAMES

    if not tracker.enabled:
        return {}
    baselines = {
        name: report[name]
        for name in BASELINE_NAMES
        if name in report and "skipped" not in report[name]
    }
    tracker.log_metrics(
        {
            **report["retrieval"],
            **baselines,
            "ranker": report["ranker"],
            "train_seconds": summary["train_seconds"],
        }
    )
    for path in (*plots, os.path.join(summary["run_dir"], "metrics.json")):
        tracker.log_artifact(path, "evaluation")
    for name, result in exports.results.items():
        if result.written:
            tracker.log_artifacts(result.path, f"saved_models/{name}")
    added = {}
    query = exports.results.get("query_retrieval")
    if query is not None and query.written:
        added["mlflow_model_uri"] = _log_query_model(tracker, query.path, exports.query_model)
    if prepared.sentence_encoder is not None:
        from keras_rec.recommender.stages.exports import EXAMPLE_QUERIES

        added["mlflow_sentence_transformer_uri"] = tracker.log_sentence_transformer(
            prepared.sentence_encoder.model, list(EXAMPLE_QUERIES)
        )
    added["mlflow_run_id"] = tracker.run_id
    return added


def _log_query_model(tracker, path: str, model) -> str:
    """Logs the `query_retrieval` export as a text-in pyfunc model; returns its URI."""
    import tensorflow as tf

    from keras_rec.recommender.stages.exports import EXAMPLE_QUERIES

    queries = list(EXAMPLE_QUERIES)
    in_memory = model.serve(tf.constant(queries))
    return tracker.log_text_model(
        path,
        "query_retrieval",
        queries,
        name="query_retrieval",
        expected={
            "item_ids": in_memory["item_ids"].numpy(),
            "scores": in_memory["scores"].numpy(),
        },
    )
