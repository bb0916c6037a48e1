"""`WarmupLinearDecay`: the fine-tuning learning-rate schedule of BERT."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_rec")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak_learning_rate`, then linear decay to 0.

    Args:
        peak_learning_rate: float. Rate reached after `warmup_steps`.
        warmup_steps: int. Steps of the warmup (>= 0).
        total_steps: int. Step at which the rate reaches 0 (> warmup_steps).

    Example:

    >>> schedule = keras_rec.classifier.WarmupLinearDecay(1e-3, 100, 1000)
    >>> float(schedule(50)), float(schedule(100)), float(schedule(550))
    (0.0005, 0.001, 0.0005)
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        if peak_learning_rate <= 0:
            raise ValueError(
                "`peak_learning_rate` must be positive. "
                f"Received: peak_learning_rate={peak_learning_rate}"
            )
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(
                "Need 0 <= `warmup_steps` < `total_steps`. "
                f"Received: warmup_steps={warmup_steps}, total_steps={total_steps}"
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step) / (self.total_steps - self.warmup_steps)
        factor = ops.where(step < self.warmup_steps, warmup, ops.maximum(decay, 0.0))
        return self.peak_learning_rate * factor

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }
