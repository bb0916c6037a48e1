"""TF Serving warmup: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays this TFRecord of `PredictionLog`s when it loads a
version, before serving it, so the first real request does not pay for
graph optimization and memory allocation (seconds for a transformer).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from keras_rec.serving.serving_signature import SERVING_DEFAULT, take_rows

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_batch_sizes(rows: int) -> list[int]:
    """The request sizes replayed: 1, then doubling up to all `rows` examples."""
    sizes, size = [], 1
    while size < rows:
        sizes.append(size)
        size *= 2
    return [*sizes, rows]


def write_warmup_requests(
    saved_model_dir: str,
    model_name: str,
    inputs: Mapping[str, np.ndarray],
    batch_sizes: Sequence[int] | None = None,
    signature: str = SERVING_DEFAULT,
) -> str:
    """Writes one `PredictRequest` per batch size into the SavedModel's warmup file.

    Args:
        saved_model_dir: str. The SavedModel directory.
        model_name: str. TF Serving's model name (the request's model spec).
        inputs: dict of example rows by input name.
        batch_sizes: the request sizes; default `warmup_batch_sizes(rows)`.
        signature: str. Signature the requests call.

    Returns:
        The path of the written file.
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    rows = len(next(iter(inputs.values())))
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for size in batch_sizes or warmup_batch_sizes(rows):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            for name, array in take_rows(inputs, size).items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir: str) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Parses the warmup file back: `(signature_name, {input: array})` per request."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(saved_model_dir, WARMUP_FILE)
    requests = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        requests.append((request.model_spec.signature_name, inputs))
    return requests
