"""`tf.distribute` strategies for the training scripts, by name."""

from __future__ import annotations

DISTRIBUTE_CHOICES = ("none", "mirrored", "multi_worker")


def get_strategy(name: str = "none"):
    """Returns the `tf.distribute.Strategy` named by a script's `--distribute`.

    Args:
        name: str. `"none"`: the default strategy (one device); `"mirrored"`:
            `MirroredStrategy` over this machine's GPUs (or its CPU);
            `"multi_worker"`: `MultiWorkerMirroredStrategy`, which reads the
            cluster from `TF_CONFIG` (as SageMaker and Kubernetes set it).

    Returns:
        The strategy; build and compile models under `strategy.scope()`.
    """
    import json
    import os

    import tensorflow as tf

    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "`--distribute multi_worker` needs `TF_CONFIG` describing the cluster, e.g. "
                '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
                '"task": {"type": "worker", "index": 0}}'
            )
        try:
            json.loads(config)
        except json.JSONDecodeError as error:
            raise ValueError(f"`TF_CONFIG` is not valid JSON ({error}): {config!r}") from error
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"`distribute` must be one of {DISTRIBUTE_CHOICES}. Received: {name!r}")
