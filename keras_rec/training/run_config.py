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
        resume: bool. Resume an interrupted run with the same settings from
            its backups (`keras_rec.training.run_checkpoints`); False deletes
            them and starts over.
        checkpoint_steps: int or None. Back up every N training steps instead
            of at each epoch end.
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
    resume: bool = flag(
        True,
        "start over instead of resuming from the backups of an interrupted run with the "
        "same settings",
    )
    checkpoint_steps: int | None = flag(
        None, "back up every N training steps instead of at each epoch end"
    )

    def __post_init__(self):
        steps = self.checkpoint_steps
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps < 1
        ):
            raise ValueError(
                "`checkpoint_steps` must be a positive integer or None. "
                f"Received: checkpoint_steps={steps!r}"
            )
