"""Which ops a SavedModel needs, to check it against what a TF Serving build has."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from typing import Any


def list_saved_model_ops(path: str) -> set[str]:
    """Returns every op type in a SavedModel: its graph and its function library.

    Args:
        path: str. A SavedModel directory (holding `saved_model.pb`) or the
            path of a `saved_model.pb` file.

    Returns:
        The set of op type names, e.g. `{"Const", "NormalizeUTF8", ...}`.

    Example:

    >>> ops = keras_rec.serving.list_saved_model_ops("/tmp/preprocessor")
    >>> sorted(ops - keras_rec.serving.list_core_ops())
    ['NormalizeUTF8', 'RegexSplitWithOffsets', 'WordpieceTokenizeWithOffsets']
    """
    ops = set()
    for meta_graph in _read_saved_model(path).meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def serving_signature_specs(path: str, signature: str) -> dict[str, Any]:
    """The input `tf.TensorSpec`s of a signature of the `serve` MetaGraph, by input name.

    Read from `saved_model.pb` alone, as TF Serving reads the SignatureDef:
    no graph is loaded.

    Args:
        path: str. A SavedModel directory or its `saved_model.pb`.
        signature: str. The signature name, e.g. `"serving_default"`.

    Returns:
        `{input name: tf.TensorSpec}` with the SignatureDef's dtype and shape.
    """
    import tensorflow as tf

    for meta_graph in _read_saved_model(path).meta_graphs:
        if "serve" not in meta_graph.meta_info_def.tags:
            continue
        if signature not in meta_graph.signature_def:
            raise ValueError(
                f"The SavedModel {path} has no signature {signature!r}. Its signatures: "
                f"{sorted(meta_graph.signature_def)}"
            )
        return {
            name: tf.TensorSpec(
                tf.TensorShape(info.tensor_shape), tf.dtypes.as_dtype(info.dtype), name=name
            )
            for name, info in sorted(meta_graph.signature_def[signature].inputs.items())
        }
    raise ValueError(f"The SavedModel {path} has no MetaGraph tagged 'serve'.")


@functools.lru_cache(maxsize=1)
def list_core_ops() -> frozenset[str]:
    """Returns the ops registered by TensorFlow alone, without TF Text or other libraries.

    Lists the op registry of a fresh Python process that imports only
    `tensorflow`, so ops that this process loaded from extension libraries
    (TF Text's `.so` files) do not count.
    """
    from keras_rec.serving import fresh_process

    result = subprocess.run(
        [sys.executable, "-P", os.path.abspath(fresh_process.__file__), "--core-ops"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return frozenset(json.loads(result.stdout.strip().splitlines()[-1]))


def _read_saved_model(path: str):
    from tensorflow.core.protobuf import saved_model_pb2

    if os.path.isdir(path):
        path = os.path.join(path, "saved_model.pb")
    if not os.path.isfile(path):
        raise ValueError(
            "`path` must be a SavedModel directory or its saved_model.pb file. "
            f"Received: path={path!r}"
        )
    with open(path, "rb") as file:
        return saved_model_pb2.SavedModel.FromString(file.read())
