"""Retrieval quality: Recall@K, NDCG@K, MRR per user, and top-K accuracy per pair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores of each row, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def per_user_metrics(
    scores: np.ndarray,
    relevant: Sequence[Sequence[int]],
    seen: Sequence[Sequence[int]] | None = None,
    ks: Sequence[int] = (10, 100),
) -> dict[str, float]:
    """Recall@K, NDCG@K (binary relevance) and MRR, averaged over users with relevant items.

    Args:
        scores: float `[U, N]`, every user's score for every item.
        relevant: per user, the item indices held out for them.
        seen: per user, item indices to remove before ranking (training items).
        ks: cutoffs.

    Returns:
        `{"recall_at_10": ..., "ndcg_at_10": ..., "mrr": ..., "users": n}`.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    if seen is not None:
        for user, items in enumerate(seen):
            scores[user, list(items)] = -np.inf
    users = [u for u, items in enumerate(relevant) if len(items)]
    max_k = max(ks)
    top = top_k_indices(scores[users], max_k)
    discounts = 1.0 / np.log2(np.arange(2, max_k + 2))
    sums = {f"{name}_at_{k}": 0.0 for k in ks for name in ("recall", "ndcg")}
    reciprocal_ranks = 0.0
    for row, user in enumerate(users):
        wanted = set(int(i) for i in relevant[user])
        hits = np.array([int(i) in wanted for i in top[row]], dtype=float)
        for k in ks:
            sums[f"recall_at_{k}"] += hits[:k].sum() / len(wanted)
            ideal = discounts[: min(len(wanted), k)].sum()
            sums[f"ndcg_at_{k}"] += (hits[:k] * discounts[:k]).sum() / ideal
        # Rank of the best relevant item among all (not only the top max_k).
        best = scores[user, list(wanted)].max()
        rank = 1 + int(np.sum(scores[user] > best))
        reciprocal_ranks += 1.0 / rank
    count = max(len(users), 1)
    result = {name: value / count for name, value in sums.items()}
    result["mrr"] = reciprocal_ranks / count
    result["users"] = len(users)
    return result


def top_k_categorical_accuracy(
    scores: np.ndarray, pair_users: np.ndarray, pair_items: np.ndarray, k: int = 100
) -> float:
    """Share of (user, item) pairs whose item is in the user's top `k` of all items.

    As TFRS's `FactorizedTopK` computes it: no item is removed, and a user
    with several test pairs counts once per pair.
    """
    pair_users, pair_items = np.asarray(pair_users), np.asarray(pair_items)
    item_scores = scores[pair_users, pair_items]
    # In the top k when fewer than k items score strictly higher.
    higher = np.sum(scores[pair_users] > item_scores[:, None], axis=1)
    return float(np.mean(higher < k))


def popularity_scores(train_items: np.ndarray, num_items: int, num_users: int) -> np.ndarray:
    """Every user's scores under the popularity baseline: training counts."""
    counts = np.bincount(np.asarray(train_items), minlength=num_items).astype(np.float32)
    return np.broadcast_to(counts, (num_users, num_items))


def group_by_user(users: np.ndarray, items: np.ndarray, num_users: int) -> list[list[int]]:
    """Item indices per user index."""
    grouped: list[list[int]] = [[] for _ in range(num_users)]
    for user, item in zip(np.asarray(users), np.asarray(items), strict=True):
        grouped[int(user)].append(int(item))
    return grouped


def report(metrics: Mapping[str, Any], digits: int = 4) -> dict[str, Any]:
    """Rounds the floats of a metrics dict."""
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in metrics.items()}
