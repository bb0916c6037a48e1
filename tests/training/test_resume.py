"""A single-process training run killed mid-epoch and started again resumes there.

Two `train-recommender` processes: the `large` tier (`--run-large`). The resume
mechanism itself (`strategy_fit` restoring the epoch and step) is checked in the
default tier by tests/training/test_strategy_fit.py.
"""

from __future__ import annotations

import glob
import os
import subprocess

import pytest
from helpers import assert_close_retrieval_metrics
from script_runs import (
    RECOMMENDER_EPOCHS,
    kill_at_line,
    recommender_command,
    script_environment,
    steps_per_epoch,
    summary_of,
)


def _retrieval_epochs(output: str) -> list[int]:
    """The epochs the run's first retrieval training started ("Epoch k/3" lines).

    Each training announces itself ("retrieval: 3 epochs of 17 steps"); the
    re-ranker's and the refit's epochs that follow are not counted.
    """
    epochs, section = [], None
    for line in output.splitlines():
        if line.split(":")[0] in ("retrieval", "retrieval_refit", "reranker", "ranker"):
            if " epochs of " in line:
                section = line.split(":")[0]
        elif line.startswith("Epoch ") and section == "retrieval":
            epochs.append(int(line.split()[1].split("/")[0]))
    return epochs


@pytest.mark.large
def test_a_killed_run_resumes_from_its_last_checkpoint(
    movielens_dir, tiny_model_path, tmp_path, movielens_run
):
    saved_models = tmp_path / "saved_models"
    command = recommender_command(
        movielens_dir, tiny_model_path, tmp_path, saved_models, "--checkpoint-steps", "5"
    )
    env = script_environment(tmp_path)
    # SIGKILL after the first mid-epoch checkpoint of epoch 2.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path
    )
    killed = kill_at_line(process, "retrieval: checkpoint at epoch 2, step 5/")
    steps = steps_per_epoch(killed)
    (checkpoints,) = glob.glob(str(saved_models / ".checkpoints" / "recommender-*" / "retrieval"))
    assert os.path.exists(os.path.join(checkpoints, "checkpoint"))
    assert not (saved_models / "user_tower").exists()  # nothing exported

    # The same command again: it starts at epoch 2, step 5, not from scratch.
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"retrieval: resuming at epoch 2, step 5/{steps}" in result.stdout
    assert _retrieval_epochs(result.stdout) == [2, 3]
    summary = summary_of(result.stdout)
    assert summary["resumed"] is True and summary["resumed_at_epoch"] == 2
    assert summary["epochs_run"] == RECOMMENDER_EPOCHS - 1
    assert sorted(os.listdir(saved_models / "user_tower")) == [".keras_rec_export.lock", "1"]
    assert not (saved_models / ".checkpoints").exists()  # a completed run removes them
    # As good as an uninterrupted run of the same settings: each epoch's data
    # order depends on (seed, epoch) only, and the step position is restored.
    reference = movielens_run["summary"]
    assert reference["resumed"] is False
    assert_close_retrieval_metrics(summary, reference, tolerance=0.02)
