"""TF Serving REST request/response bodies for a signature.

TF Serving's `POST /v1/models/<name>:predict` takes either format:

- row ("instances"): `{"signature_name": ..., "instances": [row, ...]}`, a row
  being the value itself for a one-input signature, else a dict by input
  name; answered `{"predictions": [...]}` (values, or dicts by output name
  when there are several outputs);
- columnar ("inputs"): `{"signature_name": ..., "inputs": {name: [...]}}`;
  answered `{"outputs": {name: [...]}}` (or the bare value for one output).

Strings travel as JSON strings; bytes that are not UTF-8 (and outputs whose
name ends in `_bytes`) as `{"b64": "..."}`. `predict_rest` plays the server's
part for a loaded signature, so a test can feed a request file through it.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from keras_rec.serving.serving_signature import SERVING_DEFAULT, call_signature, input_specs

REST_FILES = {
    "instances": ("rest_request_instances.json", "rest_response_instances.json"),
    "inputs": ("rest_request_inputs.json", "rest_response_inputs.json"),
}


def rest_request(
    inputs: Mapping[str, np.ndarray], style: str = "instances", signature: str = SERVING_DEFAULT
) -> dict[str, Any]:
    """The REST request body for `inputs` (`{name: rows}`) in `style` "instances" or "inputs"."""
    _check_style(style)
    columns = {name: _to_json(array) for name, array in inputs.items()}
    body: dict[str, Any] = {"signature_name": signature}
    if style == "inputs":
        body["inputs"] = columns
    elif len(columns) == 1:
        body["instances"] = next(iter(columns.values()))
    else:
        rows = len(next(iter(columns.values())))
        body["instances"] = [
            {name: column[i] for name, column in columns.items()} for i in range(rows)
        ]
    return body


def rest_response(outputs: Mapping[str, np.ndarray], style: str = "instances") -> dict[str, Any]:
    """The REST response body TF Serving returns for `outputs` (`{name: rows}`)."""
    _check_style(style)
    columns = {
        name: _to_json(array, force_b64=name.endswith("_bytes")) for name, array in outputs.items()
    }
    if style == "inputs":
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    rows = len(next(iter(columns.values())))
    return {"predictions": [{name: col[i] for name, col in columns.items()} for i in range(rows)]}


def predict_rest(function: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """Answers a REST predict request with a signature function, as TF Serving does.

    Args:
        function: a signature function (e.g. `loaded.signatures["serving_default"]`).
        request: the decoded JSON body, in either format.

    Returns:
        The decoded JSON response body.
    """
    style, inputs = rest_request_inputs(request, input_specs(function))
    return rest_response(call_signature(function, inputs), style)


def rest_request_inputs(
    request: Mapping[str, Any], specs: Mapping[str, tf.TensorSpec]
) -> tuple[str, dict[str, np.ndarray]]:
    """Decodes a REST predict body into `(style, {input name: array})`, as TF Serving does.

    Args:
        request: the decoded JSON body, "instances" (row) or "inputs" (columnar).
        specs: the signature's input specs by name (their dtypes decode the values).

    Returns:
        The body's style and one array per signature input.
    """
    if ("instances" in request) == ("inputs" in request):
        raise ValueError('A REST request must have exactly one of "instances" and "inputs".')
    if "inputs" in request:
        style, columns = "inputs", request["inputs"]
        if not isinstance(columns, Mapping):
            columns = {next(iter(specs)): columns}
    else:
        style, rows = "instances", request["instances"]
        if len(specs) == 1 and not (rows and isinstance(rows[0], Mapping)):
            columns = {next(iter(specs)): rows}
        else:
            columns = {name: [row[name] for row in rows] for name in specs}
    missing = [name for name in specs if name not in columns]
    if missing:
        raise ValueError(
            f"The REST request lacks the inputs {missing}; the signature takes {list(specs)}"
        )
    inputs = {
        name: np.asarray(_from_json(columns[name], spec.dtype), dtype=object)
        if spec.dtype == tf.string
        else np.asarray(columns[name], dtype=spec.dtype.as_numpy_dtype)
        for name, spec in specs.items()
    }
    return style, inputs


def write_rest_examples(
    directory: str, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]
) -> list[str]:
    """Writes the request and response files of both formats into `directory`."""
    paths = []
    for style, (request_file, response_file) in REST_FILES.items():
        for name, body in (
            (request_file, rest_request(inputs, style)),
            (response_file, rest_response(outputs, style)),
        ):
            path = os.path.join(directory, name)
            _write_file(path, (json.dumps(body, indent=1) + "\n").encode("utf-8"))
            paths.append(path)
    return paths


def rest_mismatches(
    actual: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-5, where: str = "$"
) -> list[str]:
    """Where two decoded REST bodies differ (numbers within tolerance); empty if they match."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping) or set(actual) != set(expected):
            return [
                f"{where}: keys {sorted(actual) if isinstance(actual, Mapping) else actual!r} "
                f"!= {sorted(expected)}"
            ]
        return [
            m
            for key in expected
            for m in rest_mismatches(actual[key], expected[key], atol, rtol, f"{where}.{key}")
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: {_short(actual)} != {_short(expected)}"]
        return [
            m
            for i, (a, e) in enumerate(zip(actual, expected))
            for m in rest_mismatches(a, e, atol, rtol, f"{where}[{i}]")
        ]
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        if math.isnan(expected) and math.isnan(actual):
            return []
        return (
            []
            if abs(actual - expected) <= atol + rtol * abs(expected)
            else [f"{where}: {actual} != {expected}"]
        )
    return [] if actual == expected else [f"{where}: {actual!r} != {expected!r}"]


def _check_style(style: str) -> None:
    if style not in REST_FILES:
        raise ValueError(f"`style` must be one of {sorted(REST_FILES)}. Received: style={style!r}")


def _to_json(array: np.ndarray, force_b64: bool = False) -> list:
    array = np.asarray(array)
    if array.dtype.kind in ("O", "S", "U"):
        return np.vectorize(lambda value: _string_to_json(value, force_b64), otypes=[object])(
            array
        ).tolist()
    return array.tolist()


def _string_to_json(value: Any, force_b64: bool) -> Any:
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if not force_b64:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(data).decode("ascii")}


def _from_json(value: Any, dtype: tf.DType) -> Any:
    if isinstance(value, list):
        return [_from_json(item, dtype) for item in value]
    if isinstance(value, Mapping) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _write_file(path: str, data: bytes) -> None:
    # Written inside an export's temporary directory, published whole.
    with open(path, "wb") as file:
        file.write(data)
