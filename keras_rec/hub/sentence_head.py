"""`SentenceHead`: a sentence-transformer's pooling, Dense and Normalize modules in TF."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from keras_rec.hub import transformer_blocks as blocks

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
SUPPORTED_MODULES = ("Pooling", "Dense", "Normalize")

_DENSE_ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "Identity": tf.identity,
    "Tanh": tf.tanh,
    "ReLU": tf.nn.relu,
    "Sigmoid": tf.sigmoid,
    "GELU": lambda x: tf.nn.gelu(x, approximate=False),
}


class SentenceHead(tf.Module):
    """Turns packed token embeddings into the sentence-transformer's embedding.

    Replays the modules that follow the `Transformer` in a
    `SentenceTransformer`, in order:

    - `Pooling` with any of the modes `"cls"`, `"max"`, `"mean"`,
      `"mean_sqrt_len_tokens"`, `"weightedmean"`, `"lasttoken"` (several
      modes are concatenated in the module's order), over real tokens only.
      Rows without any token pool to zeros (`"max"` included, where
      sentence-transformers gives `-inf`).
    - `Dense` (kernel, optional bias, activation Identity/Tanh/ReLU/Sigmoid/
      GELU, optional residual).
    - `Normalize` (L2, `x / max(||x||, 1e-12)`).

    Any other module raises a `ValueError` naming it.

    Args:
        modules: list of sentence-transformers modules (those after the
            `Transformer`).
        name: str. Module name.

    Call arguments:
        outputs: `keras_rec.hub.transformer_blocks.EncoderOutputs` of the encoder.

    Returns:
        The `[B, D]` float32 sentence embedding.
    """

    def __init__(self, modules: list[Any], name: str = "sentence_head"):
        super().__init__(name=name)
        self.steps = []  # list of ("pool", modes) / ("dense", index) / ("normalize", None)
        self.dense_layers = []
        pooled = False
        for position, module in enumerate(modules, start=1):
            kind = type(module).__name__
            if kind == "Pooling":
                modes = module.pooling_mode
                modes = (modes,) if isinstance(modes, str) else tuple(modes)
                unknown = [mode for mode in modes if mode not in POOLING_MODES]
                if unknown:
                    raise ValueError(
                        f"Pooling modes must be among {POOLING_MODES}. "
                        f"Received: pooling_mode={modes}"
                    )
                self.steps.append(("pool", modes))
                pooled = True
            elif kind == "Dense" and pooled:
                self.steps.append(("dense", len(self.dense_layers)))
                self.dense_layers.append(_DenseStep(module, f"head/dense_{len(self.dense_layers)}"))
            elif kind == "Normalize" and pooled:
                self.steps.append(("normalize", None))
            else:
                problem = (
                    "comes before any Pooling module"
                    if kind in SUPPORTED_MODULES
                    else "is not supported"
                )
                raise ValueError(
                    f"Sentence-transformers module {kind} (position {position} after the "
                    f"Transformer) {problem}. Supported after the Transformer: "
                    f"{', '.join(SUPPORTED_MODULES)}, with Pooling first. "
                    f"Received: modules={[type(m).__name__ for m in modules]}"
                )
            if kind in ("Dense", "Normalize"):
                names = (module.module_input_name, module.module_output_name)
                if names != ("sentence_embedding", "sentence_embedding"):
                    raise ValueError(
                        f"{kind} modules must map 'sentence_embedding' to itself. Received: "
                        f"module_input_name={names[0]!r}, module_output_name={names[1]!r}"
                    )
        if not pooled:
            raise ValueError(
                "The sentence-transformer must have a Pooling module after its "
                f"Transformer. Received: modules={[type(m).__name__ for m in modules]}"
            )

    def __call__(self, outputs: blocks.EncoderOutputs) -> tf.Tensor:
        x = None
        for kind, arg in self.steps:
            if kind == "pool":
                x = tf.concat([_pool(outputs, mode) for mode in arg], axis=-1)
            elif kind == "dense":
                x = self.dense_layers[arg](x)
            else:
                x = x / tf.maximum(tf.norm(x, axis=-1, keepdims=True), 1e-12)
        return x


class _DenseStep(tf.Module):
    """A sentence-transformers `Dense` module."""

    def __init__(self, module: Any, name: str):
        super().__init__(name=name.replace("/", "_"))
        activation = type(module.activation_function).__name__
        if activation not in _DENSE_ACTIVATIONS:
            raise ValueError(
                f"Dense activation must be one of {sorted(_DENSE_ACTIVATIONS)}. "
                f"Received: activation_function={activation}"
            )
        self.activation = _DENSE_ACTIVATIONS[activation]
        linear = module.linear
        self.kernel = blocks.make_variable(_numpy(linear.weight).T, f"{name}/kernel")
        self.bias = (
            blocks.make_variable(_numpy(linear.bias), f"{name}/bias")
            if linear.bias is not None
            else None
        )
        self.use_residual = bool(getattr(module, "use_residual", False))
        self.residual_kernel = None
        if self.use_residual and hasattr(module, "residual"):
            self.residual_kernel = blocks.make_variable(
                _numpy(module.residual.weight).T, f"{name}/residual_kernel"
            )

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        y = tf.matmul(x, self.kernel)
        if self.bias is not None:
            y = tf.nn.bias_add(y, self.bias)
        y = self.activation(y)
        if self.use_residual:
            y = y + (tf.matmul(x, self.residual_kernel) if self.residual_kernel is not None else x)
        return y


def _pool(outputs: blocks.EncoderOutputs, mode: str) -> tf.Tensor:
    """One pooling mode over the real tokens of each row, `[B, H]`."""
    packed = outputs.packed
    x = outputs.layer_outputs[-1]
    mask = packed.token_mask
    counts = tf.math.unsorted_segment_sum(mask, packed.rows, packed.batch_size)
    if mode in ("mean", "mean_sqrt_len_tokens"):
        total = tf.math.unsorted_segment_sum(
            x * tf.expand_dims(mask, 1), packed.rows, packed.batch_size
        )
        denominator = tf.maximum(counts, 1e-9)
        if mode == "mean_sqrt_len_tokens":
            denominator = tf.sqrt(denominator)
        return total / tf.expand_dims(denominator, 1)
    if mode == "weightedmean":
        # Weights 1, 2, ... from the first real token (right padding: position + 1).
        weights = (tf.cast(packed.positions, tf.float32) + 1.0) * mask
        total = tf.math.unsorted_segment_sum(
            x * tf.expand_dims(weights, 1), packed.rows, packed.batch_size
        )
        weight_sums = tf.math.unsorted_segment_sum(weights, packed.rows, packed.batch_size)
        return total / tf.expand_dims(tf.maximum(weight_sums, 1e-9), 1)
    if mode == "max":
        lowest = np.finfo(np.float32).min
        masked = tf.where(tf.expand_dims(mask, 1) > 0, x, lowest)
        maxima = tf.math.unsorted_segment_max(masked, packed.rows, packed.batch_size)
        return tf.where(tf.expand_dims(counts, 1) > 0, maxima, 0.0)
    # "cls" is the first real token, "lasttoken" the last one.
    if mode == "cls":
        positions = tf.where(mask > 0, packed.positions, packed.seq_length)
        chosen = tf.math.unsorted_segment_min(positions, packed.rows, packed.batch_size)
    else:
        positions = tf.where(mask > 0, packed.positions, -1)
        chosen = tf.math.unsorted_segment_max(positions, packed.rows, packed.batch_size)
    has_tokens = counts > 0
    chosen = tf.where(has_tokens, chosen, 0)
    flat = tf.range(packed.batch_size) * packed.seq_length + chosen
    vectors = tf.gather(x, tf.gather(packed.padded_to_packed, flat))
    return tf.where(tf.expand_dims(has_tokens, 1), vectors, 0.0)


def _numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()
