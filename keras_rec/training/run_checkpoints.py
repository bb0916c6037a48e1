"""Resumable training runs: backups a restarted run with the same settings picks up.

Each `fit` of a run gets a `keras.callbacks.BackupAndRestore` directory under
`<output_dir>/.checkpoints/<script>-<settings hash>/<stage>/`. The model (and
its optimizer state) is saved at every epoch end, or every N steps, with the
previous copy kept until the new one is written, so a run killed at any
point, even mid-write, leaves a usable backup. Started again with the same
command, each `fit` restores its latest backup and continues from that
epoch; a `fit` that had finished restores its final weights and trains no
further. The hash covers every setting that changes what is trained, so a
run with other settings never resumes from these. A completed run deletes
its backups; export happens once, after training.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Any

from keras_rec.training.script_arguments import config_dict

# Settings that do not change what is trained.
_NOT_HASHED = frozenset(
    {"output_dir", "cache", "target", "mlflow", "mlflow_experiment", "resume", "checkpoint_steps"}
)
CHECKPOINTS_DIR = ".checkpoints"


def checkpoint_root(config: Any, script: str) -> str:
    """`<output_dir>/.checkpoints/<script>-<hash of the training settings>` (absolute)."""
    settings = {k: v for k, v in config_dict(config).items() if k not in _NOT_HASHED}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(os.path.abspath(config.output_dir), CHECKPOINTS_DIR, f"{script}-{digest}")


def backup_callback(config: Any, script: str, stage: str):
    """The `BackupAndRestore` callback of one `fit` (`stage`) of a run."""
    import keras

    return keras.callbacks.BackupAndRestore(
        os.path.join(checkpoint_root(config, script), stage),
        save_freq=config.checkpoint_steps or "epoch",
        delete_checkpoint=False,
        double_checkpoint=True,
    )


def start_run(config: Any, script: str) -> bool:
    """Deletes the run's backups unless `config.resume`; returns whether any are resumed."""
    root = checkpoint_root(config, script)
    if not config.resume:
        shutil.rmtree(root, ignore_errors=True)
    return os.path.isdir(root)


def finish_run(config: Any, script: str) -> None:
    """Deletes the backups of a completed run (and the `.checkpoints` folder once empty)."""
    root = checkpoint_root(config, script)
    shutil.rmtree(root, ignore_errors=True)
    try:
        os.rmdir(os.path.dirname(root))
    except OSError:
        pass
