"""`RunConfig`: the settings every training script shares."""

from __future__ import annotations

import dataclasses

from keras_rec.serving.op_check import DEFAULT_TARGET
from keras_rec.training.config_flags import flag
from keras_rec.training.distribute import DISTRIBUTE_CHOICES


@dataclasses.dataclass
class RunConfig:
    """Settings of a training run that do not depend on the model.

    Script configs (`RecommenderTrainingConfig`, `ClassifierTrainingConfig`)
    extend it with their model's settings.

    Args:
        seed: int. Seeds the split, the initialization and the shuffling.
        output_dir: str. Base directory of the exports (TF Serving's).
        cache: str or None. Embedding cache root (local or fsspec URL).
        distribute: str. `none`, `mirrored` or `multi_worker`.
        target: str. TF Serving build for the op check.
        mlflow: bool. Track the run with MLflow (also on when
            `MLFLOW_TRACKING_URI` is set; default store `sqlite:///mlruns.db`).
        mlflow_experiment: str. MLflow experiment name.
    """

    seed: int = 42
    output_dir: str = flag("saved_models", "base directory of the exports")
    cache: str | None = flag(None, "embedding cache root (directory or fsspec URL)")
    distribute: str = flag("none", choices=DISTRIBUTE_CHOICES)
    target: str = flag(DEFAULT_TARGET, "TF Serving build for the op check")
    mlflow: bool = flag(
        False,
        "track the run with MLflow (on by itself when MLFLOW_TRACKING_URI is set; "
        "default store sqlite:///mlruns.db)",
    )
    mlflow_experiment: str = "keras_rec"
