"""Pieces shared by the training runs: config checks, run directories, config dicts."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable
from typing import Any


def require_positive_ints(config: Any, names: Iterable[str]) -> None:
    """Raises `ValueError` naming the first of `names` that is not an integer >= 1."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def new_run_dir(output_dir: str, name: str) -> str:
    """Creates and returns `<output_dir>/runs/<name>-<YYYYmmdd-HHMMSS>/` (absolute)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = os.path.join(os.path.abspath(output_dir), "runs", f"{name}-{stamp}")
    os.makedirs(run_dir, exist_ok=True)
    return run_dir


def config_dict(config: Any) -> dict[str, Any]:
    """A training config dataclass as a JSON-serializable dict (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }
