"""Which ops a SavedModel needs, to check it against what a TF Serving build has."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_CORE_OPS_SCRIPT = """
import json
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api

buffer = c_api.TF_GetAllOpList()
ops = op_def_pb2.OpList.FromString(c_api.TF_GetBuffer(buffer))
print(json.dumps(sorted(op.name for op in ops.op)))
"""


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
    from tensorflow.core.protobuf import saved_model_pb2

    if os.path.isdir(path):
        path = os.path.join(path, "saved_model.pb")
    if not os.path.isfile(path):
        raise ValueError(
            "`path` must be a SavedModel directory or its saved_model.pb file. "
            f"Received: path={path!r}"
        )
    with open(path, "rb") as file:
        saved_model = saved_model_pb2.SavedModel.FromString(file.read())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def list_core_ops() -> set[str]:
    """Returns the ops registered by TensorFlow alone, without TF Text or other libraries.

    Lists the op registry of a fresh Python process that imports only
    `tensorflow`, so ops that this process loaded from extension libraries
    (TF Text's `.so` files) do not count.
    """
    result = subprocess.run(
        [sys.executable, "-c", _CORE_OPS_SCRIPT],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))
