"""Retrieval quality: Recall@K, NDCG@K, MRR per user, and top-K accuracy per pair.

Scores come either as a `[users, items]` array or as a function of a batch
of user rows (`rows -> [b, items]`), so a catalogue of millions of items is
evaluated a few users at a time, exactly, without a users x items matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from keras_rec.recommender.data.user_item_lists import UserItemLists

# Scores held at once while evaluating: users per batch = this / items.
SCORE_BLOCK_VALUES = 16 * 1024 * 1024


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores of each row, best first (ties: lower index first)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def score_blocks(
    scores: np.ndarray | Callable[[np.ndarray], np.ndarray],
    users: np.ndarray,
    num_items: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`(user rows [b], float32 scores [b, items])` in batches (a writable copy each).

    Args:
        scores: `[U, N]` array, or a function of user rows -> `[b, N]`.
        users: int array, the user rows to score.
        num_items: int. Required with a function (sizes the batches).
    """
    users = np.asarray(users, np.int64)
    if num_items is None:
        num_items = np.shape(scores)[1]
    batch = max(1, SCORE_BLOCK_VALUES // max(num_items, 1))
    for start in range(0, len(users), batch):
        rows = users[start : start + batch]
        block = scores(rows) if callable(scores) else np.asarray(scores)[rows]
        yield rows, np.array(block, dtype=np.float32, copy=True)


def remove_seen(block: np.ndarray, rows: np.ndarray, seen: Sequence | None) -> np.ndarray:
    """Sets the scores of each row's `seen` items to -inf, in place."""
    if seen is not None:
        for position, user in enumerate(rows):
            block[position, np.asarray(seen[user], np.int64)] = -np.inf
    return block


class RankingSums:
    """Sums of Recall@K, NDCG@K (binary relevance) and reciprocal rank over users."""

    def __init__(self, ks: Sequence[int]):
        self.ks = tuple(ks)
        self.sums = {f"{name}_at_{k}": 0.0 for k in self.ks for name in ("recall", "ndcg")}
        self.reciprocal_ranks = 0.0
        self.users = 0

    def add(self, block: np.ndarray, rows: np.ndarray, relevant: Sequence) -> None:
        """Adds the users of `rows` (scores `block`, seen items already removed)."""
        with_items = [p for p, user in enumerate(rows) if len(relevant[user])]
        if not with_items:
            return
        max_k = max(self.ks)
        top = top_k_indices(block[with_items], max_k)
        discounts = 1.0 / np.log2(np.arange(2, max_k + 2))
        for row, position in enumerate(with_items):
            wanted = np.unique(np.asarray(relevant[rows[position]], np.int64))
            # An item at -inf (removed, or never ranked) fills a slot but is never a hit.
            ranked = np.isfinite(block[position, top[row]])
            hits = (np.isin(top[row], wanted) & ranked).astype(float)
            for k in self.ks:
                self.sums[f"recall_at_{k}"] += hits[:k].sum() / len(wanted)
                ideal = discounts[: min(len(wanted), k)].sum()
                self.sums[f"ndcg_at_{k}"] += (hits[:k] * discounts[: len(hits[:k])]).sum() / ideal
            # Rank of the best relevant item among all (not only the top max_k).
            best = block[position, wanted].max()
            self.reciprocal_ranks += 1.0 / (1 + int(np.sum(block[position] > best)))
            self.users += 1

    def result(self) -> dict[str, float]:
        count = max(self.users, 1)
        result = {name: value / count for name, value in self.sums.items()}
        result["mrr"] = self.reciprocal_ranks / count
        result["users"] = self.users
        return result


def per_user_metrics(
    scores: np.ndarray | Callable[[np.ndarray], np.ndarray],
    relevant: Sequence[Sequence[int]],
    seen: Sequence[Sequence[int]] | None = None,
    ks: Sequence[int] = (10, 100),
    num_items: int | None = None,
) -> dict[str, float]:
    """Recall@K, NDCG@K (binary relevance) and MRR, averaged over users with relevant items.

    Args:
        scores: float `[U, N]`, every user's score for every item, or a
            function of user rows -> `[b, N]`.
        relevant: per user, the item indices held out for them.
        seen: per user, item indices to remove before ranking (training items).
        ks: cutoffs.
        num_items: int. Required when `scores` is a function.

    Returns:
        `{"recall_at_10": ..., "ndcg_at_10": ..., "mrr": ..., "users": n}`.
    """
    sums = RankingSums(ks)
    users = np.flatnonzero([len(items) > 0 for items in relevant])
    for rows, block in score_blocks(scores, users, num_items):
        sums.add(remove_seen(block, rows, seen), rows, relevant)
    return sums.result()


def pairs_in_top_k(block: np.ndarray, rows: np.ndarray, pairs: Sequence, k: int) -> int:
    """How many (user, item) pairs of `rows` have their item in the user's top `k`."""
    count = 0
    for position, user in enumerate(rows):
        items = np.asarray(pairs[user], np.int64)
        if len(items):
            higher = np.sum(block[position][None, :] > block[position, items][:, None], axis=1)
            count += int(np.sum(higher < k))
    return count


def top_k_categorical_accuracy(
    scores: np.ndarray, pair_users: np.ndarray, pair_items: np.ndarray, k: int = 100
) -> float:
    """Share of (user, item) pairs whose item is in the user's top `k` of all items.

    As TFRS's `FactorizedTopK` computes it: no item is removed, and a user
    with several test pairs counts once per pair.
    """
    scores = np.asarray(scores)
    pairs = UserItemLists(pair_users, pair_items, scores.shape[0])
    users = np.flatnonzero(pairs.lengths())
    hits = sum(pairs_in_top_k(block, rows, pairs, k) for rows, block in score_blocks(scores, users))
    return float(hits / max(len(pair_items), 1))


def popularity_scores(train_items: np.ndarray, num_items: int, num_users: int) -> np.ndarray:
    """Every user's scores under the popularity baseline: training counts."""
    counts = np.bincount(np.asarray(train_items), minlength=num_items).astype(np.float32)
    return np.broadcast_to(counts, (num_users, num_items))


def report(metrics: Mapping[str, Any], digits: int = 4) -> dict[str, Any]:
    """Rounds the floats of a metrics dict."""
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in metrics.items()}
