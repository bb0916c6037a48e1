"""Stage 9, report: the run's report (`metrics.json`), its printed summary and plots."""

from __future__ import annotations

import json
import os

from keras_rec.recommender.stages.baselines import BASELINE_NAMES

# The figures of each baseline the printed summary keeps (the report keeps all).
BASELINE_SUMMARY = ("top100_accuracy", "user_recall_at_10", "user_ndcg_at_10", "user_mrr")


def run_report(config, prepared, towers, evaluation, baselines: dict, curves: dict, ranker) -> dict:
    """The full report: every figure, the split, the training history and the config."""
    from keras_rec.training.script_arguments import config_dict

    return {
        "retrieval": evaluation.metrics,
        **baselines,
        "recall_curves": {name: {str(k): v for k, v in c.items()} for name, c in curves.items()},
        "ranker": ranker.metrics,
        "split": prepared.data_report,
        "history": {k: [float(v) for v in vs] for k, vs in towers.history.history.items()},
        "config": config_dict(config),
    }


def run_summary(report: dict, inputs, prepared, towers, exports, served, run) -> dict:
    """The printed summary: the towers' figures, each baseline's headline figures, sizes,
    exports and where the run's time and memory went (filled in by the caller)."""
    metrics = report["retrieval"]
    baselines = {
        name: {k: figures[k] for k in BASELINE_SUMMARY if k in figures} or figures
        for name, figures in report.items()
        if name in BASELINE_NAMES
    }
    history = towers.history
    return {
        **{k: metrics[k] for k in metrics if k != "test_pairs"},
        **baselines,
        "ranker": report["ranker"],
        "train_pairs": int(len(inputs.train_items)),
        "validation_pairs": metrics.get("validation", {}).get("pairs", 0),
        "test_pairs": int(len(inputs.test_items)),
        "items": inputs.num_items,
        "users": inputs.num_users,
        "cold_items": int(len(inputs.cold_items)),
        "embedding_dim": inputs.embedding_dim,
        "embedding_cache": prepared.cache_counts(),
        "exports": exports.paths(),
        "exports_skipped": exports.skipped,
        "indexes": exports.indexes,
        "served_retrieval": served,
        "run_dir": run.run_dir,
        "resumed": run.resumed,
        "resumed_at_epoch": history.resumed_at[0] + 1 if history.resumed_at else None,
        "workers": run.workers,
        "epochs_run": towers.epochs_run,
    }


def timings(seconds: dict, towers, inputs) -> dict:
    """`<stage>_seconds`, rounded, and the towers' training examples per second."""
    return {
        **{f"{name}_seconds": round(value, 1) for name, value in seconds.items()},
        "train_examples_per_second": round(
            towers.epochs_run * len(inputs.train_items) / max(towers.seconds, 1e-9), 1
        ),
    }


def write_metrics(summary: dict, report: dict, run_dir: str, output_dir: str) -> str:
    """Writes `metrics.json` (the summary and the report) into the run directory and
    `output_dir`, atomically; returns the latter's path."""
    from fsspec.implementations.local import LocalFileSystem

    from keras_rec.atomic_io import write_bytes_atomic

    text = json.dumps({**summary, "report": report}, indent=1).encode("utf-8")
    paths = [os.path.join(run_dir, "metrics.json"), os.path.join(output_dir, "metrics.json")]
    for path in paths:
        write_bytes_atomic(LocalFileSystem(), path, text)
    return paths[-1]


def plot_run(curves: dict, history, run_dir: str, user_model: str = "mean") -> list[str]:
    """The Recall@K curves and the user model's training curves, as PNGs in `run_dir`."""
    from keras_rec.recommender.stages.user_model import TITLES
    from keras_rec.training.training_plots import plot_recall_curves, plot_training_curves

    return [
        plot_recall_curves(curves, os.path.join(run_dir, "recall_at_k.png")),
        plot_training_curves(
            history.history,
            os.path.join(run_dir, "training_curves.png"),
            title=TITLES[user_model],
        ),
    ]


def peak_rss_mb() -> int:
    """This process's peak resident memory so far, in MiB."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
