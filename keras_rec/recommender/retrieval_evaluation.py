"""`evaluate_retrieval`: every report figure of a score matrix on a train/test split."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_rec.recommender.recommender_inputs import RecommenderInputs
from keras_rec.recommender.retrieval_metrics import (
    group_by_user,
    per_user_metrics,
    popularity_scores,
    report,
    top_k_categorical_accuracy,
)


def evaluate_retrieval(scores: np.ndarray, inputs: RecommenderInputs) -> dict[str, Any]:
    """Quality of `scores` (`[users, items]`) on the test interactions of `inputs`.

    - `top100_accuracy`: TFRS's `FactorizedTopK` top-100 categorical accuracy
      per test (user, item) pair, nothing removed.
    - `user_recall_at_K`, `user_ndcg_at_K` (K = 10, 100), `user_mrr`: per user,
      the user's training items removed from the ranking, averaged over users
      with test items.
    - `cold_start_recall_at_K`, `cold_start_ndcg_at_K`: the same, counting
      as relevant only the held-out (cold) items, ranked among all items;
      present when `inputs.cold_items` is not empty.

    Args:
        scores: float `[num_users, num_items]` in the row order of `inputs`.
        inputs: the `RecommenderInputs` of the split.

    Returns:
        A dict of rounded floats and counts.
    """
    expected = (inputs.num_users, inputs.num_items)
    if tuple(scores.shape) != expected:
        raise ValueError(f"`scores` must have shape {expected}. Received: {scores.shape}")
    seen = group_by_user(inputs.train_users, inputs.train_items, inputs.num_users)
    relevant = group_by_user(inputs.test_users, inputs.test_items, inputs.num_users)
    metrics: dict[str, Any] = {
        "top100_accuracy": top_k_categorical_accuracy(
            scores, inputs.test_users, inputs.test_items, k=100
        ),
    }
    per_user = per_user_metrics(scores, relevant, seen, ks=(10, 100))
    metrics.update({f"user_{name}": value for name, value in per_user.items() if name != "users"})
    metrics["evaluated_users"] = per_user["users"]
    if len(inputs.cold_items):
        cold = set(inputs.cold_items.tolist())
        cold_relevant = [[i for i in items if i in cold] for items in relevant]
        cold_metrics = per_user_metrics(scores, cold_relevant, seen, ks=(10, 100))
        metrics.update(
            {
                f"cold_start_{name}": value
                for name, value in cold_metrics.items()
                if name not in ("mrr", "users")
            }
        )
        metrics["cold_start_evaluated_users"] = cold_metrics["users"]
    metrics["test_pairs"] = int(len(inputs.test_items))
    return report(metrics)


def popularity_baseline(inputs: RecommenderInputs) -> dict[str, Any]:
    """`evaluate_retrieval` of the popularity baseline (training counts for everyone)."""
    scores = popularity_scores(inputs.train_items, inputs.num_items, inputs.num_users)
    return evaluate_retrieval(np.asarray(scores), inputs)


def recall_curve(
    scores: np.ndarray, inputs: RecommenderInputs, ks=(1, 2, 5, 10, 20, 50, 100, 200)
) -> dict[int, float]:
    """Per-user Recall@K (training items removed) at each K, for plotting."""
    seen = group_by_user(inputs.train_users, inputs.train_items, inputs.num_users)
    relevant = group_by_user(inputs.test_users, inputs.test_items, inputs.num_users)
    ks = [k for k in ks if k <= inputs.num_items]
    metrics = per_user_metrics(scores, relevant, seen, ks=ks)
    return {k: round(metrics[f"recall_at_{k}"], 4) for k in ks}
