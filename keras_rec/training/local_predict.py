"""`predict_locally`: a model's outputs on this worker alone, under any strategy."""

from __future__ import annotations

from typing import Any

import numpy as np


def predict_locally(model, inputs: Any, batch_size: int = 4096) -> Any:
    """Runs `model(inputs, training=False)` in batches on this process only.

    `model.predict` distributes its input under the strategy the model was
    built in (under `MultiWorkerMirroredStrategy` each worker would predict
    a shard, through the same Keras path that fails in `fit`). Evaluation
    and export need every row on the worker that asks, so this calls the
    model directly, in a `tf.function`, outside any replica context.

    Args:
        model: a Keras model.
        inputs: an array, or a dict (nested) of arrays with the same length.
        batch_size: int.

    Returns:
        NumPy outputs with the model's output structure, rows in input order.
    """
    import keras
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    batches = [
        keras.tree.map_structure(lambda t: t.numpy(), call(batch))
        for batch in tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)
    ]
    if not batches:
        raise ValueError("`inputs` is empty: there is nothing to predict.")
    return keras.tree.map_structure(lambda *parts: np.concatenate(parts), *batches)
