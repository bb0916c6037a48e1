"""The re-ranker of the two-stage model: per-candidate features -> a score per candidate."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np


def build_reranker(
    num_features: int,
    hidden_units: Sequence[int] = (64, 32),
    dropout: float = 0.1,
    feature_mean: np.ndarray | None = None,
    feature_variance: np.ndarray | None = None,
    name: str = "reranker",
) -> keras.Model:
    """Scores each of a user's candidates from its features; trained listwise.

    Input `"features"` float32 `[B, C, num_features]` (C candidates per user,
    see `TwoStageRecommender.candidate_features`); each candidate's features
    are standardized (`feature_mean`, `feature_variance`, e.g. of the
    training candidates) and passed through the same `Dense(relu)` blocks
    to one logit. Output: logits `[B, C]`; train with a softmax
    cross-entropy over the candidates (labels: the user's positives among
    them, normalized to sum to 1).

    Args:
        num_features: int.
        hidden_units: ints. Hidden layers.
        dropout: float.
        feature_mean, feature_variance: float `[num_features]` or None
            (identity standardization).
        name: str.
    """
    if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
        raise ValueError(f"`num_features` must be a positive integer. Received: {num_features!r}")
    mean = np.zeros(num_features) if feature_mean is None else np.asarray(feature_mean)
    variance = np.ones(num_features) if feature_variance is None else np.asarray(feature_variance)
    for what, values in (("feature_mean", mean), ("feature_variance", variance)):
        if values.shape != (num_features,):
            raise ValueError(
                f"`{what}` must have shape ({num_features},). Received: {values.shape}"
            )
    # === Layers ===
    features = keras.Input(shape=(None, num_features), name="features")
    x = keras.layers.Normalization(
        mean=mean.astype("float32"),
        variance=np.maximum(variance, 1e-6).astype("float32"),
        name="standardize",
    )(features)
    for index, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{index}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{index}")(x)
    logits = keras.layers.Dense(1, name="logit")(x)
    # === Functional Model ===
    logits = keras.layers.Reshape((-1,), name="logits")(logits)
    return keras.Model(features, logits, name=name)
