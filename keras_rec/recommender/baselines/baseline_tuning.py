"""Item-item baselines with their hyperparameter chosen on the validation split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_rec.recommender.baselines.item_item_baselines import (
    ease_weights,
    interaction_matrix,
    item_item_scores,
    item_knn_weights,
    text_gram,
)
from keras_rec.recommender.data.recommender_inputs import RecommenderInputs, validation_view
from keras_rec.recommender.evaluation.retrieval_evaluation import evaluate_retrieval

EASE_L2_GRID = (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)
# Weights of the item text similarities in EASE's Gram matrix (0: plain EASE).
TEXT_WEIGHT_GRID = (0.0, 20.0, 80.0)
TEXT_EASE_L2_GRID = (200.0, 400.0, 800.0)
KNN_NEIGHBORS_GRID = (10, 20, 50, 100, 200, 400)
# The figure every hyperparameter is chosen by (the validation NDCG@10).
SELECTION_METRIC = "user_ndcg_at_10"


def training_matrix(inputs: RecommenderInputs):
    """The binary users x items matrix of the training pairs of `inputs`."""
    return interaction_matrix(
        inputs.train_users, inputs.train_items, inputs.num_users, inputs.num_items
    )


def tune_ease(inputs: RecommenderInputs, grid: Sequence[float] = EASE_L2_GRID):
    """`(best l2, {l2: validation metrics})`: EASE fit on training, scored on validation."""
    return _tune(inputs, grid, lambda matrix, l2: ease_weights(matrix, l2))


def tune_text_ease(
    inputs: RecommenderInputs,
    l2_grid: Sequence[float] = TEXT_EASE_L2_GRID,
    weight_grid: Sequence[float] = TEXT_WEIGHT_GRID,
):
    """`((l2, text weight), {(l2, weight): validation metrics})`: EASE with item texts."""
    grams = {weight: text_gram(inputs.item_embeddings, weight) for weight in weight_grid}
    return _tune(
        inputs,
        [(l2, weight) for l2 in l2_grid for weight in weight_grid],
        lambda matrix, value: ease_weights(matrix, value[0], grams[value[1]]),
    )


def tune_item_knn(inputs: RecommenderInputs, grid: Sequence[int] = KNN_NEIGHBORS_GRID):
    """`(best neighbors, {neighbors: validation metrics})` of item-kNN, as `tune_ease`."""
    grid = [k for k in grid if k < inputs.num_items] or [inputs.num_items]
    return _tune(inputs, grid, lambda matrix, k: item_knn_weights(matrix, k))


def _tune(inputs, grid, weights_of):
    if not len(inputs.val_items):
        raise ValueError(
            "Tuning needs validation pairs: build the inputs with `validation_fraction` > 0."
        )
    matrix = training_matrix(inputs)
    view = validation_view(inputs)
    results = {
        value: evaluate_retrieval(item_item_scores(matrix, weights_of(matrix, value)), view)
        for value in grid
    }
    best = max(results, key=lambda value: results[value][SELECTION_METRIC])
    return best, results


def validation_choice(results: dict) -> dict:
    """`{value: validation NDCG@10}` for a report."""
    return {str(value): float(np.round(m[SELECTION_METRIC], 4)) for value, m in results.items()}
