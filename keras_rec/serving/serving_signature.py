"""The `serving_default` signature of an export, and its example inputs.

A signature has named inputs and named outputs: that is what TF Serving's
REST and gRPC clients see. For a Keras model the inputs are its
`keras.Input`s (named by their `name`) and the outputs its output names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

SERVING_DEFAULT = "serving_default"


def keras_serving_function(model: Any) -> tf.types.experimental.GenericFunction:
    """A `tf.function` over `model`'s named inputs returning its named outputs.

    Args:
        model: a functional Keras model. Each input's name becomes a
            signature input (batch dimension left open); each of
            `model.output_names` a signature output.

    Returns:
        A `tf.function` with an `input_signature`, calling the model with
        `training=False`.
    """
    inputs = list(model.inputs)
    specs = []
    for tensor in inputs:
        name = tensor.name.split(":")[0]
        specs.append(tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype, name=name))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"The model's inputs need distinct names. Received: {names}")
    output_names = list(model.output_names)

    @tf.function(input_signature=specs)
    def serve(*tensors):
        outputs = model(tensors[0] if len(tensors) == 1 else list(tensors), training=False)
        if isinstance(outputs, Mapping):
            return dict(outputs)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return dict(zip(output_names, outputs))

    return serve


def concrete_signatures(
    signatures: Mapping[str, Any],
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """Each signature as a `ConcreteFunction` with named tensor inputs and dict outputs."""
    if SERVING_DEFAULT not in signatures:
        raise ValueError(
            f"`signatures` must include {SERVING_DEFAULT!r}. Received keys: {sorted(signatures)}"
        )
    concrete = {}
    for key, function in signatures.items():
        if isinstance(function, tf.types.experimental.ConcreteFunction):
            concrete[key] = function
        elif getattr(function, "input_signature", None) is not None:
            concrete[key] = function.get_concrete_function()
        else:
            raise ValueError(
                f"Signature {key!r} must be a `tf.function` with an `input_signature` "
                "(named `tf.TensorSpec`s) or a concrete function. "
                f"Received: {function!r}"
            )
        if not isinstance(concrete[key].structured_outputs, Mapping):
            raise ValueError(
                f"Signature {key!r} must return a dict of named tensors (TF Serving's "
                f"outputs). Received: {type(concrete[key].structured_outputs).__name__}"
            )
    return concrete


def input_specs(function: tf.types.experimental.ConcreteFunction) -> dict[str, tf.TensorSpec]:
    """The named input `TensorSpec`s of a signature function, in call order."""
    specs = {}
    for spec in tf.nest.flatten(function.structured_input_signature):
        if not isinstance(spec, tf.TensorSpec) or not spec.name:
            raise ValueError(
                "Every input of a serving signature needs a name "
                f"(`tf.TensorSpec(..., name=...)`). Received: {spec!r}"
            )
        specs[spec.name] = spec
    return specs


def normalize_examples(examples: Any, specs: Mapping[str, tf.TensorSpec]) -> dict[str, np.ndarray]:
    """Example rows as `{input name: numpy array}` matching `specs`.

    Args:
        examples: a mapping from input name to rows (list or array), or, for
            a single-input signature, the rows themselves (e.g. a list of
            strings for a `text` input).
        specs: the signature's input specs.

    Returns:
        A dict of numpy arrays with the same number of rows (>= 1); strings
        as object arrays of `bytes`.
    """
    if not isinstance(examples, Mapping):
        if len(specs) != 1:
            raise ValueError(
                f"`examples` must be a dict keyed by the input names {list(specs)} "
                f"for a signature with {len(specs)} inputs. Received: {type(examples).__name__}"
            )
        examples = {next(iter(specs)): examples}
    unknown, missing = sorted(set(examples) - set(specs)), [n for n in specs if n not in examples]
    if unknown or missing:
        raise ValueError(
            f"`examples` must have exactly the signature's inputs {list(specs)}. "
            f"Missing: {missing}; unknown: {unknown}"
        )
    arrays = {}
    for name, spec in specs.items():
        array = _to_array(examples[name], spec)
        if not spec.shape.is_compatible_with(array.shape):
            raise ValueError(
                f"`examples[{name!r}]` has shape {array.shape}; the signature takes {spec.shape}"
            )
        arrays[name] = array
    rows = {name: len(array) for name, array in arrays.items()}
    if min(rows.values()) < 1 or len(set(rows.values())) != 1:
        raise ValueError(f"`examples` need the same number of rows (>= 1) per input: {rows}")
    return arrays


def call_signature(
    function: tf.types.experimental.ConcreteFunction, inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Calls a signature function with numpy inputs; returns numpy outputs."""
    specs = input_specs(function)
    tensors = {name: tf.constant(inputs[name], dtype=spec.dtype) for name, spec in specs.items()}
    outputs = function(**tensors)
    return {name: np.asarray(value) for name, value in outputs.items()}


def take_rows(arrays: Mapping[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """The first `count` rows of each array."""
    return {name: array[:count] for name, array in arrays.items()}


def _to_array(values: Any, spec: tf.TensorSpec) -> np.ndarray:
    if spec.dtype == tf.string:

        def encode(value):
            return value.encode("utf-8") if isinstance(value, str) else bytes(value)

        flat = np.asarray(values, dtype=object)
        return np.vectorize(encode, otypes=[object])(flat) if flat.size else flat
    if isinstance(values, Sequence) and not values:
        return np.zeros([0, *spec.shape[1:]], spec.dtype.as_numpy_dtype)
    return np.asarray(values, dtype=spec.dtype.as_numpy_dtype)
