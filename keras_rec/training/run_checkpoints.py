"""Resumable training runs: checkpoints a restarted run with the same settings picks up.

Each training stage of a run (`strategy_fit` call) checkpoints to
`<output_dir>/.checkpoints/<script>-<settings hash>/<stage>/`: the model and
optimizer variables, the epoch and the step within it, at every epoch end
and every `checkpoint_steps` steps, the previous checkpoint kept until the
new one is written, so a run killed at any point, even mid-write, leaves a
usable one. Started again with the same command, each stage restores its
latest checkpoint and continues from that epoch and step; a stage that had
finished restores its final weights and trains no further. The hash covers
every setting that changes what is trained, so a run with other settings
never resumes from these. A completed run deletes its checkpoints; export
happens once, after training.
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
