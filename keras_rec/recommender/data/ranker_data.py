"""Training and evaluation pairs for the ranker: positives and sampled negatives."""

from __future__ import annotations

import numpy as np


def sampled_negative_pairs(
    users: np.ndarray,
    items: np.ndarray,
    num_items: int,
    negatives: int,
    seed: int = 0,
    positives: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(user_rows, item_rows, labels)`: each positive pair, then `negatives` random items.

    Negatives are drawn uniformly from all items; a draw that is one of the
    user's positives (the pairs given, plus `positives`, e.g. the other
    split's) is redrawn (20 times, then from the user's non-positive items;
    a user who has every item as a positive gets no negative), so a
    negative is never a positive. Pairs are
    checked as sorted int64 keys: memory is the pairs, not a set of tuples.

    Args:
        users, items: int arrays, the positive (user row, item row) pairs.
        num_items: int. Items to draw from.
        negatives: int. Negatives per positive (0: positives only).
        seed: int.
        positives: optional `(users, items)` of more pairs never to draw.
    """
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    if negatives < 0:
        raise ValueError(f"`negatives` must be >= 0. Received: {negatives!r}")
    rng = np.random.default_rng(seed)
    known_users, known_items = users, items
    if positives is not None:
        known_users = np.concatenate([users, np.asarray(positives[0], np.int64)])
        known_items = np.concatenate([items, np.asarray(positives[1], np.int64)])
    keys = np.unique(known_users * num_items + known_items)
    neg_users = np.repeat(users, negatives)
    neg_items = rng.integers(0, num_items, size=len(neg_users))
    for _ in range(20):
        clash = _contains(keys, neg_users * num_items + neg_items)
        if not clash.any():
            break
        neg_items[clash] = rng.integers(0, num_items, size=int(clash.sum()))
    clash = _contains(keys, neg_users * num_items + neg_items)
    if clash.any():
        # Users with few non-positive items: draw from those; none left: drop the draw.
        keep = np.ones(len(neg_users), bool)
        for position in np.flatnonzero(clash):
            user = neg_users[position]
            lo, hi = np.searchsorted(keys, [user * num_items, (user + 1) * num_items])
            free = np.setdiff1d(np.arange(num_items), keys[lo:hi] - user * num_items)
            if len(free):
                neg_items[position] = rng.choice(free)
            else:
                keep[position] = False
        neg_users, neg_items = neg_users[keep], neg_items[keep]
    labels = np.concatenate([np.ones(len(users), np.float32), np.zeros(len(neg_users), np.float32)])
    return np.concatenate([users, neg_users]), np.concatenate([items, neg_items]), labels


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    positions = np.searchsorted(sorted_keys, keys)
    positions = np.minimum(positions, max(len(sorted_keys) - 1, 0))
    if not len(sorted_keys):
        return np.zeros(len(keys), bool)
    return sorted_keys[positions] == keys


def auc_report(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC of `scores` for `labels`: pooled over all pairs, and the mean over users.

    The per-user figure averages the AUC of each user having both a
    positive and a negative pair (how well the user's own items are
    ordered); the pooled one also rewards separating users from each other.
    """
    from sklearn.metrics import roc_auc_score

    users, labels, scores = (np.asarray(a) for a in (users, labels, scores))
    order = np.argsort(users, kind="stable")
    users, labels, scores = users[order], labels[order], scores[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    per_user = [
        roc_auc_score(labels[a:b], scores[a:b])
        for a, b in zip(starts, np.r_[starts[1:], len(users)])
        if 0 < labels[a:b].sum() < b - a
    ]
    return {
        "pooled_auc": round(float(roc_auc_score(labels, scores)), 4),
        "per_user_auc": round(float(np.mean(per_user)), 4) if per_user else float("nan"),
        "users": len(per_user),
    }
