"""MLflow tracking of the training scripts, read back with `MlflowClient`."""

import os

import numpy as np
import pytest
import tensorflow as tf
from script_runs import FROZEN_EPOCHS

mlflow = pytest.importorskip("mlflow")  # a dev dependency: present in CI

from keras_rec.tracking import DEFAULT_TRACKING_URI, resolve_tracking_uri, tracking_run  # noqa: E402


def _artifacts(client, run_id, path=""):
    found = []
    for item in client.list_artifacts(run_id, path):
        found.extend(_artifacts(client, run_id, item.path) if item.is_dir else [item.path])
    return found


def test_tracking_uri_resolution(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(False) is None
    assert resolve_tracking_uri(True) == DEFAULT_TRACKING_URI == "sqlite:///mlruns.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert resolve_tracking_uri(False) == "http://mlflow:5000"
    with tracking_run(True, "x", chief=False) as tracker:  # non-chief workers never log
        assert not tracker.enabled and tracker.keras_callbacks() == []


def test_classifier_run_is_read_back(frozen_classifier_runs, tiny_model_path):
    """The suite's `train-classifier --mlflow --mlflow-experiment topics-exp` run."""
    summary = frozen_classifier_runs["first"]
    tracking_uri = f"sqlite:///{os.path.join(frozen_classifier_runs['root'], 'mlruns.db')}"
    mlflow.set_tracking_uri(tracking_uri)  # the logged models' `models:/` URIs resolve there
    client = mlflow.tracking.MlflowClient(tracking_uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "topics-exp"
    assert run.data.params["epochs"] == str(FROZEN_EPOCHS)
    assert run.data.params["model_name"] == "topics"
    assert run.data.params["hidden_units"] == "32"
    assert run.data.metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-4)
    assert "per_class.space.recall" in run.data.metrics
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == list(range(FROZEN_EPOCHS))
    artifacts = _artifacts(client, run.info.run_id)
    for expected in (
        "evaluation/confusion_matrix.png",
        "evaluation/training_curves.png",
        "evaluation/metrics.json",
        "saved_model/saved_model.pb",
        "saved_model/assets.extra/labels.txt",
    ):
        assert expected in artifacts, (expected, artifacts)

    # The pyfunc model takes raw text and equals the exported (= in-memory) model.
    texts = ["the movie story", "toy star wars", ""]
    pyfunc = mlflow.pyfunc.load_model(summary["mlflow_model_uri"])
    predicted = pyfunc.predict(texts)
    assert list(predicted.columns) == summary["labels"]
    served = tf.saved_model.load(summary["export_path"]).signatures["serving_default"]
    np.testing.assert_allclose(
        predicted.to_numpy(), served(text=tf.constant(texts))["probabilities"].numpy(), atol=1e-6
    )
    assert pyfunc.metadata.get_input_schema().input_types()[0].name == "string"

    # The sentence-transformer, as itself and as pyfunc.
    from keras_rec.embeddings import SentenceEncoder

    reference = SentenceEncoder(tiny_model_path, device="cpu").encode(texts)
    st_uri = summary["mlflow_sentence_transformer_uri"]
    loaded = mlflow.sentence_transformers.load_model(st_uri)
    np.testing.assert_allclose(loaded.encode(texts), reference, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(mlflow.pyfunc.load_model(st_uri).predict(texts)), reference, atol=1e-5
    )
