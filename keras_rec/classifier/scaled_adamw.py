"""`ScaledAdamW`: AdamW with a smaller learning rate for some weights (the encoder)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from keras_rec.classifier.warmup_linear_decay import WarmupLinearDecay

# Layer norms and biases are not decayed (as in BERT's and sentence-transformers'
# fine-tuning).
NO_DECAY = ("bias", "layer_norm", "LayerNorm", "gamma", "beta")


@keras.saving.register_keras_serializable(package="keras_rec")
class ScaledAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate (and decoupled weight decay) is scaled per weight.

    Fine-tuning a pretrained encoder under a freshly initialized head wants a
    small rate for the encoder (e.g. 2e-5) and a larger one for the head
    (e.g. 1e-3). Weights whose Keras path starts with a key of
    `learning_rate_multipliers` get `learning_rate * multiplier`; the weight
    decay of each weight follows its own rate, as in AdamW.

    Args:
        learning_rate_multipliers: dict of weight path prefix -> float, e.g.
            `{"encoder/": 0.02}`. The first matching prefix wins; others get 1.
        **kwargs: `keras.optimizers.AdamW` arguments (`learning_rate`,
            `weight_decay`, `global_clipnorm`, ...).

    Example:

    >>> optimizer = keras_rec.classifier.ScaledAdamW(
    ...     learning_rate=1e-3, weight_decay=0.01, learning_rate_multipliers={"encoder/": 0.02}
    ... )
    """

    def __init__(self, learning_rate_multipliers: Mapping[str, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        multipliers = dict(learning_rate_multipliers or {})
        for prefix, value in multipliers.items():
            if not isinstance(prefix, str) or not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(
                    "`learning_rate_multipliers` must map weight path prefixes (str) to "
                    f"positive floats. Received: {multipliers!r}"
                )
        self.learning_rate_multipliers = {key: float(value) for key, value in multipliers.items()}
        self._multipliers: list[float] = []

    def build(self, var_list):
        super().build(var_list)
        self._multipliers = [self.multiplier_for(variable.path) for variable in var_list]

    def multiplier_for(self, path: str) -> float:
        """The learning-rate multiplier of the weight at `path`."""
        for prefix, value in self.learning_rate_multipliers.items():
            if path.startswith(prefix):
                return value
        return 1.0

    def _apply_weight_decay(self, variables):
        # Applied per weight in `update_step`, at that weight's own rate.
        return

    def update_step(self, gradient, variable, learning_rate):
        scale = self._multipliers[self._get_variable_index(variable)]
        learning_rate = ops.cast(learning_rate, variable.dtype) * scale
        if self.weight_decay and self._use_weight_decay(variable):
            decay = ops.cast(self.weight_decay, variable.dtype)
            variable.assign(variable - variable * decay * learning_rate)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["learning_rate_multipliers"] = dict(self.learning_rate_multipliers)
        return config


def fine_tuning_optimizer(
    total_steps: int,
    head_learning_rate: float = 1e-3,
    encoder_learning_rate: float = 2e-5,
    warmup_fraction: float = 0.1,
    weight_decay: float = 0.01,
    global_clipnorm: float = 1.0,
    encoder_prefix: str = "encoder/",
) -> ScaledAdamW:
    """The optimizer for fine-tuning an encoder under a new head.

    AdamW with weight decay (not on biases and layer norms), linear warmup
    over `warmup_fraction` of `total_steps` then linear decay, gradient
    clipping by global norm, and `encoder_learning_rate` for the weights
    under `encoder_prefix` (the `HubLayer` named "encoder").

    Args:
        total_steps: int. Optimizer steps of the whole training.
        head_learning_rate: float. Peak rate of the head.
        encoder_learning_rate: float. Peak rate of the encoder.
        warmup_fraction: float. Share of steps spent warming up.
        weight_decay: float.
        global_clipnorm: float.
        encoder_prefix: str. Path prefix of the encoder's weights.

    Returns:
        A `ScaledAdamW`.
    """
    if total_steps < 1:
        raise ValueError(f"`total_steps` must be >= 1. Received: total_steps={total_steps}")
    warmup_steps = min(int(warmup_fraction * total_steps), total_steps - 1)
    optimizer = ScaledAdamW(
        learning_rate=WarmupLinearDecay(head_learning_rate, warmup_steps, total_steps),
        weight_decay=weight_decay,
        global_clipnorm=global_clipnorm,
        learning_rate_multipliers={encoder_prefix: encoder_learning_rate / head_learning_rate},
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return optimizer
