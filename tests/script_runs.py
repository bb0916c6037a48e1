"""Launching the training scripts as a user does: `python -m keras_rec.cli ...` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

RECOMMENDER_EPOCHS = 3


def recommender_command(movielens_dir, model_path, root, output_dir, *extra) -> list[str]:
    """`train-recommender` on 6000 MovieLens ratings with a tiny encoder (seconds of training)."""
    return [
        sys.executable, "-m", "keras_rec.cli", "train-recommender", "--data", movielens_dir,
        "--model", model_path, "--epochs", str(RECOMMENDER_EPOCHS), "--max-ratings", "6000",
        "--ranker-epochs", "1", "--batch-size", "256", "--hidden-units", "32",
        "--output-dir", str(output_dir), "--cache", str(root / "cache"), *extra,
    ]  # fmt: skip


def script_environment(root, tf_config: dict | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", KERAS_REC_HOME=str(root / "home"),
               HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3", MLFLOW_TRACKING_URI="")  # fmt: skip
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def free_ports(count: int) -> list[int]:
    """`count` TCP ports free on 127.0.0.1 now (held open together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def worker_configs(count: int) -> list[dict]:
    """One `TF_CONFIG` per worker of a `count`-worker cluster on 127.0.0.1."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    return [
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        for index in range(count)
    ]


def summary_of(stdout: str) -> dict:
    """The JSON summary a training script prints last."""
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def kill_at_line(process: subprocess.Popen, prefix: str) -> str:
    """SIGKILLs `process` once its stdout prints a line starting with `prefix`.

    Returns what it printed; asserts it was killed by that signal.
    """
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(prefix):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    return "".join(seen)
