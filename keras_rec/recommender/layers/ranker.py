"""The ranker: (user, item) embeddings -> concatenate -> MLP -> score."""

from __future__ import annotations

from collections.abc import Sequence

import keras

TASKS = ("binary", "rating")


def build_ranker(
    user_dim: int,
    item_dim: int,
    hidden_units: Sequence[int] = (256, 64),
    dropout: float = 0.2,
    task: str = "binary",
    rating_range: tuple[float, float] = (1.0, 5.0),
    name: str = "ranker",
) -> keras.Model:
    """Scores (user, item) pairs, as the seeds' concatenate-MLP ranker does.

    Inputs `"user"` float32 `[B, user_dim]` and `"item"` float32
    `[B, item_dim]` (sentence embeddings of their texts, or tower outputs)
    are concatenated and passed through `Dense(relu)` + `Dropout` blocks.

    Args:
        user_dim, item_dim: int. Input widths.
        hidden_units: ints. Hidden layers.
        dropout: float.
        task: str. `"binary"`: sigmoid probability that the user likes the
            item (train with binary cross-entropy on positives and sampled
            negatives); `"rating"`: a rating regressed into `rating_range`
            (a sigmoid scaled to the range; train with MSE).
        rating_range: (low, high) of the ratings for `task="rating"`.
        name: str.

    Returns:
        A functional model with output `"score"` `[B, 1]`.
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}. Received: task={task!r}")
    low, high = (float(v) for v in rating_range)
    if not low < high:
        raise ValueError(f"`rating_range` must be (low, high). Received: {rating_range!r}")
    # === Layers ===
    user = keras.Input(shape=(user_dim,), name="user")
    item = keras.Input(shape=(item_dim,), name="item")
    x = keras.layers.Concatenate(name="concatenate")([user, item])
    for index, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{index}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    # === Functional Model ===
    probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    if task == "binary":
        score = keras.layers.Identity(name="score")(probability)
    else:
        score = keras.layers.Rescaling(high - low, offset=low, name="score")(probability)
    return keras.Model({"user": user, "item": item}, score, name=name)
