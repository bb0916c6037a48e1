"""`HubLayer`: a TF Hub module (a TF2 SavedModel) as a Keras 3 layer."""

from __future__ import annotations

import inspect
import json
import os
import re
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_rec.hub.handle import resolve_handle
from keras_rec.object_identity import unique_by_identity

# `tf.saved_model.LoadOptions` arguments, in the order of its constructor.
_LOAD_OPTION_NAMES = (
    "allow_partial_checkpoint",
    "experimental_io_device",
    "experimental_skip_checkpoint",
    "experimental_variable_policy",
    "experimental_load_function_aliases",
)


@keras.saving.register_keras_serializable(package="keras_rec")
class HubLayer(keras.layers.Layer):
    """Runs a TF Hub module (TF2 SavedModel) inside a Keras 3 model.

    The Keras 3 counterpart of `hub.KerasLayer` (a Keras 2 layer, which fails
    on Keras 3 symbolic tensors). The module's variables become the layer's
    weights, usable by every Keras optimizer and saved with the model.

    - Frozen (`trainable=False`, the default): the layer has no trainable
      weights and the module always runs in inference mode (`training=False`
      is passed to a module whose `__call__` accepts `training`).
    - Trainable: the module's trainable variables are trainable weights, the
      module gets the layer's `training` flag (True in `fit`, False in
      `predict`) and its `regularization_losses` are added to the layer losses.

    The module's dtypes were fixed when it was exported, so the layer's `dtype`
    defaults to `"float32"` whatever the global mixed-precision policy.

    Args:
        handle: str or object. A URL (`https://tfhub.dev/...`,
            `https://www.kaggle.com/models/...`), a Kaggle handle
            (`owner/model/framework/variation/version`) or a local SavedModel
            directory, resolved by `keras_rec.hub.resolve_handle` (cached under
            `$TFHUB_CACHE_DIR`); or an already loaded object (a
            `tf.saved_model.load` result or a `tf.Module` with `__call__`),
            which works but can't be saved in a config (`get_config` raises).
        trainable: bool. Whether the module's trainable variables are trained.
            Defaults to `False`.
        arguments: dict or None. Extra keyword arguments passed to the module
            on every call; must be JSON-serializable to save the layer config.
        signature: str or None. Calls `module.signatures[signature]` instead of
            the module's `__call__`. A signature takes keyword tensors: pass a
            dict of inputs (or a single tensor when it has one input). It has no
            `training` argument and runs as it was exported.
        signature_outputs_as_dict: bool or None. With `signature`, return the
            signature's whole dict of outputs.
        output_key: str or None. Return only this entry of a dict of outputs.
            With a `signature` that has one output, neither this nor
            `signature_outputs_as_dict` is needed.
        output_shape: shape or nest of shapes, or None. Output shapes without
            the batch dimension, for modules whose outputs have unknown shapes
            (e.g. `[128]`, or `{"pooled_output": [128], ...}`).
        load_options: `tf.saved_model.LoadOptions`, dict of its arguments, or
            None. Options used to load a string `handle`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: tensor or dict of tensors, as the module (or signature) expects.
        training: bool. Passed on to the module only when the layer is trainable.

    Returns:
        The module's output: a tensor or a dict of tensors (see `output_key`).

    Example:

    ```python
    text = keras.Input(shape=(), dtype="string")
    encoder_inputs = keras_rec.hub.HubLayer(PREPROCESSOR_URL)(text)
    outputs = keras_rec.hub.HubLayer(ENCODER_URL, trainable=True)(encoder_inputs)
    logits = keras.layers.Dense(2)(outputs["pooled_output"])
    model = keras.Model(text, logits)
    ```
    """

    def __init__(
        self,
        handle: Any,
        trainable: bool = False,
        arguments: dict[str, Any] | None = None,
        signature: str | None = None,
        signature_outputs_as_dict: bool | None = None,
        output_key: str | None = None,
        output_shape: Any = None,
        load_options: tf.saved_model.LoadOptions | dict[str, Any] | None = None,
        **kwargs,
    ):
        if isinstance(handle, os.PathLike):
            handle = os.fspath(handle)
        _validate_arguments(handle, arguments, signature, signature_outputs_as_dict, output_key)
        kwargs.setdefault("dtype", "float32")
        super().__init__(trainable=trainable, **kwargs)
        self.handle = handle
        self.arguments = dict(arguments or {})
        self.signature = signature
        self.signature_outputs_as_dict = signature_outputs_as_dict
        self.output_key = output_key
        self.output_shape = output_shape
        self.load_options = load_options
        self._output_shapes = _to_tensor_shapes(output_shape)

        if isinstance(handle, str):
            self._module = _load_module(handle, _to_load_options(load_options))
        else:
            self._module = handle
        self._function = self._get_function()
        self._has_training_argument = signature is None and _accepts_training(self._function)
        self._regularization_losses = list(
            getattr(self._module, "regularization_losses", None) or []
        )
        if not all(callable(loss) for loss in self._regularization_losses):
            raise ValueError(
                "The module's `regularization_losses` must be callables that "
                "take no argument and return a scalar. Received: "
                f"regularization_losses={self._regularization_losses}"
            )
        self._add_module_weights()
        self.built = True

    @property
    def resolved_object(self):
        """The loaded module (the object `handle` resolved to)."""
        return self._module

    def _get_function(self):
        if self.signature is None:
            if not callable(self._module):
                raise ValueError(
                    "The module is not callable: pass `signature=` to call one "
                    "of its signatures. Available signatures: "
                    f"{sorted(getattr(self._module, 'signatures', {}) or {})}"
                )
            return self._module
        signatures = getattr(self._module, "signatures", None) or {}
        if self.signature not in signatures:
            raise ValueError(
                f"Unknown signature {self.signature!r}. Available signatures: "
                f"{sorted(signatures)}. Received: signature={self.signature!r}"
            )
        function = signatures[self.signature]
        outputs = function.structured_outputs
        if self.output_key is not None and self.output_key not in outputs:
            raise ValueError(
                f"`output_key` must be one of the outputs of signature "
                f"{self.signature!r}: {sorted(outputs)}. "
                f"Received: output_key={self.output_key!r}"
            )
        if self.output_key is None and not self.signature_outputs_as_dict and len(outputs) != 1:
            raise ValueError(
                f"Signature {self.signature!r} has several outputs "
                f"{sorted(outputs)}: pass `output_key=` to pick one or "
                "`signature_outputs_as_dict=True` to get them all."
            )
        return function

    def _add_module_weights(self):
        """Tracks the module's own `tf.Variable`s as the layer's weights.

        Each one is wrapped in a `keras.Variable` that shares it (no copy): the
        module's functions read and train the very same variable. The wrapper's
        name is the variable's TF name made a valid name scope ("dense/kernel:0"
        -> "dense_kernel"), since Keras optimizers name their slots after it.
        """
        trainable, non_trainable = _module_variables(self._module)
        taken = set()
        with keras.name_scope(self.name, caller=self):
            for variables, is_trainable in ((trainable, True), (non_trainable, False)):
                for variable in variables:
                    weight = keras.Variable(
                        initializer=variable,
                        trainable=is_trainable,
                        autocast=False,
                        name=_weight_name(variable.name, taken),
                    )
                    if weight.value is not variable:
                        raise RuntimeError(
                            f"Keras copied the module variable {variable.name!r} "
                            "instead of wrapping it; training would not reach "
                            "the module. This Keras version is not supported."
                        )
                    # Frozen layer: `_track_variable` marks it non-trainable;
                    # `layer.trainable = True` turns it back on.
                    self._track_variable(weight)

    def call(self, inputs, training=None):
        try:
            outputs = self._call_module(inputs, training)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"The module {_describe_handle(self.handle)} does not accept "
                f"these inputs: {_describe_tensors(inputs)}. It was exported for: "
                f"{_accepted_inputs(self._function)}. Original error: {error}"
            ) from error
        if self.trainable:
            for loss in self._regularization_losses:
                self.add_loss(loss())
        if self.output_key is not None:
            if not isinstance(outputs, dict):
                raise ValueError(
                    "`output_key` needs a module that returns a dict. Received "
                    f"output of type {type(outputs).__name__}"
                )
            if self.output_key not in outputs:
                raise ValueError(
                    f"`output_key` must be one of the module outputs "
                    f"{sorted(outputs)}. Received: output_key={self.output_key!r}"
                )
            outputs = outputs[self.output_key]
        elif self.signature is not None and not self.signature_outputs_as_dict:
            (outputs,) = outputs.values()
        if self._output_shapes is not None:
            batch_size = tf.nest.flatten(inputs)[0].shape[:1]
            tf.nest.map_structure(
                lambda x, shape: x.set_shape(batch_size.concatenate(shape)),
                outputs,
                self._output_shapes,
            )
        return outputs

    def _call_module(self, inputs, training):
        kwargs = dict(self.arguments)
        if self.signature is not None:
            return self._function(**kwargs, **self._signature_inputs(inputs))
        if not self._has_training_argument:
            return self._function(inputs, **kwargs)
        if not self.trainable or training is None:
            training = False
        if isinstance(training, (bool, np.bool_)):
            return self._function(inputs, training=bool(training), **kwargs)
        return tf.cond(
            tf.cast(training, tf.bool),
            lambda: self._function(inputs, training=True, **kwargs),
            lambda: self._function(inputs, training=False, **kwargs),
        )

    def _signature_inputs(self, inputs):
        if isinstance(inputs, dict):
            return inputs
        names = sorted(set(self._function.structured_input_signature[1]) - set(self.arguments))
        if len(names) != 1:
            raise ValueError(
                f"Signature {self.signature!r} takes the inputs {names}: pass "
                "them as a dict keyed by these names. Received a single input."
            )
        return {names[0]: inputs}

    @classmethod
    def from_config(cls, config: dict[str, Any], safe_mode: bool | None = None) -> HubLayer:
        """Creates the layer from its config, loading the module its `handle` names.

        Loading a SavedModel runs graph code from the path or URL in the
        config, so, like Keras' own `TFSMLayer`, this is refused while Keras
        deserializes in safe mode (`keras.saving.load_model(path)` by default).

        Args:
            config: dict. The output of `get_config`.
            safe_mode: bool or None. `None` follows the deserialization in
                progress (`keras.saving.load_model(..., safe_mode=...)`,
                `keras.config.enable_unsafe_deserialization()`); called
                outside one, the config is trusted as the caller's own.

        Returns:
            A `HubLayer`.
        """
        if safe_mode is None:
            from keras.src.saving import serialization_lib

            safe_mode = serialization_lib.in_safe_mode()
        if safe_mode:
            raise ValueError(
                f"Requested the deserialization of a `HubLayer`, which loads the TF Hub "
                f"module (a SavedModel) at handle={config.get('handle')!r}. A SavedModel "
                "can hold arbitrary graph code, so this is disallowed in safe mode. If you "
                "trust the file and the module it names, load it with "
                "`keras.saving.load_model(path, safe_mode=False)` or call "
                "`keras.config.enable_unsafe_deserialization()` first."
            )
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        if not isinstance(self.handle, str):
            raise NotImplementedError(
                "A `HubLayer` built from a loaded object can't be serialized: "
                "its config needs a string `handle` (a URL, a Kaggle handle or a "
                "SavedModel path) to load the module again. Received handle of "
                f"type {type(self.handle).__name__}. Save the module with "
                "`tf.saved_model.save` and pass its path instead."
            )
        try:
            arguments = json.loads(json.dumps(dict(self.arguments)))
        except TypeError as error:
            raise ValueError(
                "`arguments` must be JSON-serializable to save the layer config. "
                f"Received: arguments={dict(self.arguments)!r} ({error})"
            ) from error
        config = super().get_config()
        config.update(
            {
                "handle": self.handle,
                "arguments": arguments,
                "signature": self.signature,
                "signature_outputs_as_dict": self.signature_outputs_as_dict,
                "output_key": self.output_key,
                "output_shape": _shapes_to_config(self._output_shapes),
                "load_options": _load_options_to_config(self.load_options),
            }
        )
        return config


def _validate_arguments(handle, arguments, signature, outputs_as_dict, output_key):
    if isinstance(handle, str):
        if not handle.strip():
            raise ValueError(f"`handle` must not be empty. Received: handle={handle!r}")
    elif not (callable(handle) or hasattr(handle, "signatures")):
        raise ValueError(
            "`handle` must be a string (URL, Kaggle handle or local path) or a "
            "loaded module that is callable or has `signatures`. Received: "
            f"handle={handle!r}"
        )
    if arguments is not None and not isinstance(arguments, dict):
        raise ValueError(f"`arguments` must be a dict or None. Received: arguments={arguments!r}")
    if signature is not None and not isinstance(signature, str):
        raise ValueError(f"`signature` must be a string or None. Received: signature={signature!r}")
    if outputs_as_dict and signature is None:
        raise ValueError(
            "`signature_outputs_as_dict=True` needs a `signature`. Received: "
            f"signature_outputs_as_dict={outputs_as_dict}, signature=None"
        )
    if outputs_as_dict and output_key is not None:
        raise ValueError(
            "Pass either `output_key` or `signature_outputs_as_dict=True`, not "
            f"both. Received: output_key={output_key!r}, "
            f"signature_outputs_as_dict={outputs_as_dict}"
        )


def _load_module(handle: str, load_options):
    path = resolve_handle(handle)
    if tf.io.gfile.exists(os.path.join(path, "tfhub_module.pb")):
        raise ValueError(
            f"{handle!r} is in the TF1 Hub format, which `HubLayer` does not "
            "support: use the TF2 SavedModel version of the model."
        )
    register_tf_text_ops()
    return tf.saved_model.load(path, options=load_options)


def register_tf_text_ops():
    """Registers TF Text's ops, which text preprocessors use, when it is installed.

    `tf.saved_model.load` fails on an unregistered op ("Op type not registered
    'RegexSplitWithOffsets'"); `hub.KerasLayer` leaves `import tensorflow_text`
    to the user, `HubLayer` does it.
    """
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass


def _module_variables(module):
    """Returns the module's (trainable, non-trainable) `tf.Variable`s.

    Follows the TF Hub convention: `module.trainable_variables` are trainable,
    the rest of `module.variables` are not. A module without these attributes
    (e.g. a plain `tf.Module` after `tf.saved_model.load`) gets every variable
    of its object graph, trainable as the variable says.
    """
    if hasattr(module, "variables"):
        variables = list(module.variables)
        trainable = list(getattr(module, "trainable_variables", None) or [])
    else:
        view = tf.train.TrackableView(module)
        variables = [v for v in view.descendants() if isinstance(v, tf.Variable)]
        trainable = [v for v in variables if v.trainable]
    trainable = unique_by_identity(trainable)
    trainable_ids = {id(v) for v in trainable}
    return trainable, unique_by_identity(v for v in variables if id(v) not in trainable_ids)


def _weight_name(tf_name: str, taken: set[str]) -> str:
    """Turns a TF variable name into a unique, valid Keras / TF scope name.

    TF names end in ":0" and may contain "/"; optimizers build their slot
    variables' names from the weight path, and TF refuses ":" in a name scope.
    """
    name = re.sub(r":\d+$", "", tf_name)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
    if not re.match(r"[A-Za-z0-9]", name):
        name = f"variable_{name}" if name else "variable"
    unique, index = name, 1
    while unique in taken:
        unique, index = f"{name}_{index}", index + 1
    taken.add(unique)
    return unique


def _accepts_training(function) -> bool:
    """Whether `function` (or its `__call__`) has an explicit `training` argument.

    A loaded SavedModel object shows `(*args, **kwargs)`; its restored
    `__call__` shows the real arguments.
    """
    for candidate in (function, getattr(function, "__call__", None)):
        try:
            if "training" in inspect.signature(candidate).parameters:
                return True
        except (TypeError, ValueError):
            continue
    return False


def _describe_handle(handle) -> str:
    if isinstance(handle, str):
        return repr(handle)
    return f"of type {type(handle).__name__}"


def _describe_tensors(inputs) -> str:
    def describe(x):
        if not hasattr(x, "shape"):
            return repr(x)
        return f"{getattr(x.dtype, 'name', x.dtype)}{list(x.shape)}"

    return str(tf.nest.map_structure(describe, inputs))


def _accepted_inputs(function) -> str:
    """The input specs a (restored) function was traced for, for error messages."""
    for candidate in (function, getattr(function, "__call__", None)):
        if hasattr(candidate, "structured_input_signature"):
            return str(candidate.structured_input_signature)
        concrete = getattr(candidate, "concrete_functions", None)
        if concrete:
            return "; ".join(str(f.structured_input_signature) for f in concrete)
    return "(unknown)"


def _to_tensor_shapes(output_shape):
    """Converts a nest of shapes to a nest of `tf.TensorShape` (leaves for tf.nest)."""
    if output_shape is None:
        return None
    if isinstance(output_shape, tf.TensorShape):
        return output_shape
    if isinstance(output_shape, dict):
        return {key: _to_tensor_shapes(value) for key, value in output_shape.items()}
    if isinstance(output_shape, (list, tuple)):
        if all(d is None or isinstance(d, (int, np.integer)) for d in output_shape):
            return tf.TensorShape(output_shape)
        return [_to_tensor_shapes(value) for value in output_shape]
    raise ValueError(
        "`output_shape` must be a shape (list of ints or None, without the batch "
        f"dimension) or a nest of shapes. Received: output_shape={output_shape!r}"
    )


def _shapes_to_config(shapes):
    if shapes is None:
        return None
    if isinstance(shapes, tf.TensorShape):
        return shapes.as_list()
    if isinstance(shapes, dict):
        return {key: _shapes_to_config(value) for key, value in shapes.items()}
    return [_shapes_to_config(value) for value in shapes]


def _to_load_options(load_options):
    if load_options is None or isinstance(load_options, tf.saved_model.LoadOptions):
        return load_options
    if isinstance(load_options, dict):
        return tf.saved_model.LoadOptions(**load_options)
    raise ValueError(
        "`load_options` must be a `tf.saved_model.LoadOptions`, a dict of its "
        f"arguments or None. Received: load_options={load_options!r}"
    )


def _load_options_to_config(load_options):
    if load_options is None or isinstance(load_options, dict):
        return load_options
    config = {}
    for name in _LOAD_OPTION_NAMES:
        value = getattr(load_options, name, None)
        config[name] = getattr(value, "value", value)  # Enum -> its string.
    return config
