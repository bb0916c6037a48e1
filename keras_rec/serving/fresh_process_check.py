"""Load an export in a new process that has TensorFlow and nothing else of ours.

TF Serving runs the graph without Python, Keras, TF Hub or keras_rec. The
closest check here: a new interpreter where `keras`, `tf_keras`,
`tensorflow_hub`, `tensorflow_text` and `keras_rec` cannot be imported, which
registers TF Text's kernels with `tf.load_op_library` (as the model server
links them in) when the graph uses any, loads the SavedModel and calls the
signature. Its outputs must equal the in-memory model's.

This file is also the child's script: run by path, it imports only the
standard library, numpy and TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

_BLOCKED_MODULES = ("keras", "tf_keras", "tensorflow_hub", "tensorflow_text", "keras_rec")


class FreshProcessCheckError(RuntimeError):
    """Raised when an export does not load or answer alike in a fresh process."""


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


def check_in_fresh_process(
    saved_model_dir: str,
    inputs_by_batch: Mapping[int, Mapping[str, Any]],
    expected_by_batch: Mapping[int, Mapping[str, Any]],
    signature: str = "serving_default",
    op_libraries: Sequence[str] = (),
    atol: float = 1e-5,
    rtol: float = 1e-5,
    timeout: float = 600,
) -> dict[str, Any]:
    """Calls `signature` of `saved_model_dir` in a fresh process; compares outputs.

    Args:
        saved_model_dir: str. The SavedModel.
        inputs_by_batch: `{batch size: {input name: array}}`.
        expected_by_batch: `{batch size: {output name: array}}`, the
            in-memory model's outputs for those inputs.
        signature: str. The signature to call.
        op_libraries: kernel libraries to `tf.load_op_library` first (see
            `tf_text_op_libraries`).
        atol, rtol: float tolerances for floating-point outputs; other
            dtypes must be equal.
        timeout: float. Seconds allowed.

    Returns:
        The child's report: `{"ok": True, "batch_sizes": [...], "outputs": [...],
        "max_abs_diff": float, "tensorflow": version}`.

    Raises:
        FreshProcessCheckError: the model did not load, failed, or answered
            differently; the message says which output and batch.
    """
    import numpy as np
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="keras_rec_fresh_") as data_dir:
        manifest = {
            "signature": signature,
            "libraries": list(op_libraries),
            "atol": atol,
            "rtol": rtol,
            "batches": {},
        }
        for size in inputs_by_batch:
            entry = {"inputs": {}, "expected": {}}
            for kind, arrays in (
                ("inputs", inputs_by_batch[size]),
                ("expected", expected_by_batch[size]),
            ):
                for index, (name, array) in enumerate(arrays.items()):
                    path = os.path.join(data_dir, f"{size}_{kind}_{index}.pb")
                    proto = tf.make_tensor_proto(np.asarray(array))
                    with open(path, "wb") as file:
                        file.write(proto.SerializeToString())
                    entry[kind][name] = path
            manifest["batches"][str(size)] = entry
        manifest_path = os.path.join(data_dir, "manifest.json")
        with open(manifest_path, "w") as file:
            json.dump(manifest, file)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        try:
            process = subprocess.run(
                # -P: the script's directory (keras_rec/serving) stays off sys.path.
                [sys.executable, "-P", os.path.abspath(__file__), saved_model_dir, manifest_path],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=data_dir,
            )
        except subprocess.TimeoutExpired as error:
            raise FreshProcessCheckError(
                f"Loading {saved_model_dir} in a fresh process took over {timeout:.0f} s."
            ) from error
    lines = [line for line in process.stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise FreshProcessCheckError(
            f"The SavedModel {saved_model_dir} did not load or run in a fresh process with "
            f"TensorFlow only (exit code {process.returncode}):\n{process.stderr[-3000:]}"
        )
    report = json.loads(lines[-1])
    if not report["ok"]:
        raise FreshProcessCheckError(
            f"The SavedModel {saved_model_dir} answers differently in a fresh process: "
            + "; ".join(report["mismatches"])
        )
    return report


def _child_main(saved_model_dir: str, manifest_path: str) -> int:
    for name in _BLOCKED_MODULES:
        sys.modules[name] = None  # `import name` now raises ImportError.
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    with open(manifest_path) as file:
        manifest = json.load(file)
    for library in manifest["libraries"]:
        tf.load_op_library(library)

    def read(path):
        with open(path, "rb") as file:
            return tf.make_ndarray(tensor_pb2.TensorProto.FromString(file.read()))

    function = tf.saved_model.load(saved_model_dir).signatures[manifest["signature"]]
    mismatches, max_abs_diff, output_names = [], 0.0, []
    for size, entry in manifest["batches"].items():
        inputs = {name: tf.constant(read(path)) for name, path in entry["inputs"].items()}
        outputs = {name: value.numpy() for name, value in function(**inputs).items()}
        output_names = sorted(outputs)
        if sorted(entry["expected"]) != output_names:
            mismatches.append(
                f"batch {size}: outputs {output_names} != expected {sorted(entry['expected'])}"
            )
            continue
        for name, path in entry["expected"].items():
            want, got = read(path), outputs[name]
            if want.shape != got.shape:
                mismatches.append(f"batch {size}, {name!r}: shape {got.shape} != {want.shape}")
            elif want.dtype.kind == "f":
                diff = float(np.max(np.abs(got - want))) if want.size else 0.0
                max_abs_diff = max(max_abs_diff, diff)
                if not np.allclose(got, want, atol=manifest["atol"], rtol=manifest["rtol"]):
                    mismatches.append(f"batch {size}, {name!r}: max abs diff {diff:.3g}")
            elif not np.array_equal(got, want):
                mismatches.append(f"batch {size}, {name!r}: values differ")
    leaked = [name for name in _BLOCKED_MODULES if sys.modules.get(name) is not None]
    if leaked:
        mismatches.append(f"modules imported that TF Serving lacks: {leaked}")
    report = {
        "ok": not mismatches,
        "mismatches": mismatches,
        "batch_sizes": [int(size) for size in manifest["batches"]],
        "outputs": output_names,
        "max_abs_diff": max_abs_diff,
        "tensorflow": tf.__version__,
        "op_libraries": len(manifest["libraries"]),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], sys.argv[2]))
