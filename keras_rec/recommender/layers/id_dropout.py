"""`IdDropout`: maps out-of-range ids to 0 ("unknown"), and drops ids at random in training."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_rec")
class IdDropout(keras.layers.Layer):
    """Sets each id to 0 ("unknown") with probability `rate`, in training only.

    A tower that sees an id for every training example learns to lean on
    it, and an item or user new at serving time (id 0) then gets a poor
    vector. Dropping ids makes the tower also learn from text alone, which
    is what cold-start items have. Ids outside `[0, num_ids)` (new users or
    items at serving) always become 0, so they are scored from their text
    instead of failing an embedding lookup.

    Args:
        rate: float in [0, 1). Probability of dropping an id in training.
        num_ids: int or None. Size of the id vocabulary.
        seed: int or None.
    """

    def __init__(self, rate: float, num_ids: int | None = None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.num_ids = num_ids
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids, training=False):
        if self.num_ids is not None:
            in_range = ops.logical_and(ids >= 0, ids < self.num_ids)
            ids = ops.where(in_range, ids, ops.zeros_like(ids))
        if not training or self.rate == 0.0:
            return ids
        keep = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) >= self.rate
        return ops.where(keep, ids, ops.zeros_like(ids))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"rate": self.rate, "num_ids": self.num_ids, "seed": self.seed})
        return config
