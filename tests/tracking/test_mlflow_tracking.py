"""MLflow tracking of the training scripts, read back with `MlflowClient`."""

import numpy as np
import pytest
import tensorflow as tf

mlflow = pytest.importorskip("mlflow")  # a dev dependency: present in CI

from keras_rec.classifier import ClassifierTrainingConfig, train_classifier  # noqa: E402
from keras_rec.tracking import DEFAULT_TRACKING_URI, resolve_tracking_uri, tracking_run  # noqa: E402


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # artifacts land in ./mlruns
    monkeypatch.setenv("KERAS_REC_HOME", str(tmp_path / "home"))
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


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


def test_classifier_run_is_read_back(tracking_uri, tmp_path, labelled_csv, tiny_model_path):
    config = ClassifierTrainingConfig(
        data=labelled_csv,
        text_column="body",
        label_column="topic",
        model=tiny_model_path,
        epochs=6,
        batch_size=16,
        hidden_units=(32,),
        head_learning_rate=1e-2,
        test_fraction=0.25,
        output_dir=str(tmp_path / "saved_models"),
        model_name="topics",
        cache=str(tmp_path / "cache"),
        patience=0,
        mlflow=True,
        mlflow_experiment="topics-exp",
    )
    summary = train_classifier(config)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "topics-exp"
    assert run.data.params["epochs"] == "6" and run.data.params["model_name"] == "topics"
    assert run.data.params["hidden_units"] == "32"
    assert run.data.metrics["test_accuracy"] == pytest.approx(summary["accuracy"], abs=1e-4)
    assert "per_class.space.recall" in run.data.metrics
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == list(range(6))
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
