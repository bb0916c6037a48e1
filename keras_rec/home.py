"""Where keras_rec keeps downloaded datasets and cached embeddings."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV_VAR = "KERAS_REC_HOME"


def keras_rec_home() -> Path:
    """Returns the keras_rec home directory.

    `$KERAS_REC_HOME` when set, else `~/.keras_rec`. Datasets live in
    `<home>/datasets/`, the default embedding cache in `<home>/embeddings/`.
    The directory is not created here.
    """
    override = os.environ.get(HOME_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path("~/.keras_rec").expanduser()


def datasets_dir() -> Path:
    """Returns `<keras_rec home>/datasets`."""
    return keras_rec_home() / "datasets"


def default_embedding_cache_dir() -> Path:
    """Returns `<keras_rec home>/embeddings`."""
    return keras_rec_home() / "embeddings"
