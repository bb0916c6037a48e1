"""`TF_CONFIG`: the cluster a `tf.distribute` job runs in, and this process's role in it.

SageMaker, Kubernetes operators and people by hand set `TF_CONFIG` to
`{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}`.
Read without TensorFlow, so a script knows its role before importing it.
"""

from __future__ import annotations

import json
import os
from typing import Any


def json_env(variable: str, kind: type) -> Any:
    """Returns the JSON value of an environment variable, `None` when unset or empty."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"`{variable}` must be JSON ({error}). Received: {variable}={text!r}"
        ) from None
    if not isinstance(value, kind):
        what = "a JSON object" if kind is dict else "a JSON array"
        raise ValueError(f"`{variable}` must be {what}. Received: {variable}={text!r}")
    return value


def is_chief() -> bool:
    """Returns whether this process is the one that should write the model.

    Reads `TF_CONFIG`: without it, or without a cluster, there is one process
    and it is the chief. Otherwise the chief is the task of type `"chief"`
    (or `"master"`, as SageMaker's parameter-server setup names it), or,
    in a cluster without one, `"worker"` 0 (as with
    `MultiWorkerMirroredStrategy`).

    Returns:
        bool.

    Example:

    >>> # TF_CONFIG='{"cluster": {"worker": ["a:1", "b:1"]},
    >>> #             "task": {"type": "worker", "index": 1}}'
    >>> keras_rec.training.tf_config.is_chief()
    False
    """
    config = json_env("TF_CONFIG", dict)
    if not config or not config.get("cluster"):
        return True
    cluster = config["cluster"]
    task = config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict) or "type" not in task:
        raise ValueError(
            "`TF_CONFIG` must hold a 'cluster' object and a 'task' object with a 'type'. "
            f"Received: TF_CONFIG={os.environ['TF_CONFIG']!r}"
        )
    try:
        index = int(task.get("index", 0))
    except (TypeError, ValueError):
        raise ValueError(
            "`TF_CONFIG`'s task index must be an integer. "
            f"Received: TF_CONFIG={os.environ['TF_CONFIG']!r}"
        ) from None
    if task["type"] in ("chief", "master"):
        return True
    return task["type"] == "worker" and index == 0 and "chief" not in cluster


def worker_count() -> int:
    """How many processes train together: the tasks in `TF_CONFIG`'s cluster, or 1.

    Counts the `chief`, `master` and `worker` tasks (parameter servers and
    evaluators do not train).
    """
    config = json_env("TF_CONFIG", dict)
    cluster = (config or {}).get("cluster") or {}
    if not isinstance(cluster, dict):
        return 1
    return max(1, sum(len(cluster.get(kind) or []) for kind in ("chief", "master", "worker")))
