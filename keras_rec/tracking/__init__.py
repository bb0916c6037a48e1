"""Experiment tracking of the training scripts with MLflow (optional: the `tracking` extra)."""

from keras_rec.tracking.mlflow_run import (
    DEFAULT_TRACKING_URI,
    MlflowTracker,
    NullTracker,
    resolve_tracking_uri,
    tracking_run,
)

__all__ = [
    "DEFAULT_TRACKING_URI",
    "MlflowTracker",
    "NullTracker",
    "resolve_tracking_uri",
    "tracking_run",
]
