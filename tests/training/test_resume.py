"""A training run killed mid-epoch and started again with the same command resumes."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys

import pytest

EPOCHS = 3


@pytest.fixture(scope="module")
def movielens_dir():
    import keras_rec
    from keras_rec.home import datasets_dir

    keras_rec.data.movielens_100k()
    return str(datasets_dir() / "ml-100k")


def _command(movielens_dir, tiny_model_path, root):
    return [
        sys.executable, "-m", "keras_rec.cli", "train-recommender", "--data", movielens_dir,
        "--model", tiny_model_path, "--epochs", str(EPOCHS), "--max-ratings", "6000",
        "--ranker-epochs", "1", "--batch-size", "256", "--hidden-units", "32",
        "--output-dir", str(root / "saved_models"), "--cache", str(root / "cache"),
    ]  # fmt: skip


def _environment(root):
    return dict(os.environ, PYTHONUNBUFFERED="1", KERAS_REC_HOME=str(root / "home"),
                HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3", MLFLOW_TRACKING_URI="")  # fmt: skip


def _retrieval_epochs(output: str) -> list[int]:
    """The retrieval epochs a run started, from Keras' "Epoch k/3" lines."""
    return [
        int(line.split()[1].split("/")[0])
        for line in output.splitlines()
        if line.startswith("Epoch ") and line.rstrip().endswith(f"/{EPOCHS}")
    ]


def test_a_killed_run_resumes_from_its_last_backup(movielens_dir, tiny_model_path, tmp_path):
    command = _command(movielens_dir, tiny_model_path, tmp_path)
    env = _environment(tmp_path)
    # SIGKILL as soon as the second retrieval epoch starts.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(f"Epoch 2/{EPOCHS}"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    saved_models = tmp_path / "saved_models"
    (backup,) = glob.glob(str(saved_models / ".checkpoints" / "recommender-*" / "retrieval"))
    with open(os.path.join(backup, "training_metadata.json")) as file:
        assert json.load(file)["epoch"] == 1  # epoch 1 finished and was backed up
    assert not (saved_models / "user_tower").exists()  # nothing exported

    # The same command again: it starts at epoch 2, not from scratch.
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _retrieval_epochs(result.stdout) == [2, 3]
    summary = json.loads([x for x in result.stdout.splitlines() if x.startswith("{")][-1])
    assert summary["resumed"] is True and summary["epochs_run"] == EPOCHS - 1
    assert sorted(os.listdir(saved_models / "user_tower")) == [".keras_rec_export.lock", "1"]
    assert not (saved_models / ".checkpoints").exists()  # a completed run removes its backups

    # As good as an uninterrupted run of the same settings (same split and seed;
    # epoch 2's shuffle order differs after the restart).
    fresh_root = tmp_path / "fresh"
    fresh = subprocess.run(
        _command(movielens_dir, tiny_model_path, fresh_root), capture_output=True, text=True,
        env=_environment(fresh_root), timeout=900,
    )  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert _retrieval_epochs(fresh.stdout) == [1, 2, 3]
    baseline = json.loads([x for x in fresh.stdout.splitlines() if x.startswith("{")][-1])
    assert baseline["resumed"] is False
    for key in ("top100_accuracy", "user_recall_at_100"):
        assert abs(summary[key] - baseline[key]) <= 0.05, (key, summary[key], baseline[key])
