"""Shared round-trip assertions for keras_rec tests.

- `assert_config_round_trip(obj)`: `from_config(get_config())` gives an equal,
  JSON-serializable config.
- `assert_keras_round_trip(model, inputs, tmp_path)`: `.keras` save -> load ->
  same outputs.
- `assert_close_retrieval_metrics(summary, reference, tolerance)`: two
  `train-recommender` runs score alike.
- `assert_cosine_close(actual, expected, min_cosine)`: every row of two
  embedding matrices points the same way; returns the smallest cosine.
- `assert_no_tensorflow_startup_lines(stderr)`: a plain `keras-rec` run
  printed none of TensorFlow's native start-up lines.
- `assert_saved_model_round_trip(model_or_module, inputs, tmp_path)`: SavedModel
  export -> load in a fresh process that imports only TensorFlow, through TF
  Serving's Session loader and `tf.saved_model.load` -> run `serving_default`
  -> same outputs as in memory, at two batch sizes.

Inputs and outputs may be one array or a dict of arrays (numbers or strings).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def assert_config_round_trip(layer_or_model) -> Any:
    """Asserts that `cls.from_config(obj.get_config())` has an equal config.

    The config must also survive JSON (as in a `.keras` file): a bound method,
    a tensor or a numpy scalar left in it fails here.

    Args:
        layer_or_model: a Keras layer, model, or any object with `get_config` and
            a `from_config` classmethod.

    Returns:
        The object rebuilt from the JSON-decoded config.
    """
    config = layer_or_model.get_config()
    try:
        decoded = json.loads(json.dumps(config))
    except TypeError as error:
        raise AssertionError(
            f"{type(layer_or_model).__name__}.get_config() is not "
            f"JSON-serializable: {error}. Config: {config!r}"
        ) from error
    clone = type(layer_or_model).from_config(decoded)
    clone_config = json.loads(json.dumps(clone.get_config()))
    assert clone_config == decoded, (
        f"{type(layer_or_model).__name__} config changed in a round trip:\n"
        f"  before: {decoded}\n  after:  {clone_config}"
    )
    return clone


def assert_keras_round_trip(
    model,
    inputs,
    tmp_path,
    *,
    atol: float = 1e-6,
    rtol: float = 1e-6,
    **load_kwargs,
):
    """Asserts that a model saved as `.keras` and reloaded gives the same outputs.

    Both models are called with `training=False`.

    Args:
        model: a Keras model.
        inputs: what the model is called with (array, dict, list).
        tmp_path: a directory (pytest's `tmp_path`) for `model.keras`.
        atol, rtol: float tolerances of the comparison.
        **load_kwargs: passed to `keras.saving.load_model` (e.g. `safe_mode`).

    Returns:
        The reloaded model.
    """
    import keras

    path = os.path.join(os.fspath(tmp_path), "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, **load_kwargs)
    _assert_outputs_close(
        _to_numpy(reloaded(inputs, training=False)),
        _to_numpy(model(inputs, training=False)),
        atol,
        rtol,
        "reloaded .keras model vs in-memory model",
    )
    return reloaded


def assert_saved_model_round_trip(
    model_or_module,
    inputs,
    tmp_path,
    batch_sizes: Sequence[int] = (1, 3),
    *,
    method: str = "export",
    signatures: Any = None,
    expected_fn: Callable | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    timeout: float = 300,
) -> str:
    """Asserts that a SavedModel export serves the in-memory outputs, as TF Serving loads it.

    Exports `model_or_module`, then, in a fresh Python process that imports only
    TensorFlow (TF Text kernels loaded as libraries when the graph needs them),
    loads it through TF Serving's Session-based loader and through
    `tf.saved_model.load`, and runs `serving_default` on the first `n` rows of
    `inputs` for each `n` in `batch_sizes`; every answer must equal the
    in-memory outputs.

    Args:
        model_or_module: a Keras model, or a `tf.Module` / trackable.
        inputs: array or dict of arrays (keyed by the signature's input names),
            with at least `max(batch_sizes)` rows.
        tmp_path: a directory (pytest's `tmp_path`).
        batch_sizes: the batch sizes to check; two by default.
        method: `"export"` (Keras `model.export`) or `"serving_root"`
            (`tf.saved_model.save` of `keras_rec.serving.serving_root`, the
            exporter's own path). Non-Keras objects are saved as they are.
        signatures: `{"serving_default": function}` for non-Keras objects and
            `method="serving_root"`; default: the Keras serving function.
        expected_fn: computes the in-memory outputs of a batch. Defaults to
            `model(batch, training=False)` for Keras models, `obj(batch)` else.
        atol, rtol: float tolerances of the comparison.
        timeout: seconds allowed to the fresh process.

    Returns:
        The path of the SavedModel.
    """
    import keras
    import tensorflow as tf

    from keras_rec.serving import (
        LOADERS,
        answer_in_fresh_process,
        serving_root,
        serving_signature_specs,
    )
    from keras_rec.serving.fresh_process import tf_text_op_libraries
    from keras_rec.serving.serving_signature import concrete_signatures, keras_serving_function

    tmp_path = os.fspath(tmp_path)
    export_dir = os.path.join(tmp_path, "saved_model")
    is_keras = isinstance(model_or_module, keras.Model)
    if method not in ("export", "serving_root"):
        raise ValueError(
            f"`method` must be 'export' or 'serving_root'. Received: method={method!r}"
        )
    if is_keras and method == "export":
        model_or_module.export(export_dir, format="tf_saved_model", verbose=False)
    elif is_keras:
        signatures = signatures or {"serving_default": keras_serving_function(model_or_module)}
        concrete = concrete_signatures(signatures)
        root = serving_root(model_or_module, concrete.values())
        tf.saved_model.save(root, export_dir, signatures=concrete)
    else:
        tf.saved_model.save(model_or_module, export_dir, signatures=signatures)

    if expected_fn is None:
        if is_keras:
            expected_fn = lambda batch: model_or_module(batch, training=False)  # noqa: E731
        else:
            expected_fn = model_or_module
    input_names = list(serving_signature_specs(export_dir, "serving_default"))
    requests, expected = {}, {}
    for n in batch_sizes:
        batch = _take_rows(inputs, n)
        outputs = _to_numpy(expected_fn(_to_tensors(batch)))
        if not isinstance(batch, dict):
            assert len(input_names) == 1, f"serving_default takes {input_names}: pass a dict"
            batch = {input_names[0]: batch}
        requests[f"batch {n}"] = ("serving_default", {k: _storable(v) for k, v in batch.items()})
        if isinstance(outputs, (list, tuple)):
            outputs = {f"output_{i}": x for i, x in enumerate(outputs)}
        expected[f"batch {n}"] = outputs
    served = answer_in_fresh_process(
        export_dir, requests, op_libraries=tf_text_op_libraries(), timeout=timeout
    )
    assert not served["leaked_modules"], served["leaked_modules"]
    for loader in LOADERS:
        assert not served["errors"][loader], f"{loader} loader: {served['errors'][loader]}"
        for request_id, want in expected.items():
            got = served["answers"][loader][request_id]
            if not isinstance(want, dict):
                assert len(got) == 1, f"{loader}: {sorted(got)} outputs for one expected"
                want = {next(iter(got)): want}
            _assert_outputs_close(got, want, atol, rtol, f"{loader} loader, {request_id}")
    return export_dir


def _take_rows(inputs, n):
    if isinstance(inputs, dict):
        return {k: _take_rows(v, n) for k, v in inputs.items()}
    array = np.asarray(inputs)
    if array.shape[0] < n:
        raise ValueError(f"`inputs` has {array.shape[0]} rows; batch size {n} needs more.")
    return array[:n]


def _to_tensors(batch):
    import tensorflow as tf

    if isinstance(batch, dict):
        return {k: tf.constant(v) for k, v in batch.items()}
    return tf.constant(batch)


def _storable(array):
    array = np.asarray(array)
    if array.dtype == object:  # Python str / bytes: np.save would need pickle.
        flat = [x.encode() if isinstance(x, str) else x for x in array.ravel()]
        array = np.array(flat, dtype=bytes).reshape(array.shape)
    return array


def _to_numpy(outputs):
    if isinstance(outputs, dict):
        return {k: _to_numpy(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return [_to_numpy(v) for v in outputs]
    array = np.asarray(outputs)
    if array.dtype == object:
        array = array.astype(bytes)
    return array


def _natural_key(key):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _assert_outputs_close(actual, expected, atol, rtol, what):
    if isinstance(expected, dict) or isinstance(actual, dict):
        if not (isinstance(expected, dict) and isinstance(actual, dict)):
            raise AssertionError(f"{what}: one output is a dict, the other is not")
        assert sorted(actual, key=_natural_key) == sorted(expected, key=_natural_key), (
            f"{what}: output keys differ: {sorted(actual)} vs {sorted(expected)}"
        )
        for key in expected:
            _assert_outputs_close(actual[key], expected[key], atol, rtol, f"{what} [{key}]")
        return
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{what}: {len(actual)} outputs vs {len(expected)}"
        )
        for i, (a, e) in enumerate(zip(actual, expected)):
            _assert_outputs_close(a, e, atol, rtol, f"{what} [{i}]")
        return
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} vs expected {expected.shape}"
    )
    if np.issubdtype(expected.dtype, np.number) or expected.dtype == bool:
        np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


RETRIEVAL_METRICS = ("top100_accuracy", "user_recall_at_100", "user_recall_at_10")


def assert_close_retrieval_metrics(summary: dict, reference: dict, tolerance: float) -> None:
    """Asserts two `train-recommender` summaries' retrieval metrics differ by <= `tolerance`."""
    for key in RETRIEVAL_METRICS:
        difference = abs(summary[key] - reference[key])
        assert difference <= tolerance, (
            f"{key}: {summary[key]} vs {reference[key]} (|diff| {difference:.4f} > {tolerance})"
        )


def assert_cosine_close(actual, expected, min_cosine: float) -> float:
    """Asserts that each row of `actual` has cosine >= `min_cosine` with `expected`'s.

    Args:
        actual, expected: arrays of shape `(rows, dim)`, e.g. two encoders' vectors
            of the same texts.
        min_cosine: float. The smallest cosine allowed.

    Returns:
        The smallest row cosine.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shapes {actual.shape} vs {expected.shape}"
    norms = np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1)
    cosine = np.sum(actual * expected, axis=1) / np.maximum(norms, 1e-12)
    worst = int(np.argmin(cosine))
    assert cosine[worst] >= min_cosine, (
        f"row {worst}: cosine {cosine[worst]:.7f} < {min_cosine} "
        f"({int(np.sum(cosine < min_cosine))} of {len(cosine)} rows below)"
    )
    return float(cosine[worst])


def assert_no_tensorflow_startup_lines(stderr: str) -> None:
    """`stderr` of a `keras-rec` run without --verbose holds no TensorFlow start-up line."""
    from keras_rec.tensorflow_startup import STARTUP_LINES

    shown = [line for line in stderr.splitlines() if STARTUP_LINES.search(line)]
    assert not shown, shown


def assert_old_metric_keys_kept(summary: dict) -> None:
    """Each renamed metric key (`keras_rec.metric_keys.RENAMED_KEYS`) is there under both names."""
    from keras_rec.metric_keys import RENAMED_KEYS

    checked = 0
    for section, renamed in RENAMED_KEYS.items():
        values = summary.get(section) if section else summary
        if not isinstance(values, dict):
            continue
        for new, old in renamed.items():
            if new in values:
                assert values[old] == values[new], (section, new, old)
                checked += 1
    assert checked, "no renamed metric key in this summary"
