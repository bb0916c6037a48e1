"""`tracking_run`: one MLflow run around a training script, or nothing at all."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

DEFAULT_TRACKING_URI = "sqlite:///mlruns.db"
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a parameter value
PYFUNC_KINDS = ("classifier", "query_retrieval")


def resolve_tracking_uri(enabled: bool) -> str | None:
    """The tracking URI to log to, or None when tracking is off.

    `MLFLOW_TRACKING_URI` turns tracking on by itself; `enabled` (the
    scripts' `--mlflow`) without it logs to `sqlite:///mlruns.db` in the
    working directory (artifacts under `./mlruns/`).
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return DEFAULT_TRACKING_URI if enabled else None


@contextlib.contextmanager
def tracking_run(
    enabled: bool, experiment: str, run_name: str | None = None, chief: bool = True
) -> Iterator[MlflowTracker | NullTracker]:
    """Yields an `MlflowTracker` inside an active MLflow run, or a `NullTracker`.

    Tracking is on when `enabled` or `MLFLOW_TRACKING_URI` is set, and only
    on the chief worker. An exception inside marks the run FAILED.

    Args:
        enabled: bool. The script's `--mlflow`.
        experiment: str. MLflow experiment name (created when missing).
        run_name: str or None.
        chief: bool. Non-chief workers never log.
    """
    uri = resolve_tracking_uri(enabled)
    if uri is None or not chief:
        yield NullTracker()
        return
    try:
        import mlflow
    except ImportError as error:
        raise ImportError(
            "MLflow tracking needs the `mlflow` package: pip install 'keras_rec[tracking]'."
        ) from error
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        yield MlflowTracker(run)


class NullTracker:
    """Tracking switched off: every method does nothing."""

    enabled = False
    run_id = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        pass

    def keras_callbacks(self, prefix: str = "") -> list:
        return []

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        pass

    def log_artifacts(self, directory: str, artifact_path: str | None = None) -> None:
        pass

    def log_text_model(self, *args, **kwargs) -> None:
        return None

    def log_sentence_transformer(self, *args, **kwargs) -> None:
        return None


class MlflowTracker:
    """Logs to the active MLflow run `run`.

    Nested dicts are flattened with dots (`{"ranker": {"test_auc": 0.8}}` ->
    `ranker.test_auc`); metrics keep finite numbers only.
    """

    enabled = True

    def __init__(self, run):
        self.run = run
        self.run_id = run.info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        flat = {k: _param_text(v) for k, v in _flatten(params).items()}
        mlflow.log_params(flat)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        import mlflow

        numbers = {
            _metric_key(k): float(v)
            for k, v in _flatten(metrics).items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        if numbers:
            mlflow.log_metrics(numbers, step=step)

    def keras_callbacks(self, prefix: str = "") -> list:
        """A Keras callback logging each epoch's `logs` (loss, val_loss, ...) at step = epoch.

        `prefix` is put before the names, e.g. `"ranker_"` for a second model.
        """
        import keras

        tracker = self

        class EpochMetrics(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                tracker.log_metrics(
                    {f"{prefix}{k}": v for k, v in (logs or {}).items()}, step=epoch
                )

        return [EpochMetrics()]

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(path, artifact_path)

    def log_artifacts(self, directory: str, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifacts(directory, artifact_path)

    def log_text_model(
        self,
        saved_model_path: str,
        kind: str,
        examples: Sequence[str],
        name: str,
        labels: Sequence[str] | None = None,
        expected=None,
    ) -> str:
        """Logs an exported SavedModel as an MLflow pyfunc model that takes raw text.

        `mlflow.pyfunc.load_model(uri).predict(["some text", ...])` returns a
        DataFrame: for `kind="classifier"` one probability column per label;
        for `kind="query_retrieval"` the columns `item_ids`, `scores` and
        `titles` (lists of the top K). The signature is inferred from
        `examples` and their predictions; the model runs with TensorFlow and
        TF Text only (its code travels with it, keras_rec is not needed).

        Args:
            saved_model_path: str. The export (`keras_rec.serving.export`).
            kind: str. `"classifier"` or `"query_retrieval"`.
            examples: real input texts (>= 2).
            name: str. The logged model's name.
            labels: class names (classifier).
            expected: optional dict of column -> array `[len(examples), ...]`
                the pyfunc must reproduce on `examples` (the in-memory model's
                outputs); a mismatch raises `AssertionError` and logs nothing.

        Returns:
            The model URI (`models:/...`).
        """
        import mlflow
        import numpy as np
        import pandas as pd
        from mlflow.models import infer_signature

        from keras_rec.tracking import saved_model_pyfunc

        if kind not in PYFUNC_KINDS:
            raise ValueError(f"`kind` must be one of {PYFUNC_KINDS}. Received: {kind!r}")
        examples = [str(t) for t in examples]
        model_config = {"kind": kind, "labels": list(labels or [])}
        local = saved_model_pyfunc.TextSavedModel()
        local.load_from(saved_model_path, model_config)
        predictions = local.predict(None, examples)
        for column, values in (expected or {}).items():
            got = np.array(predictions[column].tolist())
            if got.dtype.kind in "fiu":
                same = np.allclose(got, np.asarray(values), atol=1e-5)
            else:
                same = np.array_equal(got, np.asarray(values))
            if not same:
                raise AssertionError(
                    f"The pyfunc model's {column!r} differs from the in-memory model's: "
                    f"{got[:2]!r} vs {np.asarray(values)[:2]!r}"
                )
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=saved_model_pyfunc.__file__,
            artifacts={"saved_model": saved_model_path},
            model_config=model_config,
            signature=infer_signature(examples, predictions),
            input_example=pd.DataFrame({"text": examples[:2]})["text"].tolist(),
            pip_requirements=_tensorflow_requirements(),
        )
        return info.model_uri

    def log_sentence_transformer(
        self, model, examples: Sequence[str], name: str = "sentence_transformer"
    ) -> str:
        """Logs the sentence-transformer (for `mlflow.sentence_transformers` and pyfunc)."""
        import mlflow

        info = mlflow.sentence_transformers.log_model(
            model,
            name=name,
            input_example=[str(t) for t in examples[:2]],
            pip_requirements=_sentence_transformers_requirements(),
        )
        return info.model_uri


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _param_text(value: Any) -> str:
    text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text[:MAX_PARAM_LENGTH]


def _metric_key(key: str) -> str:
    # MLflow allows alphanumerics, _ - . space / in metric names.
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in key)


def _installed(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return name


def _tensorflow_requirements() -> list[str]:
    return [_installed("tensorflow"), _installed("tensorflow-text"), "pandas", "numpy"]


def _sentence_transformers_requirements() -> list[str]:
    return [_installed("sentence-transformers"), _installed("torch"), _installed("transformers")]
