"""Two worker processes on 127.0.0.1 train together under `MultiWorkerMirroredStrategy`.

This is what SageMaker or Kubernetes sets up across machines: the same
command on each worker, each with its own `TF_CONFIG` (here: free ports
picked at run time, and an output directory per worker, as on separate
machines). Only the chief (worker 0) may leave anything behind.

Each test runs two whole training processes (four for the kill and restart) on
the machine's cores: the `large` tier (`--run-large`). `tests/training/
test_strategy_fit.py` trains two worker processes together in the default tier.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from helpers import assert_close_retrieval_metrics
from script_runs import (
    CLASSIFIER_FLAGS,
    TUNED_CLASSIFIER_FLAGS,
    keras_rec_command,
    kill_at_line,
    recommender_command,
    script_environment,
    steps_per_epoch,
    summary_of,
    worker_configs,
)

pytestmark = pytest.mark.large

EXPORTS = ("user_tower", "item_tower", "ranker", "retrieval", "recommend", "query_retrieval")


def _recommender_workers(movielens_dir, model_path, root, *extra) -> list[list[str]]:
    """The `train-recommender --distribute multi_worker` command of each of two workers."""
    return [
        recommender_command(
            movielens_dir,
            model_path,
            root,
            root / f"out{index}",
            "--distribute",
            "multi_worker",
            *extra,
        )  # fmt: skip
        for index in range(2)
    ]


def _run_workers(commands, root, configs, timeout=900) -> list[subprocess.CompletedProcess]:
    processes = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=script_environment(root, config),
            cwd=root,
        )  # fmt: skip
        for command, config in zip(commands, configs)
    ]
    results = []
    for process, command in zip(processes, commands):
        stdout, stderr = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return results


def _assert_chief_alone_wrote(root, exports) -> None:
    for name in exports:
        versions = [v for v in os.listdir(root / "out0" / name) if not v.startswith(".")]
        assert versions == ["1"], (name, versions)  # exported once
    assert (root / "out0" / "metrics.json").is_file() or exports != EXPORTS
    assert not (root / "out1").exists()  # worker 1 left nothing behind


def _final_loss(metrics_json: str) -> float:
    with open(metrics_json) as file:
        return json.load(file)["report"]["history"]["loss"][-1]


def test_two_workers_train_like_one_and_resume_at_the_epoch_a_killed_worker_reached(
    movielens_dir, tiny_model_path, tmp_path, movielens_run
):
    configs = worker_configs(2)
    commands = _recommender_workers(
        movielens_dir, tiny_model_path, tmp_path, "--checkpoint-steps", "5"
    )
    with open(tmp_path / "chief.log", "w") as chief_log:
        chief = subprocess.Popen(
            commands[0], stdout=chief_log, stderr=subprocess.STDOUT, text=True,
            env=script_environment(tmp_path, configs[0]), cwd=tmp_path,
        )  # fmt: skip
        worker = subprocess.Popen(
            commands[1], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=script_environment(tmp_path, configs[1]), cwd=tmp_path,
        )  # fmt: skip
        steps = steps_per_epoch(kill_at_line(worker, "retrieval: checkpoint at epoch 2, step 5/"))
        # The chief is stuck in (or fails) its next collective; the job is restarted.
        try:
            chief.wait(timeout=20)
        except subprocess.TimeoutExpired:
            chief.kill()
            chief.wait()
    assert not (tmp_path / "out0" / "user_tower").exists()  # nothing exported yet

    # The same two commands again: both resume at epoch 2, step 5.
    restarted = _run_workers(commands, tmp_path, worker_configs(2))
    for result in restarted:
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"retrieval: resuming at epoch 2, step 5/{steps}" in result.stdout
    chief_summary, worker_summary = (summary_of(result.stdout) for result in restarted)
    assert chief_summary["resumed"] is True and chief_summary["resumed_at_epoch"] == 2
    assert chief_summary["workers"] == 2
    # Both workers hold the same model: they evaluate it identically.
    for key in ("top100_accuracy", "user_recall_at_100", "ranker"):
        assert chief_summary[key] == worker_summary[key], key
    _assert_chief_alone_wrote(tmp_path, EXPORTS)
    assert set(chief_summary["exports"]) == set(EXPORTS)
    assert all(path is None for path in worker_summary["exports"].values())
    assert not (tmp_path / "out0" / ".checkpoints").exists()  # removed once complete
    # Two workers train like one: the global batch is split across the workers and
    # each replica's softmax runs over the gathered global batch, so the loss and
    # metrics are those of one process (`movielens_run`, the same settings), within
    # the noise of a different data order.
    single_worker_recommender = movielens_run["summary"]
    single_loss = _final_loss(single_worker_recommender["metrics_json"])
    assert _final_loss(chief_summary["metrics_json"]) == pytest.approx(single_loss, rel=0.03)
    assert_close_retrieval_metrics(chief_summary, single_worker_recommender, tolerance=0.03)


def test_two_workers_fine_tune_the_classifier_like_one(
    tuned_classifier_run, tiny_model_path, tmp_path
):
    """The suite's fine-tuning run (`--distribute mirrored`, one replica) on two workers."""
    commands = [
        keras_rec_command(
            "train-classifier",
            "--data",
            tuned_classifier_run["data"],
            "--model",
            tiny_model_path,
            *CLASSIFIER_FLAGS,
            *TUNED_CLASSIFIER_FLAGS,
            "--distribute",
            "multi_worker",
            "--output-dir",
            str(tmp_path / f"out{index}"),
            "--cache",
            str(tmp_path / "cache"),
        )  # fmt: skip
        for index in range(2)
    ]
    chief, worker = _run_workers(commands, tmp_path, worker_configs(2))
    assert chief.returncode == 0, chief.stderr[-3000:]
    assert worker.returncode == 0, worker.stderr[-3000:]
    one, two = tuned_classifier_run["summary"], summary_of(chief.stdout)
    assert two["workers"] == 2 and summary_of(worker.stdout)["export_path"] is None
    _assert_chief_alone_wrote(tmp_path, ["topics"])
    runs = os.listdir(tmp_path / "out0" / "runs")
    assert len(runs) == 1 and (tmp_path / "out0" / "runs" / runs[0] / "metrics.json").is_file()
    with open(one["metrics_json"]) as file:
        one_history = json.load(file)["history"]
    with open(two["metrics_json"]) as file:
        two_history = json.load(file)["history"]
    assert len(two_history["loss"]) == 2 and two_history["loss"][-1] < two_history["loss"][0]
    # From log(3) = 1.1 at the start, both end within 0.1 of each other.
    assert two_history["loss"][-1] == pytest.approx(one_history["loss"][-1], abs=0.1)
    assert abs(two["accuracy"] - one["accuracy"]) <= 0.1, (two["accuracy"], one["accuracy"])
