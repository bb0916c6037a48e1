"""`evaluate_retrieval`: every report figure of scores on a split, a batch of users at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from keras_rec.recommender.data.recommender_inputs import RecommenderInputs
from keras_rec.recommender.data.user_item_lists import UserItemLists
from keras_rec.recommender.evaluation.retrieval_metrics import (
    RankingSums,
    pairs_in_top_k,
    popularity_scores,
    remove_seen,
    report,
    score_blocks,
)

CURVE_KS = (1, 2, 5, 10, 20, 50, 100, 200)


def evaluation_users(inputs: RecommenderInputs, count: int | None, seed: int) -> np.ndarray:
    """User rows with test pairs, or a seeded sample of `count` of them."""
    users = np.flatnonzero(np.bincount(inputs.test_users, minlength=inputs.num_users))
    if count is None or count >= len(users):
        return users
    return np.sort(np.random.default_rng(seed).choice(users, count, replace=False))


def evaluate_retrieval(
    scores: np.ndarray | Callable[[np.ndarray], np.ndarray],
    inputs: RecommenderInputs,
    curve_ks: Sequence[int] = (),
    users: np.ndarray | None = None,
) -> dict[str, Any]:
    """Quality of `scores` on the test interactions of `inputs`.

    - `top100_accuracy`: TFRS's `FactorizedTopK` top-100 categorical accuracy
      per test (user, item) pair, nothing removed.
    - `user_recall_at_K`, `user_ndcg_at_K` (K = 10, 100), `user_mrr`: per user,
      the user's known items (training and validation) removed from the
      ranking, averaged over users with test items.
    - `cold_start_recall_at_K`, `cold_start_ndcg_at_K`: the same, counting
      as relevant only the cold items (no training interaction), ranked
      among all items; present when `inputs.cold_items` is not empty.
    - `recall_curve`: `{K: Recall@K}` at each of `curve_ks`, when given.

    Users are scored in batches against every item (exact, one pass), so
    memory holds a few users' scores, never a users x items matrix.

    Args:
        scores: float `[num_users, num_items]` in the row order of `inputs`,
            or a function of user rows `[b]` -> scores `[b, num_items]`.
        inputs: the `RecommenderInputs` of the split.
        curve_ks: cutoffs of the recall curve (e.g. `CURVE_KS`).
        users: int array or None. Evaluate only these user rows (e.g. a
            seeded sample on a very large set); default: every user with
            test items.

    Returns:
        A dict of rounded floats and counts.
    """
    if not callable(scores):
        expected = (inputs.num_users, inputs.num_items)
        if tuple(np.shape(scores)) != expected:
            raise ValueError(f"`scores` must have shape {expected}. Received: {np.shape(scores)}")
    seen = UserItemLists(*inputs.known_pairs(), inputs.num_users)
    relevant = UserItemLists(inputs.test_users, inputs.test_items, inputs.num_users)
    if users is None:
        users = np.flatnonzero(relevant.lengths())
    users = np.asarray(users, np.int64)
    ks = sorted({10, 100, *curve_ks})
    ks = [k for k in ks if k <= inputs.num_items] or [inputs.num_items]
    everything = RankingSums(ks)
    cold = None
    if len(inputs.cold_items):
        is_cold = np.zeros(inputs.num_items, bool)
        is_cold[inputs.cold_items] = True
        cold_relevant = relevant.filter(is_cold)
        cold = RankingSums([k for k in (10, 100) if k in ks])
    in_top_100 = 0
    for rows, block in score_blocks(scores, users, inputs.num_items):
        in_top_100 += pairs_in_top_k(block, rows, relevant, 100)
        remove_seen(block, rows, seen)
        everything.add(block, rows, relevant)
        if cold is not None:
            cold.add(block, rows, cold_relevant)
    pairs = int(relevant.lengths()[users].sum())
    metrics: dict[str, Any] = {"top100_accuracy": in_top_100 / max(pairs, 1)}
    per_user = everything.result()
    for k in (10, 100):
        for name in ("recall", "ndcg"):
            if f"{name}_at_{k}" in per_user:
                metrics[f"user_{name}_at_{k}"] = per_user[f"{name}_at_{k}"]
    metrics["user_mrr"] = per_user["mrr"]
    metrics["evaluated_users"] = per_user["users"]
    if cold is not None:
        cold_metrics = cold.result()
        metrics.update(
            {
                f"cold_start_{name}": value
                for name, value in cold_metrics.items()
                if name not in ("mrr", "users")
            }
        )
        metrics["cold_start_evaluated_users"] = cold_metrics["users"]
    metrics["test_pairs"] = pairs
    if curve_ks:
        metrics["recall_curve"] = {
            k: round(per_user[f"recall_at_{k}"], 4) for k in curve_ks if k <= inputs.num_items
        }
    return report(metrics)


def popularity_baseline(
    inputs: RecommenderInputs, curve_ks: Sequence[int] = (), users: np.ndarray | None = None
) -> dict[str, Any]:
    """`evaluate_retrieval` of the popularity baseline (training counts for everyone)."""
    counts = popularity_scores(inputs.train_items, inputs.num_items, 1)[0]
    return evaluate_retrieval(
        lambda rows: np.broadcast_to(counts, (len(rows), inputs.num_items)),
        inputs,
        curve_ks,
        users,
    )


def vector_scores(user_vectors: np.ndarray, item_vectors: np.ndarray):
    """A score function for `evaluate_retrieval`: rows -> `user_vectors[rows] @ item_vectors.T`."""
    item_vectors = np.asarray(item_vectors, np.float32)
    return lambda rows: np.asarray(user_vectors[rows], np.float32) @ item_vectors.T
