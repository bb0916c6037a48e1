"""`RunConfig`: the settings every training script shares."""

from __future__ import annotations

import dataclasses

from keras_rec.serving.op_check import DEFAULT_TARGET


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
    output_dir: str = "saved_models"
    cache: str | None = None
    distribute: str = "none"
    target: str = DEFAULT_TARGET
    mlflow: bool = False
    mlflow_experiment: str = "keras_rec"
