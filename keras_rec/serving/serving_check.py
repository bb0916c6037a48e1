"""`check_serving`: does a SavedModel load and answer the way TF Serving will load it?

Every request goes to a fresh TensorFlow-only process (`fresh_process`) that
loads the SavedModel through TF Serving's own path, the Session-based C++
loader (`"session"`), and through `tf.saved_model.load` (`"object_graph"`,
what Python consumers such as `HubLayer` and MLflow's pyfunc use). The
requests, and what each answer is compared with:

- the signature at two batch sizes: equal to the in-memory model's outputs
  (given by the exporter), or, for an export already on disk, to the
  response in its REST example for the same rows;
- every record of `assets.extra/tf_serving_warmup_requests`: TF Serving
  replays them at load and refuses the version if one fails, so each must
  answer;
- every REST example request in `assets.extra/`: decoded as TF Serving's
  REST front end decodes it, answered, encoded back, equal to the stored
  response file.

A SavedModel with none of these files (e.g. a TF Hub module) is called on
inputs made up from its signature, and both loaders must answer alike.

`check_serving_all` checks several SavedModels in one such process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keras_rec.serving.fresh_process import (
    LOADERS,
    ServingCheckError,
    answer_each_in_fresh_process,
    tf_text_op_libraries,
)
from keras_rec.serving.serving_signature import SERVING_DEFAULT, take_rows

EXTRA_DIR = "assets.extra"


@dataclasses.dataclass
class ServingCheck:
    """One SavedModel for `check_serving_all`, and what it must answer.

    Args:
        saved_model_dir: str. The SavedModel (a version directory).
        inputs_by_batch: `{batch size: {input name: array}}` or None (see
            `check_serving`).
        expected_by_batch: `{batch size: {output name: array}}` or None.
        signature: str. The signature the batch requests call.
        atol, rtol: float. Tolerances for floating-point outputs.
    """

    saved_model_dir: str
    inputs_by_batch: Mapping[int, Mapping[str, Any]] | None = None
    expected_by_batch: Mapping[int, Mapping[str, Any]] | None = None
    signature: str = SERVING_DEFAULT
    atol: float = 1e-5
    rtol: float = 1e-5


def check_serving(
    saved_model_dir: str,
    inputs_by_batch: Mapping[int, Mapping[str, Any]] | None = None,
    expected_by_batch: Mapping[int, Mapping[str, Any]] | None = None,
    signature: str = SERVING_DEFAULT,
    loaders: Sequence[str] = LOADERS,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    timeout: float = 600,
) -> dict[str, Any]:
    """Loads `saved_model_dir` as TF Serving does and checks every answer.

    Args:
        saved_model_dir: str. The SavedModel (a version directory).
        inputs_by_batch: `{batch size: {input name: array}}` or None. None
            takes the rows of the REST example request (all, then the first),
            or made-up inputs when there is none.
        expected_by_batch: `{batch size: {output name: array}}`, the
            in-memory outputs for `inputs_by_batch`; required with it.
        signature: str. The signature the batch requests call.
        loaders: the loaders of `keras_rec.serving.fresh_process.LOADERS` to check.
        atol, rtol: float. Tolerances for floating-point outputs; other dtypes
            must be equal.
        timeout: float. Seconds allowed to the fresh process.

    Returns:
        A report: `{"ok": True, "loaders", "batch_sizes", "warmup_requests",
        "rest_examples", "outputs", "max_abs_diff", "load_seconds", "seconds",
        "op_libraries", "tensorflow"}`.

    Raises:
        ServingCheckError: the SavedModel did not load, a request failed, or an
            answer differs; the message names the loader, request and output.
    """
    check = ServingCheck(saved_model_dir, inputs_by_batch, expected_by_batch, signature, atol, rtol)
    return check_serving_all([check], loaders, timeout)[0]


def check_serving_all(
    checks: Sequence[ServingCheck], loaders: Sequence[str] = LOADERS, timeout: float = 600
) -> list[dict[str, Any]]:
    """`check_serving` of several SavedModels in one fresh TensorFlow-only process.

    TensorFlow starts once and loads the SavedModels one after another, as a
    model server holding several models does: a training run checks all its
    exports for the price of one start-up.

    Args:
        checks: the `ServingCheck`s.
        loaders: the loaders of `keras_rec.serving.fresh_process.LOADERS` to check.
        timeout: float. Seconds allowed to the fresh process.

    Returns:
        One report per check, in order, as `check_serving` returns it
        (`seconds` is the time of the whole shared check).

    Raises:
        ServingCheckError: naming every SavedModel that did not load or answer
            as it should.
    """
    start = time.perf_counter()
    plans = [_plan(check) for check in checks]
    models = {str(i): (plan.check.saved_model_dir, plan.requests) for i, plan in enumerate(plans)}
    served = answer_each_in_fresh_process(
        models,
        loaders=loaders,
        op_libraries=tf_text_op_libraries(),
        timeout=timeout,
    )
    failures, reports = [], []
    for index, plan in enumerate(plans):
        problems, report = _verify(plan, served[str(index)], loaders)
        if problems:
            failures.append(
                f"The SavedModel {plan.check.saved_model_dir} does not answer as TF Serving "
                "needs:\n  " + "\n  ".join(problems)
            )
        reports.append(report)
    if failures:
        raise ServingCheckError("\n".join(failures))
    seconds = round(time.perf_counter() - start, 2)
    return [{**report, "seconds": seconds} for report in reports]


@dataclasses.dataclass
class _Plan:
    """The requests of one check and what each answer is compared with."""

    check: ServingCheck
    requests: dict[str, tuple[str, Mapping[str, Any]]]
    batch_sizes: list[int]
    expected_arrays: dict[str, Mapping[str, Any]]
    expected_rest: dict[str, tuple[str, Any]]
    warmup_requests: int
    rest_examples: list[str]


def _plan(check: ServingCheck) -> _Plan:
    from keras_rec.serving.rest_examples import REST_FILES, rest_request_inputs
    from keras_rec.serving.saved_model_ops import serving_signature_specs

    saved_model_dir, signature = check.saved_model_dir, check.signature
    inputs_by_batch, expected_by_batch = check.inputs_by_batch, check.expected_by_batch
    specs = serving_signature_specs(saved_model_dir, signature)
    if (inputs_by_batch is None) != (expected_by_batch is None):
        raise ValueError("Pass both `inputs_by_batch` and `expected_by_batch`, or neither.")
    requests: dict[str, tuple[str, Mapping[str, Any]]] = {}
    batch_sizes: list[int] = []
    expected_arrays: dict[str, Mapping[str, Any]] = {}
    expected_rest: dict[str, tuple[str, Any]] = {}

    rest_files = {
        style: _read_json_pair(saved_model_dir, files) for style, files in REST_FILES.items()
    }
    rest_files = {style: pair for style, pair in rest_files.items() if pair is not None}
    for style, (request, response) in rest_files.items():
        request_signature = request.get("signature_name", SERVING_DEFAULT)
        style_specs = serving_signature_specs(saved_model_dir, request_signature)
        _, inputs = rest_request_inputs(request, style_specs)
        requests[f"REST {style} example"] = (request_signature, inputs)
        expected_rest[f"REST {style} example"] = (style, response)

    if inputs_by_batch is not None:
        for size, inputs in inputs_by_batch.items():
            requests[f"batch {size}"] = (signature, inputs)
            batch_sizes.append(size)
            expected_arrays[f"batch {size}"] = expected_by_batch[size]
    elif "inputs" in rest_files:
        _, response = rest_files["inputs"]
        inputs = requests["REST inputs example"][1]
        rows = len(next(iter(inputs.values())))
        for size in sorted({rows, 1}, reverse=True):
            requests[f"batch {size}"] = (signature, take_rows(inputs, size))
            batch_sizes.append(size)
            expected_rest[f"batch {size}"] = ("inputs", _first_rows(response, size))
    else:
        requests["made-up batch 2"] = (signature, _made_up_inputs(specs, 2))
        batch_sizes.append(2)

    warmup = _warmup_requests(saved_model_dir)
    for index, (warmup_signature, inputs) in enumerate(warmup):
        requests[f"warmup record {index}"] = (warmup_signature or SERVING_DEFAULT, inputs)
    rest_examples = sorted(rest_files)
    return _Plan(
        check, requests, batch_sizes, expected_arrays, expected_rest, len(warmup), rest_examples
    )


def _verify(plan: _Plan, served: Mapping[str, Any], loaders: Sequence[str]):
    """`(problems, report)`: the answers of one SavedModel against its plan."""
    atol, rtol = plan.check.atol, plan.check.rtol
    problems, max_abs_diff, output_names = [], 0.0, set()
    for loader in loaders:
        for request_id, message in served["errors"][loader].items():
            problems.append(f"[{loader}] {request_id} failed: {message}")
        answers = served["answers"][loader]
        for request_id, expected in plan.expected_arrays.items():
            if request_id in answers:
                diff, found = _compare_arrays(answers[request_id], expected, atol, rtol)
                max_abs_diff = max(max_abs_diff, diff)
                problems.extend(f"[{loader}] {request_id}: {p}" for p in found)
                output_names.update(answers[request_id])
        for request_id, (style, response) in plan.expected_rest.items():
            if request_id in answers:
                problems.extend(
                    f"[{loader}] {request_id}: {p}"
                    for p in _compare_rest(answers[request_id], style, response, atol, rtol)
                )
                output_names.update(answers[request_id])
    if len(loaders) > 1 and not plan.expected_arrays and not plan.expected_rest:
        first, *others = loaders
        for request_id, answer in served["answers"][first].items():
            output_names.update(answer)
            for other in others:
                if request_id in served["answers"][other]:
                    _, found = _compare_arrays(
                        served["answers"][other][request_id], answer, atol, rtol
                    )
                    problems.extend(f"[{other} vs {first}] {request_id}: {p}" for p in found)
    if served["leaked_modules"]:
        problems.append(f"modules imported that TF Serving lacks: {served['leaked_modules']}")
    return problems, {
        "ok": True,
        "loaders": list(loaders),
        "batch_sizes": plan.batch_sizes,
        "warmup_requests": plan.warmup_requests,
        "rest_examples": plan.rest_examples,
        "outputs": sorted(output_names),
        "max_abs_diff": max_abs_diff,
        "load_seconds": served["load_seconds"],
        "op_libraries": served["op_libraries"],
        "tensorflow": served["tensorflow"],
    }


def _compare_arrays(actual, expected, atol, rtol) -> tuple[float, list[str]]:
    if sorted(actual) != sorted(expected):
        return 0.0, [f"outputs {sorted(actual)} != expected {sorted(expected)}"]
    problems, max_abs_diff = [], 0.0
    for name in expected:
        want, got = np.asarray(expected[name]), np.asarray(actual[name])
        if want.shape != got.shape:
            problems.append(f"{name!r}: shape {got.shape} != {want.shape}")
        elif want.dtype.kind == "f":
            diff = float(np.max(np.abs(got - want))) if want.size else 0.0
            max_abs_diff = max(max_abs_diff, diff)
            if not np.allclose(got, want, atol=atol, rtol=rtol):
                problems.append(f"{name!r}: max abs diff {diff:.3g}")
        elif not np.array_equal(got, want):
            problems.append(f"{name!r}: values differ")
    return max_abs_diff, problems


def _compare_rest(answer, style, response, atol, rtol) -> list[str]:
    from keras_rec.serving.rest_examples import rest_mismatches, rest_response

    return rest_mismatches(rest_response(answer, style), response, atol, rtol)


def _first_rows(response: Mapping[str, Any], rows: int) -> dict[str, Any]:
    """The columnar ("inputs" style) REST response cut to its first `rows` rows."""
    outputs = response["outputs"]
    if isinstance(outputs, Mapping):
        return {"outputs": {name: column[:rows] for name, column in outputs.items()}}
    return {"outputs": outputs[:rows]}


def _read_json_pair(saved_model_dir: str, files: tuple[str, str]):
    paths = [os.path.join(saved_model_dir, EXTRA_DIR, name) for name in files]
    if not all(os.path.isfile(path) for path in paths):
        return None
    bodies = []
    for path in paths:
        with open(path, encoding="utf-8") as file:
            bodies.append(json.load(file))
    return tuple(bodies)


def _warmup_requests(saved_model_dir: str) -> list[tuple[str, dict[str, np.ndarray]]]:
    from keras_rec.serving.warmup_requests import WARMUP_FILE, read_warmup_requests

    if not os.path.isfile(os.path.join(saved_model_dir, WARMUP_FILE)):
        return []
    return read_warmup_requests(saved_model_dir)


def _made_up_inputs(specs, rows: int) -> dict[str, np.ndarray]:
    """Inputs of the signature's dtypes and shapes (open dimensions of size 4)."""
    inputs = {}
    for name, spec in specs.items():
        dims = spec.shape.as_list() if spec.shape.rank is not None else [None]
        shape = [rows, *[4 if d is None else d for d in dims[1:]]]
        if spec.dtype.name == "string":
            inputs[name] = np.full(shape, b"hello world", dtype=object)
        elif spec.dtype.name == "bool":
            inputs[name] = np.ones(shape, bool)
        else:
            inputs[name] = np.ones(shape, spec.dtype.as_numpy_dtype)
    return inputs
