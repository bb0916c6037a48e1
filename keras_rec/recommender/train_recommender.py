"""`train_recommender`: the recommender's training run, as a pipeline of named stages.

Each stage is a module of `keras_rec.recommender.stages` with a function that
takes what it needs and returns a small result; this module chains them,
top to bottom.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from keras_rec.recommender.stages.report import peak_rss_mb
from keras_rec.training.recommender_config import (
    RecommenderTrainingConfig,
    check_recommender_config,
    index_settings,
)
from keras_rec.training.script_arguments import config_dict


def train_recommender(config: RecommenderTrainingConfig) -> dict[str, Any]:
    """Trains, evaluates and exports the two-tower recommender; returns its summary.

    The stages (`keras_rec.recommender.stages`), in order:
    1. `inputs`: MovieLens-100K split by TFRS's protocol (or the user's own
       files), `validation_fraction` carved out, texts embedded through the cache.
    2. `user_model`: the towers (in-batch softmax) or the `sequence` model, under
       the `tf.distribute` strategy, stopped early on the validation loss.
    3. `validation`: the towers' validation figures, the epochs chosen there,
       and the refit on training + validation (`refit`).
    4. `two_stage`: the EASE item-item feature and the re-ranker, chosen and
       trained on the towers' candidates for the validation pairs.
    5. `baselines`: popularity, EASE and item-kNN, settings chosen on validation.
    6. `ranker`: concatenate -> MLP on the text embeddings.
    7. `evaluation`: the towers and the two-stage model on the test split,
       known items removed per user (and the served IVF index, when approximate).
    8. `exports`: `user_tower` (or `next_items`), `item_tower`, `ranker`, `retrieval`,
       `recommend` and `query_retrieval`, checked through TF Serving's loader.
    9. `report`: `metrics.json` (output_dir, run directory, each export's
       `assets.extra/`) and the plots; 10. `tracking`: MLflow, when on.
    Each training stage checkpoints (and resumes) on its own.

    Args:
        config: a `RecommenderTrainingConfig`.

    Returns:
        A JSON-serializable summary: metrics, baselines, exports.
    """
    from keras_rec.tracking import tracking_run
    from keras_rec.training.training_run import training_run

    check_recommender_config(config)
    with (
        training_run(config, "recommender") as run,
        tracking_run(
            config.mlflow, config.mlflow_experiment, "recommender", chief=run.chief
        ) as tracker,
    ):
        return _run_stages(config, run, tracker)


@dataclasses.dataclass
class _Trained:
    """Stages 1-4: inputs (validation merged after a refit), towers, validation, two-stage."""

    prepared: Any
    inputs: Any
    towers: Any
    validation: dict
    tuned: dict
    stage_two: Any
    peak_rss: dict


@dataclasses.dataclass
class _Evaluated:
    """Stages 5 and 7: the figures of the models and the baselines on the test split."""

    vectors: tuple
    users: Any
    recommend: Any
    evaluation: Any
    baselines: dict
    curves: dict
    seconds: float


def _run_stages(config: RecommenderTrainingConfig, run, tracker) -> dict[str, Any]:
    from keras_rec.recommender.stages.ranker import train_ranker

    start = time.perf_counter()
    tracker.log_params(config_dict(config))
    index = index_settings(config)
    trained = _train(config, run, tracker, index)
    evaluated = _evaluate(config, trained, index)
    ranker = train_ranker(config, trained.inputs, run, tracker)
    return _export_and_report(config, run, tracker, trained, evaluated, ranker, index, start)


def _train(config, run, tracker, index) -> _Trained:
    from keras_rec.recommender.stages.baselines import tune_baselines
    from keras_rec.recommender.stages.inputs import prepare_inputs
    from keras_rec.recommender.stages.two_stage import fit_stage_two
    from keras_rec.recommender.stages.user_model import max_epochs, train_user_model
    from keras_rec.recommender.stages.validation import refit_towers, validation_report

    prepared = prepare_inputs(config)
    inputs = prepared.inputs
    peak_rss = {"data": peak_rss_mb()}
    towers = train_user_model(config, inputs, run, tracker)
    validation, tuned, stage_two = {}, {}, None
    if len(inputs.val_items):
        vectors = towers.vectors(inputs)
        validation = validation_report(
            inputs, towers, vectors, config.eval_users, config.seed, max_epochs(config)
        )
        tuned = tune_baselines(inputs, config.ease_baseline)
        validation.update(tuned)
        if config.recommend_candidates:
            stage_two = fit_stage_two(config, inputs, vectors, run.strategy, index)
            validation.update(stage_two.report)
        if config.refit:
            inputs, towers = refit_towers(config, inputs, towers, validation["chosen_epochs"], run)
    peak_rss["training"] = peak_rss_mb()
    return _Trained(prepared, inputs, towers, validation, tuned, stage_two, peak_rss)


def _evaluate(config, trained: _Trained, index) -> _Evaluated:
    from keras_rec.recommender.evaluation import retrieval_evaluation as evaluations
    from keras_rec.recommender.stages import baselines as baseline_stage
    from keras_rec.recommender.stages.evaluation import evaluate_models
    from keras_rec.recommender.stages.two_stage import recommend_model

    start = time.perf_counter()
    inputs, stage_two = trained.inputs, trained.stage_two
    vectors = trained.towers.vectors(inputs)
    users = evaluations.evaluation_users(inputs, config.eval_users, config.seed)
    recommend = None
    if stage_two is not None and stage_two.reranker is not None:
        recommend = recommend_model(config, inputs, vectors, stage_two, index)
    evaluation = evaluate_models(inputs, vectors, recommend, users, evaluations.CURVE_KS)
    if trained.validation:
        evaluation.metrics["validation"] = trained.validation
    baselines = {
        "popularity": evaluations.popularity_baseline(inputs, evaluations.CURVE_KS, users),
        **baseline_stage.evaluate_baselines(
            inputs, trained.tuned, config.ease_baseline, users, evaluations.CURVE_KS
        ),
    }
    curves = dict(evaluation.curves)
    for name, label in baseline_stage.CURVE_NAMES.items():
        if "recall_curve" in baselines[name]:
            curves[label] = baselines[name].pop("recall_curve")
    seconds = time.perf_counter() - start
    return _Evaluated(vectors, users, recommend, evaluation, baselines, curves, seconds)


def _export_and_report(config, run, tracker, trained, evaluated, ranker, index, start):
    from keras_rec.recommender.stages.evaluation import evaluate_served_index
    from keras_rec.recommender.stages.exports import ServedParts, export_models
    from keras_rec.recommender.stages.report import (
        plot_run,
        run_report,
        run_summary,
        timings,
        write_metrics,
    )
    from keras_rec.recommender.stages.tracking import track_run

    inputs, towers = trained.inputs, trained.towers
    plots = plot_run(evaluated.curves, towers.history, run.run_dir, config.user_model)
    report = run_report(
        config, trained.prepared, towers, evaluated.evaluation, evaluated.baselines,
        evaluated.curves, ranker,
    )  # fmt: skip
    export_start = time.perf_counter()
    parts = ServedParts(
        towers.retrieval, ranker.model, evaluated.recommend, evaluated.vectors,
        trained.prepared.hub_dir,
    )  # fmt: skip
    exports = export_models(config, parts, inputs, report, run.chief, index)
    report["indexes"] = exports.indexes
    exact_recall = evaluated.evaluation.metrics["user_recall_at_10"]
    served = evaluate_served_index(exports, inputs, evaluated.users, exact_recall)
    seconds = {
        "embed": trained.prepared.seconds,
        "train": towers.seconds,
        "evaluation": evaluated.seconds,
        "export": time.perf_counter() - export_start,
    }
    summary = run_summary(report, inputs, trained.prepared, towers, exports, served, run)
    summary.update(timings(seconds, towers, inputs))
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["peak_rss_mb"] = {**trained.peak_rss, "evaluation_and_export": peak_rss_mb()}
    if run.chief:
        summary["metrics_json"] = write_metrics(summary, report, run.run_dir, config.output_dir)
    summary.update(track_run(tracker, summary, report, plots, exports, trained.prepared))
    return summary
