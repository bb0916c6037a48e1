"""End to end: `keras-rec train-classifier` on a small labelled file with a tiny encoder."""

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from keras_rec.classifier import ClassifierTrainingConfig, train_classifier
from keras_rec.cli import main
from keras_rec.data import DataValidationError


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_REC_HOME", str(tmp_path / "home"))


def _config(tmp_path, labelled_csv, model_path, **kwargs):
    return ClassifierTrainingConfig(
        data=labelled_csv,
        text_column="body",
        label_column="topic",
        model=model_path,
        epochs=kwargs.pop("epochs", 40),
        batch_size=16,
        hidden_units=(32,),
        dropout=0.1,
        head_learning_rate=kwargs.pop("head_learning_rate", 1e-2),
        test_fraction=0.25,
        output_dir=str(tmp_path / "saved_models"),
        model_name="topics",
        cache=str(tmp_path / "cache"),
        patience=0,
        **kwargs,
    )


def _served(path, texts):
    signature = tf.saved_model.load(path).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(text=tf.constant(texts)).items()}


def test_frozen_training_learns_exports_and_serves(
    tmp_path, labelled_csv, tiny_model_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    summary = train_classifier(_config(tmp_path, labelled_csv, tiny_model_path))
    # MLflow is off unless asked: nothing logged, no store created.
    assert "mlflow_run_id" not in summary
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "mlruns").exists()
    assert summary["labels"] == ["cinema", "other", "space"]
    assert (summary["train_examples"], summary["test_examples"]) == (78, 30)
    assert summary["accuracy"] > 0.8, summary  # chance is 1/3
    assert summary["version"] == 1 and os.path.isdir(summary["export_path"])
    # Served contract: probabilities, class id and the label name, from the graph alone.
    texts = ["the movie story", "toy star wars", "", "   ", "of 1 2 3 " * 500]
    served = _served(summary["export_path"], texts + [b"\xff\xfe bad bytes"])
    assert served["probabilities"].shape == (6, 3) and served["probabilities"].dtype == np.float32
    assert served["class_id"].dtype == np.int64
    assert [label.decode() for label in served["label"][:2]] == ["cinema", "space"]
    np.testing.assert_array_equal(served["class_id"], served["probabilities"].argmax(axis=1))
    # Metrics beside the export and in the run directory; the confusion matrix as a PNG.
    extra = os.path.join(summary["export_path"], "assets.extra")
    metrics = json.load(open(os.path.join(extra, "metrics.json")))
    assert metrics["accuracy"] == pytest.approx(summary["accuracy"], abs=1e-4)
    assert np.sum(metrics["confusion_matrix"]) == 30
    assert set(metrics["per_class"]["space"]) == {"precision", "recall", "f1", "support"}
    assert open(os.path.join(extra, "labels.txt")).read().split() == summary["labels"]
    assert open(summary["confusion_matrix_png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.load(open(summary["metrics_json"]))["macro_f1"] == summary["macro_f1"]
    assert os.listdir(os.path.join(summary["run_dir"], "logs"))  # TensorBoard


def test_frozen_embeddings_come_from_the_cache(tmp_path, labelled_csv, tiny_model_path):
    first = train_classifier(_config(tmp_path, labelled_csv, tiny_model_path, epochs=1))
    seen = first["train_examples"] + first["validation_examples"]
    assert first["embedding_cache"] == {"encoded": seen, "cached": 0}
    again = train_classifier(_config(tmp_path, labelled_csv, tiny_model_path, epochs=1))
    assert again["embedding_cache"] == {"encoded": 0, "cached": seen}
    assert again["version"] == 2


def test_bfloat16_encoder_exports_past_the_serving_check(tmp_path, labelled_csv, tiny_model_path):
    """A bfloat16 encoder trains, exports (its serving check allowing bfloat16 rounding:
    `SERVING_TOLERANCE`) and serves. MiniLM's own check is in tests/hub/test_export_hub.py."""
    from keras_rec.hub.local_hub import hub_modules, hub_precision

    config = _config(tmp_path, labelled_csv, tiny_model_path, epochs=1)
    # The export answers through the Session loader in a fresh process before publishing.
    summary = train_classifier(dataclasses.replace(config, encoder_precision="bfloat16"))
    assert hub_precision(hub_modules(tiny_model_path, None, "bfloat16")[0]) == "bfloat16"
    served = _served(summary["export_path"], ["the movie", "toy star"])
    np.testing.assert_allclose(served["probabilities"].sum(axis=1), 1.0, atol=1e-3)


def test_fine_tuning_trains_encoder_and_keeps_checkpoints(tmp_path, labelled_csv, tiny_model_path):
    summary = train_classifier(
        _config(
            tmp_path,
            labelled_csv,
            tiny_model_path,
            trainable=True,
            epochs=2,
            encoder_learning_rate=1e-3,
        )
    )
    assert summary["trainable"] and summary["version"] == 1
    checkpoints = sorted(os.listdir(os.path.join(summary["run_dir"], "checkpoints")))
    assert checkpoints == ["epoch_01.weights.h5", "epoch_02.weights.h5"]
    served = _served(summary["export_path"], ["the movie", "toy star"])
    assert served["probabilities"].shape == (2, 3)


def test_cli_prints_metrics_json(tmp_path, labelled_csv, tiny_model_path, capsys):
    code = main(
        [
            "train-classifier",
            "--data",
            labelled_csv,
            "--text-column",
            "body",
            "--label-column",
            "topic",
            "--model",
            tiny_model_path,
            "--epochs",
            "2",
            "--output-dir",
            str(tmp_path / "out"),
            "--model-name",
            "cli",
            "--hidden-units",
            "8",
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("{")][-1]
    summary = json.loads(line)
    assert summary["export_path"].endswith(os.path.join("out", "cli", "1"))
    assert 0.0 <= summary["accuracy"] <= 1.0


@pytest.mark.parametrize(
    "rows, columns, match",
    [
        (
            [("a b", "x"), ("c d", None), ("e", "y"), ("f", "y")],
            ("body", "topic"),
            "missing values in 1 row: 2",
        ),
        ([("a", "x"), ("b", "x"), ("c", "y")], ("body", "topic"), r"\['y'\] \(1 row: 3"),
        ([("a", "x"), ("b", "y")], ("body", "label"), "no column"),
    ],
)
def test_bad_data_fails_before_training(tmp_path, tiny_model_path, rows, columns, match):
    path = tmp_path / "bad.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    config = _config(tmp_path, str(path), tiny_model_path)
    with pytest.raises(DataValidationError, match=match):
        train_classifier(config)
    assert not os.path.exists(tmp_path / "saved_models" / "topics")


def test_unseen_test_label_fails_before_training(tmp_path, labelled_csv, tiny_model_path):
    test_path = tmp_path / "test.csv"
    pd.DataFrame([("the movie", "cinema"), ("new", "unknown")], columns=["body", "topic"]).to_csv(
        test_path, index=False
    )
    config = _config(tmp_path, labelled_csv, tiny_model_path, test_data=str(test_path))
    with pytest.raises(DataValidationError, match=r"\['unknown'\] were not seen.*1 row: 2 "):
        train_classifier(config)
    assert not os.path.exists(tmp_path / "saved_models" / "topics")


def test_mirrored_strategy_trains_and_exports(tmp_path, labelled_csv, tiny_model_path):
    summary = train_classifier(
        _config(
            tmp_path, labelled_csv, tiny_model_path, trainable=True, epochs=1, distribute="mirrored"
        )
    )
    assert summary["version"] == 1
    served = _served(summary["export_path"], ["the movie"])
    assert served["probabilities"].shape == (1, 3)
