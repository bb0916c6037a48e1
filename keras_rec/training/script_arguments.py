"""Pieces shared by the training scripts: config checks, run directories, CLI flags."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Iterable
from typing import Any


def require_positive_ints(config: Any, names: Iterable[str]) -> None:
    """Raises `ValueError` naming the first of `names` that is not an integer >= 1."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def new_run_dir(output_dir: str, name: str) -> str:
    """Creates and returns `<output_dir>/runs/<name>-<YYYYmmdd-HHMMSS>/` (absolute)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = os.path.join(os.path.abspath(output_dir), "runs", f"{name}-{stamp}")
    os.makedirs(run_dir, exist_ok=True)
    return run_dir


def config_dict(config: Any) -> dict[str, Any]:
    """A training config dataclass as a JSON-serializable dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items()}


def parse_hidden_units(text: str) -> tuple[int, ...]:
    """`"256,64"` -> `(256, 64)`; `""` -> `()`."""
    try:
        return tuple(int(unit) for unit in text.split(",") if unit.strip())
    except ValueError as error:
        raise ValueError(
            f"`--hidden-units` must be comma-separated integers. Received: {text!r}"
        ) from error


def add_run_arguments(parser: argparse.ArgumentParser, defaults: Any) -> None:
    """The flags every training script has, with defaults from its config dataclass.

    `--output-dir`, `--cache`, `--distribute`, `--target`, `--mlflow`,
    `--mlflow-experiment`.
    """
    from keras_rec.training.distribute import DISTRIBUTE_CHOICES

    parser.add_argument("--output-dir", default=defaults.output_dir,
                        help="base directory of the exports")
    parser.add_argument("--cache", default=None,
                        help="embedding cache root (directory or fsspec URL)")
    parser.add_argument("--distribute", choices=DISTRIBUTE_CHOICES, default=defaults.distribute)
    parser.add_argument("--target", default=defaults.target,
                        help="TF Serving build for the op check")
    parser.add_argument(
        "--mlflow", action="store_true",
        help="track the run with MLflow (on by itself when MLFLOW_TRACKING_URI is set; "
        "default store sqlite:///mlruns.db)",
    )
    parser.add_argument("--mlflow-experiment", default=defaults.mlflow_experiment)


def parse_script_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """SageMaker-aware, strict parsing (`keras_rec.training.sagemaker_env.parse_training_args`).

    An argument the script does not know exits with status 2 before any work,
    naming it and the closest known flag.
    """
    from keras_rec.training.sagemaker_env import parse_training_args

    return parse_training_args(parser, argv)
