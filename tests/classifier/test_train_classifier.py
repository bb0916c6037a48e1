"""End to end: `keras-rec train-classifier` on a small labelled file with a tiny encoder.

The runs are the suite's (`frozen_classifier_runs`, `tuned_classifier_run` in
conftest.py) and one with a bfloat16 encoder; their exports answer through TF
Serving's Session loader, all in one fresh process.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest
from helpers import assert_no_tensorflow_startup_lines, assert_old_metric_keys_kept
from labelled_texts import write_labelled_csv_file
from script_runs import CLASSIFIER_FLAGS, run_cli

from keras_rec.classifier import ClassifierTrainingConfig, train_classifier
from keras_rec.data import DataValidationError
from keras_rec.serving.fresh_process import answer_each_in_fresh_process, tf_text_op_libraries
from keras_rec.serving.saved_model_export import METADATA_FILE

TEXTS = ["the movie story", "toy star wars", "", "   ", "of 1 2 3 " * 500, b"\xff\xfe bad bytes"]


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


@pytest.fixture(scope="module")
def bfloat16_run(tiny_model_path, tiny_hub_dir, tmp_path_factory):
    """`train-classifier --encoder-precision bfloat16`, one epoch: its summary."""
    root = tmp_path_factory.mktemp("bfloat16_classifier")
    data = write_labelled_csv_file(root / "labelled.csv")
    return run_cli(
        ["train-classifier", "--data", data, "--model", tiny_model_path, *CLASSIFIER_FLAGS,
         "--epochs", "1", "--encoder-precision", "bfloat16",
         "--output-dir", root / "saved_models", "--cache", root / "cache"],
        root,
    )  # fmt: skip


@pytest.fixture(scope="module")
def served(frozen_classifier_runs, tuned_classifier_run, bfloat16_run):
    """`TEXTS` answered by each run's export through TF Serving's loader, in one process."""
    exports = {
        "frozen": frozen_classifier_runs["first"]["export_path"],
        "tuned": tuned_classifier_run["summary"]["export_path"],
        "bfloat16": bfloat16_run["export_path"],
    }
    request = {"texts": ("serving_default", {"text": np.array(TEXTS, object)})}
    answered = answer_each_in_fresh_process(
        {name: (path, request) for name, path in exports.items()},
        ["session"],
        op_libraries=tf_text_op_libraries(),
    )
    for name, report in answered.items():
        assert not report["errors"]["session"], (name, report["errors"])
    return {name: report["answers"]["session"]["texts"] for name, report in answered.items()}


def test_frozen_training_learns_exports_and_serves(frozen_classifier_runs, served):
    summary = frozen_classifier_runs["first"]
    assert summary["labels"] == ["cinema", "other", "space"]
    assert (summary["train_examples"], summary["test_examples"]) == (78, 30)
    assert summary["test_accuracy"] > 0.8, summary  # chance is 1/3
    assert summary["version"] == 1 and os.path.isdir(summary["export_path"])
    assert summary["export_path"].endswith(os.path.join("saved_models", "topics", "1"))
    assert_no_tensorflow_startup_lines(summary["stderr"])  # no --verbose
    # Served contract: probabilities, class id and the label name, from the graph alone.
    answer = served["frozen"]
    assert answer["probabilities"].shape == (6, 3) and answer["probabilities"].dtype == np.float32
    assert answer["class_id"].dtype == np.int64
    assert [label.decode() for label in answer["label"][:2]] == ["cinema", "space"]
    np.testing.assert_array_equal(answer["class_id"], answer["probabilities"].argmax(axis=1))
    # Metrics beside the export and in the run directory; the confusion matrix as a PNG.
    extra = os.path.join(summary["export_path"], "assets.extra")
    metrics = json.load(open(os.path.join(extra, "metrics.json")))
    assert metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-4)
    # The old names, kept for one release (keras_rec/metric_keys.py), say the same.
    assert_old_metric_keys_kept(summary)
    assert_old_metric_keys_kept(metrics)
    assert np.sum(metrics["confusion_matrix"]) == 30
    assert set(metrics["per_class"]["space"]) == {"precision", "recall", "f1", "support"}
    assert open(os.path.join(extra, "labels.txt")).read().split() == summary["labels"]
    assert open(summary["confusion_matrix_png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    written = json.load(open(summary["metrics_json"]))
    assert written["test_macro_f1"] == summary["test_macro_f1"]
    assert os.listdir(os.path.join(summary["run_dir"], "logs"))  # TensorBoard


def test_mlflow_is_off_unless_asked(frozen_classifier_runs):
    again = frozen_classifier_runs["again"]  # the same command without --mlflow
    assert "mlflow_run_id" not in again
    root = os.path.join(frozen_classifier_runs["root"], "again")
    assert not os.path.exists(os.path.join(root, "mlruns.db"))
    assert not os.path.exists(os.path.join(root, "mlruns"))


def test_frozen_embeddings_come_from_the_cache(frozen_classifier_runs):
    first, again = frozen_classifier_runs["first"], frozen_classifier_runs["again"]
    seen = first["train_examples"] + first["validation_examples"]
    assert first["embedding_cache"] == {"encoded": seen, "cached": 0}
    assert again["embedding_cache"] == {"encoded": 0, "cached": seen}
    assert again["version"] == 2


def test_bfloat16_encoder_exports_past_the_serving_check(bfloat16_run, keras_rec_home, served):
    """A bfloat16 encoder trains, exports (its serving check allowing bfloat16 rounding:
    `SERVING_TOLERANCE`) and serves. MiniLM's own check is in tests/hub/test_export_hub.py."""
    from keras_rec.hub.local_hub import hub_precision

    assert bfloat16_run["version"] == 1
    with open(os.path.join(bfloat16_run["export_path"], METADATA_FILE)) as file:
        assert json.load(file)["metadata"]["config"]["encoder_precision"] == "bfloat16"
    # The run exported the tiny encoder's bfloat16 TF Hub modules into the home.
    exported = [p for p in (keras_rec_home / "hub").iterdir() if p.name.endswith("-bfloat16")]
    assert [hub_precision(str(path)) for path in exported] == ["bfloat16"]
    np.testing.assert_allclose(served["bfloat16"]["probabilities"].sum(axis=1), 1.0, atol=1e-3)


def test_fine_tuning_under_the_mirrored_strategy_keeps_checkpoints_and_serves(
    tuned_classifier_run, served
):
    summary = tuned_classifier_run["summary"]
    assert summary["trainable"] and summary["version"] == 1
    with open(os.path.join(summary["export_path"], METADATA_FILE)) as file:
        config = json.load(file)["metadata"]["config"]
    assert config["distribute"] == "mirrored" and config["trainable"] is True
    checkpoints = sorted(os.listdir(os.path.join(summary["run_dir"], "checkpoints")))
    assert checkpoints == ["epoch_01.weights.h5", "epoch_02.weights.h5"]
    assert served["tuned"]["probabilities"].shape == (6, 3)
    history = json.load(open(summary["metrics_json"]))["history"]
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()


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
