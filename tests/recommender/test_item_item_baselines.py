"""EASE and item-kNN against values computed by hand on a 4 x 5 matrix."""

import numpy as np
import pytest

from keras_rec.recommender.baselines.item_item_baselines import (
    ease_weights,
    interaction_matrix,
    item_item_scores,
    item_knn_weights,
)

# Users 0..3 x items 0..4; item 4 has no interactions.
USERS = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
ITEMS = np.array([0, 1, 2, 0, 1, 1, 3, 0, 2, 3])
R6 = 1 / np.sqrt(6)


def _matrix():
    return interaction_matrix(USERS, ITEMS, 4, 5)


def test_interaction_matrix_is_binary_even_with_repeated_pairs():
    matrix = interaction_matrix(np.append(USERS, 0), np.append(ITEMS, 0), 4, 5)
    assert matrix.toarray()[0].tolist() == [1, 1, 1, 0, 0]
    assert matrix.sum() == len(USERS)


def test_item_knn_cosines_by_hand():
    weights = item_knn_weights(_matrix())
    # Item user sets: 0 {0,1,3}, 1 {0,1,2}, 2 {0,3}, 3 {2,3}, 4 {}.
    expected = np.array(
        [
            [0, 2 / 3, 2 * R6, R6, 0],
            [2 / 3, 0, R6, R6, 0],
            [2 * R6, R6, 0, 0.5, 0],
            [R6, R6, 0.5, 0, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    scores = item_item_scores(_matrix(), weights)(np.array([1]))
    # User 1 has items 0 and 1: each item's score sums its similarity to both.
    np.testing.assert_allclose(scores[0], [2 / 3, 2 / 3, 3 * R6, 2 * R6, 0], atol=1e-6)


def test_item_knn_keeps_each_items_nearest_neighbors():
    weights = item_knn_weights(_matrix(), neighbors=1)
    # Nearest neighbor of item 0: item 2; of 1: item 0; of 2: item 0; of 3: item 2.
    for item, neighbor in ((0, 2), (1, 0), (2, 0), (3, 2)):
        column = weights[:, item]
        assert np.count_nonzero(column) == 1 and column[neighbor] > 0
    scores = item_item_scores(_matrix(), weights)(np.array([1]))
    np.testing.assert_allclose(scores[0], [0, 2 / 3, 2 * R6, 0, 0], atol=1e-6)


@pytest.mark.parametrize("l2", [0.5, 10.0])
def test_ease_equals_the_column_wise_ridge_regression(l2):
    x = _matrix().toarray().astype(np.float64)
    weights = ease_weights(_matrix(), l2)
    # EASE's definition: each column j regresses X[:, j] on the other items' columns.
    for j in range(5):
        others = [i for i in range(5) if i != j]
        a = x[:, others]
        expected = np.linalg.solve(a.T @ a + l2 * np.eye(4), a.T @ x[:, j])
        np.testing.assert_allclose(weights[others, j], expected, atol=1e-5)
        assert weights[j, j] == 0.0
    # Scores are the user's row of X @ W.
    np.testing.assert_allclose(
        item_item_scores(_matrix(), weights)(np.arange(4)), x @ weights, atol=1e-5
    )


def test_ease_by_hand_on_two_items():
    # Two items, both used by the same single user: W[0, 1] = 1 / (1 + l2).
    matrix = interaction_matrix(np.array([0, 0]), np.array([0, 1]), 1, 2)
    np.testing.assert_allclose(ease_weights(matrix, 1.0), [[0, 0.5], [0.5, 0]], atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`l2` must be > 0"):
        ease_weights(_matrix(), 0.0)
    with pytest.raises(ValueError, match="`neighbors` must be a positive integer"):
        item_knn_weights(_matrix(), 0)
