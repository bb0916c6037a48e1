"""`training_run`: what every training script sets up before its model, and ends after.

One place decides, for both scripts (and the next ones):
- the `tf.distribute` strategy (`--distribute`), created first, as
  `MultiWorkerMirroredStrategy` requires, and whether this worker is the
  chief (`TF_CONFIG`: worker 0, or the task of type `chief`);
- the seeds (Python, NumPy, TensorFlow, Keras);
- the run directory: `<output_dir>/runs/<name>-<time>/` on the chief; a
  temporary folder on the other workers, deleted at the end, so they leave
  nothing behind (TensorBoard logs, plots and `metrics.json` come from the
  chief alone);
- the resumable checkpoints (`keras_rec.training.run_checkpoints`): kept
  when a run fails or is killed, deleted once it completes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from keras_rec.training.run_checkpoints import checkpoint_root, finish_run, start_run
from keras_rec.training.script_arguments import new_run_dir


@dataclasses.dataclass
class TrainingRun:
    """One training run of a script, as `training_run` set it up.

    Attributes:
        strategy: the `tf.distribute.Strategy`; build models under its scope.
        chief: bool. Whether this worker writes exports, metrics and MLflow.
        run_dir: str. This run's folder (a temporary one on other workers).
        resumed: bool. Whether checkpoints of an interrupted run were found.
        checkpoints: str. The run's checkpoint root.
        workers: int. How many processes train together.
    """

    strategy: Any
    chief: bool
    run_dir: str
    resumed: bool
    checkpoints: str
    workers: int = 1

    def checkpoint_dir(self, stage: str) -> str:
        """The checkpoint folder of one training stage (`"retrieval"`, `"ranker"`, ...)."""
        return os.path.join(self.checkpoints, stage)


@contextlib.contextmanager
def training_run(config: Any, script: str, run_name: str | None = None) -> Iterator[TrainingRun]:
    """Sets up a run of `script` from a `RunConfig`; cleans up when it ends.

    Args:
        config: a `RunConfig` (or a script config extending it).
        script: str. Names the checkpoints (`<script>-<settings hash>`).
        run_name: str or None. Names the run directory (default: `script`).

    Yields:
        A `TrainingRun`. On success the run's checkpoints are deleted; on an
        exception they are kept for the next, resumed, run.
    """
    import keras

    from keras_rec.training.distribute import get_strategy
    from keras_rec.training.tf_config import is_chief, worker_count

    strategy = get_strategy(config.distribute)
    keras.utils.set_random_seed(config.seed)
    chief = is_chief()
    new_dirs = _missing_dirs(os.path.join(config.output_dir, "runs")) if chief else []
    if chief:
        resumed = start_run(config, script)
        run_dir = new_run_dir(config.output_dir, run_name or script)
    else:
        resumed = False
        run_dir = tempfile.mkdtemp(prefix=f"keras-rec-{script}-worker-")
    run = TrainingRun(
        strategy, chief, run_dir, resumed, checkpoint_root(config, script), worker_count()
    )
    try:
        yield run
        if chief:
            finish_run(config, script)
    except BaseException:
        if chief:  # A run that failed before writing anything leaves no trace.
            for directory in [run_dir, *reversed(new_dirs)]:
                _remove_if_empty(directory)
        raise
    finally:
        if not chief:
            shutil.rmtree(run_dir, ignore_errors=True)


def _missing_dirs(path: str) -> list[str]:
    """`path` and those of its parents that do not exist yet, outermost first."""
    missing = []
    path = os.path.abspath(path)
    while path and not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing[::-1]


def _remove_if_empty(directory: str) -> None:
    """Removes `directory` and its empty subfolders if no file is in it."""
    if not os.path.isdir(directory):
        return
    for root, _, files in os.walk(directory):
        if files:
            return
    shutil.rmtree(directory, ignore_errors=True)
