"""Launching the training scripts as a user does: `keras-rec ...` processes.

- `keras_rec_command(*args)`: the console script a user types, with arguments.
- `run_cli(args, root)`: runs it (in `root`, with `script_environment(root)`),
  asserts exit 0 and returns the JSON summary it printed last.
- `shared_run(tmp_path_factory, name, build)`: `build(root)` once per test
  session, even across pytest-xdist workers, for the runs several test
  modules read (a session fixture calls it).
- `recommender_args(...)` / `recommender_command(...)`: the suite's MovieLens
  `train-recommender` run (`RECOMMENDER_FLAGS`).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable

RECOMMENDER_EPOCHS = 3
# The settings of the suite's MovieLens run (`movielens_run` in conftest.py): 6,000
# ratings, 10% of the movies held out of training, the IVF index, MLflow on.
# The resume and two-worker tests run the same settings and compare with it.
RECOMMENDER_FLAGS = (
    "--epochs", str(RECOMMENDER_EPOCHS), "--max-ratings", "6000", "--ranker-epochs", "1",
    "--batch-size", "256", "--hidden-units", "32", "--cold-start-fraction", "0.1",
    "--index", "ivf", "--mlflow", "--mlflow-experiment", "movies",
)  # fmt: skip

# The suite's `train-classifier` settings: 120 labelled texts, a tiny encoder.
CLASSIFIER_FLAGS = (
    "--text-column", "body", "--label-column", "topic", "--batch-size", "16",
    "--hidden-units", "32", "--dropout", "0.1", "--test-fraction", "0.25",
    "--model-name", "topics", "--patience", "0",
)  # fmt: skip
FROZEN_EPOCHS = 15
# Fine-tuning the encoder (`tuned_classifier_run`, and the two-worker run it is compared with).
TUNED_CLASSIFIER_FLAGS = (
    "--trainable", "--epochs", "2", "--encoder-learning-rate", "1e-3",
    "--head-learning-rate", "1e-2",
)  # fmt: skip
TUNED_PER_CLASS = 120


def keras_rec_command(*args: str) -> list[str]:
    """`keras-rec ARGS` as a user types it: this environment's console script."""
    script = pathlib.Path(sys.executable).with_name("keras-rec")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "keras_rec.cli", *args]


def recommender_args(movielens_dir, model_path, root, output_dir, *extra) -> list[str]:
    """`train-recommender` with `RECOMMENDER_FLAGS` and a tiny encoder (seconds of training)."""
    return [
        "train-recommender", "--data", str(movielens_dir), "--model", str(model_path),
        *RECOMMENDER_FLAGS, "--output-dir", str(output_dir), "--cache", str(root / "cache"),
        *extra,
    ]  # fmt: skip


def recommender_command(movielens_dir, model_path, root, output_dir, *extra) -> list[str]:
    """The whole `keras-rec train-recommender ...` command of `recommender_args`."""
    return keras_rec_command(*recommender_args(movielens_dir, model_path, root, output_dir, *extra))


def script_environment(root, tf_config: dict | None = None) -> dict[str, str]:
    """The environment of a script run in `root`.

    `KERAS_REC_HOME` stays the session's (`tests/conftest.py` sets it), so the
    tiny encoder's TF Hub export is made once. MLflow logs only with `--mlflow`,
    then to its default `sqlite:///mlruns.db`: `root/mlruns.db` when run in `root`.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3",
               MLFLOW_TRACKING_URI="")  # fmt: skip
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def run_cli(args, root, timeout: float = 900, **environment) -> dict:
    """Runs `keras-rec ARGS` in `root`; asserts exit 0; returns its summary.

    The summary is the last JSON line printed, with `stdout` and `stderr` added.
    """
    env = {**script_environment(root), **environment}
    result = subprocess.run(
        keras_rec_command(*map(str, args)), capture_output=True, text=True, env=env,
        cwd=root, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return {**summary_of(result.stdout), "stdout": result.stdout, "stderr": result.stderr}


SHARED_RUNS_VARIABLE = "KERAS_REC_TEST_RUNS"


def shared_base(tmp_path_factory) -> pathlib.Path:
    """Where the shared runs and the session's home live.

    `$KERAS_REC_TEST_RUNS` when set (`.ci/run` points both tiers' sessions at one
    fresh directory, so the large tier reuses the default tier's runs), else the
    session's temporary directory, the same for every pytest-xdist worker.
    """
    if os.environ.get(SHARED_RUNS_VARIABLE):
        base = pathlib.Path(os.environ[SHARED_RUNS_VARIABLE]).resolve()
        base.mkdir(parents=True, exist_ok=True)
        return base
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_run(tmp_path_factory, name: str, build: Callable[[pathlib.Path], dict]) -> dict:
    """`build(root)` once per session (xdist workers included); returns its result.

    The result (JSON-serializable) is kept in `<shared base>/<name>/result.json`;
    a file lock makes the other workers wait for the first one's build.
    """
    from filelock import FileLock

    root = shared_base(tmp_path_factory) / name
    with FileLock(str(root) + ".lock"):
        done = root / "result.json"
        if done.is_file():
            return json.loads(done.read_text())
        root.mkdir(parents=True, exist_ok=True)
        result = build(root)
        done.write_text(json.dumps(result))
        return result


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


def steps_per_epoch(output: str, training: str = "retrieval") -> int:
    """The steps per epoch a script announced (`"retrieval: 3 epochs of 17 steps ..."`)."""
    match = re.search(rf"^{training}: \d+ epochs? of (\d+) steps", output, re.MULTILINE)
    assert match, output[-3000:]
    return int(match.group(1))


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
