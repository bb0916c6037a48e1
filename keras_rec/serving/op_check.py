"""Checks that a SavedModel only uses ops that a TF Serving build can run.

TF Serving has no Python: a SavedModel loads there only if every op in it is
registered in the model server binary, i.e. the core ops of the TensorFlow
release the server is built on plus the TF Text ops it links in. The op sets
of the supported builds ship as data files in `keras_rec/serving/op_sets/`,
generated from the real releases by `scripts/generate_serving_op_sets.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
import re

from google.protobuf.message import DecodeError

from keras_rec.serving.saved_model_ops import list_saved_model_ops

DEFAULT_TARGET = "tfserving-2.19"

# Registered in every TensorFlow build, but their kernels call back into the
# Python interpreter (`tf.py_function`, `tf.numpy_function`), which a model
# server does not have.
_PYTHON_OPS = frozenset({"EagerPyFunc", "PyFunc", "PyFuncStateless"})

_REMEDIES = {
    "TFText>RoundRobinTrim": (
        "truncate with core ops (slice each segment's RaggedTensor to its share "
        "of the length budget) instead of `tensorflow_text.RoundRobinTrimmer`"
    ),
    "TFText>RoundRobinGenerateMasks": (
        "compute the truncation mask with core ops instead of "
        "`tensorflow_text.RoundRobinTrimmer.generate_mask`"
    ),
    "TFText>Utf8Binarize": (
        "binarize with core ops (`tf.strings.unicode_decode` and bit shifts) "
        "instead of `tensorflow_text.utf8_binarize`"
    ),
}
_HEADER_FIELD = re.compile(r"^#\s*([a-z_]+):\s*(\S+)")


class ServingCompatibilityError(ValueError):
    """Raised when a SavedModel uses ops that the target TF Serving build lacks."""


@dataclasses.dataclass(frozen=True)
class OpSet:
    """The ops a TF Serving build can run, read from its data file.

    Args:
        target: str. The target name, e.g. `"tfserving-2.19"`.
        ops: frozenset of str. The op names.
        versions: dict. Header fields of the file, e.g.
            `{"tensorflow": "2.19.1", "tensorflow_text": "2.12.1", ...}`.
    """

    target: str
    ops: frozenset[str]
    versions: dict[str, str]

    def describe(self) -> str:
        """Returns e.g. `"tfserving-2.19 (TensorFlow 2.19.1, TF Text 2.12.1)"`."""
        tensorflow = self.versions.get("tensorflow", "?")
        text = self.versions.get("tensorflow_text", "?")
        return f"{self.target} (TensorFlow {tensorflow}, TF Text {text})"


@dataclasses.dataclass(frozen=True)
class OpCheckResult:
    """What `check_serving_ops` found.

    Args:
        path: str. The SavedModel checked.
        target: str. The TF Serving target it was checked against.
        ops: list of str. Every op type the SavedModel uses, sorted.
        missing: dict. Each op the target lacks, mapped to where it is used
            (`"graph (tags: serve)"`, `"function <name>"`), sorted.
        description: str. The target and the releases its op set comes from.
    """

    path: str
    target: str
    ops: list[str]
    missing: dict[str, list[str]]
    description: str

    @property
    def ok(self) -> bool:
        """Whether the target has every op the SavedModel uses."""
        return not self.missing

    def explain(self) -> str:
        """Returns a message naming the missing ops, where they are and what to do."""
        if self.ok:
            return f"{self.path} uses {len(self.ops)} ops, all available in {self.description}."
        lines = [
            f"{self.path} uses {len(self.missing)} op(s) that {self.description} does not have:"
        ]
        for op, places in self.missing.items():
            lines.append(f"  - {op}: {_advice(op, self.target)}")
            lines.append(f"      used in {', '.join(places)}")
        lines.append("Re-export without these ops, or serve the model on a target that has them.")
        return "\n".join(lines)


def available_targets() -> list[str]:
    """Returns the TF Serving targets that have an op set, e.g. `["tfserving-2.19", ...]`."""
    directory = importlib.resources.files("keras_rec.serving").joinpath("op_sets")
    return sorted(
        entry.name[: -len(".txt")] for entry in directory.iterdir() if entry.name.endswith(".txt")
    )


@functools.lru_cache(maxsize=None)
def load_op_set(target: str = DEFAULT_TARGET) -> OpSet:
    """Returns the ops of a TF Serving target, read from its packaged data file.

    Args:
        target: str. One of `available_targets()`.

    Returns:
        An `OpSet` with the op names and the releases they come from.

    Example:

    >>> op_set = keras_rec.serving.load_op_set("tfserving-2.19")
    >>> "TFText>RoundRobinTrim" in op_set.ops
    False
    """
    targets = available_targets()
    if target not in targets:
        raise ValueError(f"`target` must be one of {targets}. Received: target={target!r}")
    text = (
        importlib.resources.files("keras_rec.serving")
        .joinpath("op_sets", f"{target}.txt")
        .read_text(encoding="utf-8")
    )
    ops, versions = set(), {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            match = _HEADER_FIELD.match(line)
            if match:
                versions[match.group(1)] = match.group(2)
        elif line:
            ops.add(line)
    return OpSet(target=target, ops=frozenset(ops), versions=versions)


def check_serving_ops(path: str, target: str = DEFAULT_TARGET) -> OpCheckResult:
    """Checks a SavedModel's ops against a TF Serving build, without loading it.

    Reads `saved_model.pb`: the nodes of every meta graph and of every function
    in the function library (while-loop bodies, nested `tf.function`s, ...).

    Args:
        path: str. A SavedModel directory or its `saved_model.pb` file.
        target: str. One of `available_targets()`: `"tfserving-2.19"` (also
            the SageMaker TF Serving container 2.19) or `"tfserving-2.20"`.

    Returns:
        An `OpCheckResult`; `result.ok` is `True` when the target has every op.

    Example:

    >>> result = keras_rec.serving.check_serving_ops("/tmp/export", "tfserving-2.19")
    >>> result.missing
    {'TFText>RoundRobinTrim': ['function __inference_serve_1234']}
    """
    op_set = load_op_set(target)
    try:
        used = list_saved_model_ops(path)
    except DecodeError as error:
        raise ValueError(
            f"`path` must be a SavedModel, but its saved_model.pb does not parse "
            f"({error}). Received: path={path!r}"
        ) from error
    lacking = {op for op in used if op not in op_set.ops or op in _PYTHON_OPS}
    places, function_names = _find_usages(path, lacking) if lacking else ({}, set())
    # A node may call a library function by name: that is not an op.
    used -= function_names
    missing = {op: places[op] for op in sorted(lacking - function_names)}
    return OpCheckResult(
        path=os.fspath(path),
        target=target,
        ops=sorted(used),
        missing=missing,
        description=op_set.describe(),
    )


def assert_servable(path: str, target: str = DEFAULT_TARGET) -> OpCheckResult:
    """Raises `ServingCompatibilityError` unless the target has every op of a SavedModel.

    Args:
        path: str. A SavedModel directory or its `saved_model.pb` file.
        target: str. One of `available_targets()`.

    Returns:
        The `OpCheckResult`, when the SavedModel is servable.

    Example:

    >>> keras_rec.serving.assert_servable("/tmp/export", target="tfserving-2.19")
    """
    result = check_serving_ops(path, target)
    if not result.ok:
        raise ServingCompatibilityError(result.explain())
    return result


def _advice(op: str, target: str) -> str:
    if op in _PYTHON_OPS:
        return (
            "runs Python (`tf.py_function` / `tf.numpy_function`), which no "
            "model server has; rewrite it with TensorFlow ops"
        )
    others = [
        name for name in available_targets() if name != target and op in load_op_set(name).ops
    ]
    advice = f"not in {target}"
    if others:
        advice += f" (available in {', '.join(others)})"
    remedy = _REMEDIES.get(op)
    if remedy is None:
        versions = load_op_set(target).versions
        remedy = (
            f"neither TensorFlow {versions.get('tensorflow', '?')} nor TF Text "
            f"{versions.get('tensorflow_text', '?')} registers it (a newer op, or "
            "a custom op library): build the model without it"
        )
    return f"{advice}; {remedy}"


def _find_usages(path: str, ops: set[str]) -> tuple[dict[str, list[str]], set[str]]:
    """Returns where each of `ops` is used, and the names of library functions."""
    from tensorflow.core.protobuf import saved_model_pb2

    if os.path.isdir(path):
        path = os.path.join(path, "saved_model.pb")
    with open(path, "rb") as file:
        saved_model = saved_model_pb2.SavedModel.FromString(file.read())
    places: dict[str, set[str]] = {op: set() for op in ops}
    function_names = set()
    for meta_graph in saved_model.meta_graphs:
        tags = ", ".join(meta_graph.meta_info_def.tags)
        for node in meta_graph.graph_def.node:
            if node.op in places:
                places[node.op].add(f"graph (tags: {tags})")
        for function in meta_graph.graph_def.library.function:
            function_names.add(function.signature.name)
            for node in function.node_def:
                if node.op in places:
                    places[node.op].add(f"function {function.signature.name}")
    return {op: sorted(where) for op, where in places.items()}, function_names
