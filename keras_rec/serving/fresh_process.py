"""Answer requests from a SavedModel in a new process with TensorFlow and nothing else.

TF Serving runs the graph without Python, Keras, TF Hub or keras_rec. The
stand-in here is a new interpreter in which `keras`, `tf_keras`,
`tensorflow_hub`, `tensorflow_text` and `keras_rec` cannot be imported. It
registers TF Text's kernels with `tf.load_op_library` (as the model server
links them in) when the graph uses ops that TensorFlow alone lacks, then
loads the SavedModel through one or both loaders and answers every request
with each:

- `"session"`: the path of TF Serving's C++ `LoadSavedModel` (and of
  `saved_model_cli run`): `tf.compat.v1.saved_model.loader.load` imports the
  `serve` MetaGraphDef into a Session, runs the saver's restore op and the
  init op; a request feeds the signature's input tensors by name and
  fetches its output tensors by name. No Python object is rebuilt.
- `"object_graph"`: `tf.saved_model.load`, which rebuilds the Python
  objects (what `HubLayer`, MLflow's pyfunc and TF2 Python clients use).

This file is also the child's script: run by path, it imports only the
standard library, numpy and TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

LOADERS = ("session", "object_graph")
_BLOCKED_MODULES = ("keras", "tf_keras", "tensorflow_hub", "tensorflow_text", "keras_rec")


class ServingCheckError(RuntimeError):
    """Raised when an export does not load, or does not answer as it should, in serving."""


def tf_text_op_libraries() -> list[str]:
    """Paths of TF Text's kernel libraries (`tensorflow_text/python/ops/*.so`)."""
    import importlib.util

    spec = importlib.util.find_spec("tensorflow_text")
    if spec is None or spec.origin is None:
        return []
    ops_dir = os.path.join(os.path.dirname(spec.origin), "python", "ops")
    return sorted(
        os.path.join(ops_dir, name) for name in os.listdir(ops_dir) if name.endswith(".so")
    )


def answer_in_fresh_process(
    saved_model_dir: str,
    requests: Mapping[str, tuple[str, Mapping[str, Any]]],
    loaders: Sequence[str] = LOADERS,
    op_libraries: Sequence[str] = (),
    timeout: float = 600,
) -> dict[str, Any]:
    """Loads `saved_model_dir` in a TensorFlow-only process and answers `requests`.

    Args:
        saved_model_dir: str. The SavedModel.
        requests: `{request id: (signature name, {input name: array})}`.
        loaders: which of `LOADERS` to load with; each answers every request.
        op_libraries: kernel libraries to `tf.load_op_library` first when the
            graph uses an op TensorFlow alone does not register (see
            `tf_text_op_libraries`).
        timeout: float. Seconds allowed.

    Returns:
        `{"answers": {loader: {request id: {output name: array}}},
        "errors": {loader: {request id: message}}, "load_seconds": {loader: s},
        "op_libraries": number loaded, "leaked_modules": [...],
        "tensorflow": version}`. A request that fails is in `errors`, not in
        `answers`.

    Raises:
        ServingCheckError: the process failed before answering, e.g. the
            SavedModel did not load; the message holds the child's error.
    """
    answered = answer_each_in_fresh_process(
        {"model": (saved_model_dir, requests)}, loaders, op_libraries, timeout
    )
    return answered["model"]


def answer_each_in_fresh_process(
    models: Mapping[str, tuple[str, Mapping[str, tuple[str, Mapping[str, Any]]]]],
    loaders: Sequence[str] = LOADERS,
    op_libraries: Sequence[str] = (),
    timeout: float = 600,
) -> dict[str, dict[str, Any]]:
    """`answer_in_fresh_process` for several SavedModels, in one fresh process.

    The process starts TensorFlow once, then loads the SavedModels one after
    another (each into its own graph and Session, closed before the next), as
    a model server holding several models does. One start-up instead of one
    per SavedModel: a training run checks all its exports at once.

    Args:
        models: `{key: (saved_model_dir, requests)}`, `requests` as in
            `answer_in_fresh_process`.
        loaders, op_libraries, timeout: as in `answer_in_fresh_process`
            (`timeout` covers the whole process).

    Returns:
        `{key: report}`, each report as `answer_in_fresh_process` returns it.

    Raises:
        ServingCheckError: the process failed, or a SavedModel did not load
            (the message names it and the loader).
    """
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    from keras_rec.serving.saved_model_ops import list_saved_model_ops

    unknown = sorted(set(loaders) - set(LOADERS))
    if unknown or not loaders:
        raise ValueError(f"`loaders` must be a non-empty subset of {LOADERS}. Received: {loaders}")
    if not models:
        raise ValueError("`models` must name at least one SavedModel. Received: {}")
    directories = {key: os.path.abspath(os.fspath(path)) for key, (path, _) in models.items()}
    with tempfile.TemporaryDirectory(prefix="keras_rec_fresh_") as data_dir:
        manifest: dict[str, Any] = {
            "loaders": list(loaders),
            "libraries": list(op_libraries),
            "models": [],
        }
        for model_index, (key, (_, requests)) in enumerate(models.items()):
            entry = {
                "key": key,
                "dir": directories[key],
                "graph_ops": sorted(list_saved_model_ops(directories[key])),
                "requests": {},
            }
            for index, (request_id, (signature, inputs)) in enumerate(requests.items()):
                paths = {}
                for position, (name, array) in enumerate(inputs.items()):
                    path = os.path.join(data_dir, f"request_{model_index}_{index}_{position}.pb")
                    proto = tf.make_tensor_proto(np.asarray(array))
                    _write_bytes(path, proto.SerializeToString())
                    paths[name] = path
                entry["requests"][request_id] = {"signature": signature, "inputs": paths}
            manifest["models"].append(entry)
        manifest_path = os.path.join(data_dir, "manifest.json")
        _write_bytes(manifest_path, json.dumps(manifest).encode())
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        names = ", ".join(directories.values())
        try:
            process = subprocess.run(
                # -P: the script's directory (keras_rec/serving) stays off sys.path.
                [sys.executable, "-P", os.path.abspath(__file__), manifest_path],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=data_dir,
            )
        except subprocess.TimeoutExpired as error:
            raise ServingCheckError(
                f"Loading {names} in a fresh process took over {timeout:.0f} s."
            ) from error
        lines = [line for line in process.stdout.splitlines() if line.startswith("{")]
        if process.returncode != 0 or not lines:
            raise ServingCheckError(
                f"The SavedModel {names} did not load in a fresh process with "
                f"TensorFlow only (exit code {process.returncode}):\n{process.stderr[-3000:]}"
            )
        reports = json.loads(lines[-1])

        def read(path):
            with open(path, "rb") as file:
                return tf.make_ndarray(tensor_pb2.TensorProto.FromString(file.read()))

        for key, report in reports.items():
            if report.get("load_error"):
                loader, message = report["load_error"]
                raise ServingCheckError(
                    f"The SavedModel {directories[key]} did not load with the {loader!r} loader"
                    f"{' (TF Serving C++ loader path)' if loader == 'session' else ''}: {message}"
                )
            report["answers"] = {
                loader: {
                    request_id: {name: read(path) for name, path in outputs.items()}
                    for request_id, outputs in answers.items()
                }
                for loader, answers in report["answers"].items()
            }
    return reports


def _child_main(manifest_path: str) -> int:
    for name in _BLOCKED_MODULES:
        sys.modules[name] = None  # `import name` now raises ImportError.
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    with open(manifest_path) as file:
        manifest = json.load(file)
    graph_ops = set().union(*(entry["graph_ops"] for entry in manifest["models"]))
    libraries = manifest["libraries"] if graph_ops - _core_ops() else []
    for library in libraries:
        tf.load_op_library(library)

    def read(path):
        with open(path, "rb") as file:
            return tf.make_ndarray(tensor_pb2.TensorProto.FromString(file.read()))

    out_dir = os.path.dirname(manifest_path)
    reports = {}
    for model_index, entry in enumerate(manifest["models"]):
        requests = {
            request_id: (request["signature"], {n: read(p) for n, p in request["inputs"].items()})
            for request_id, request in entry["requests"].items()
        }
        report: dict[str, Any] = {
            "answers": {},
            "errors": {},
            "load_seconds": {},
            "op_libraries": len(libraries),
        }
        for loader in manifest["loaders"]:
            start = time.perf_counter()
            try:
                answers, errors = _ANSWER_WITH[loader](tf, entry["dir"], requests)
            except Exception as error:  # noqa: BLE001 - reported to the parent.
                report["load_error"] = [loader, f"{type(error).__name__}: {error}"]
                break
            report["load_seconds"][loader] = round(time.perf_counter() - start, 3)
            report["errors"][loader] = errors
            report["answers"][loader] = {}
            for index, (request_id, outputs) in enumerate(answers.items()):
                paths = {}
                for position, (name, value) in enumerate(outputs.items()):
                    path = os.path.join(
                        out_dir, f"answer_{model_index}_{loader}_{index}_{position}.pb"
                    )
                    proto = tf.make_tensor_proto(np.asarray(value))
                    _write_bytes(path, proto.SerializeToString())
                    paths[name] = path
                report["answers"][loader][request_id] = paths
        reports[entry["key"]] = report
    leaked = [n for n in _BLOCKED_MODULES if sys.modules.get(n) is not None]
    for report in reports.values():
        report["leaked_modules"] = leaked
        report["tensorflow"] = tf.__version__
    print(json.dumps(reports))
    return 0


def _core_ops() -> set[str]:
    """The ops this process's TensorFlow registers (before any library is loaded)."""
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session as c_api

    buffer = c_api.TF_GetAllOpList()
    return {op.name for op in op_def_pb2.OpList.FromString(c_api.TF_GetBuffer(buffer)).op}


def _answer_with_session(tf, saved_model_dir, requests):
    """TF Serving's path: MetaGraphDef into a Session, tensors fed and fetched by name."""
    answers, errors = {}, {}
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], saved_model_dir)
        for request_id, (signature, inputs) in requests.items():
            if signature not in meta_graph.signature_def:
                errors[request_id] = (
                    f"no signature {signature!r}; the SavedModel has "
                    f"{sorted(meta_graph.signature_def)}"
                )
                continue
            signature_def = meta_graph.signature_def[signature]
            expected = sorted(signature_def.inputs)
            if sorted(inputs) != expected:
                errors[request_id] = f"inputs {sorted(inputs)} != the signature's {expected}"
                continue
            feeds = {signature_def.inputs[name].name: value for name, value in inputs.items()}
            fetches = {name: info.name for name, info in signature_def.outputs.items()}
            try:
                answers[request_id] = session.run(fetches, feeds)
            except Exception as error:  # noqa: BLE001 - reported per request.
                errors[request_id] = f"{type(error).__name__}: {error}"[:2000]
    return answers, errors


def _answer_with_object_graph(tf, saved_model_dir, requests):
    """`tf.saved_model.load`: the Python objects rebuilt, signatures called eagerly."""
    answers, errors = {}, {}
    loaded = tf.saved_model.load(saved_model_dir)
    for request_id, (signature, inputs) in requests.items():
        if signature not in loaded.signatures:
            errors[request_id] = f"no signature {signature!r}"
            continue
        try:
            outputs = loaded.signatures[signature](
                **{name: tf.constant(value) for name, value in inputs.items()}
            )
            answers[request_id] = {name: value.numpy() for name, value in outputs.items()}
        except Exception as error:  # noqa: BLE001 - reported per request.
            errors[request_id] = f"{type(error).__name__}: {error}"[:2000]
    return answers, errors


_ANSWER_WITH = {"session": _answer_with_session, "object_graph": _answer_with_object_graph}


def _write_bytes(path: str, data: bytes) -> None:
    # Scratch files of a temporary directory.
    with open(path, "wb") as file:
        file.write(data)


if __name__ == "__main__":
    if sys.argv[1:] == ["--core-ops"]:
        for _name in _BLOCKED_MODULES:
            sys.modules[_name] = None
        print(json.dumps(sorted(_core_ops())))
        sys.exit(0)
    sys.exit(_child_main(sys.argv[1]))
