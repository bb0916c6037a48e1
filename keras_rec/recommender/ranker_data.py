"""Training and evaluation pairs for the ranker: positives and sampled negatives."""

from __future__ import annotations

import numpy as np


def sampled_negative_pairs(
    users: np.ndarray, items: np.ndarray, num_items: int, negatives: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(user_rows, item_rows, labels)`: each positive pair, then `negatives` random items.

    Negatives are drawn uniformly from all items; a draw that is one of the
    user's positives here is redrawn (up to 10 times), so labels stay true.

    Args:
        users, items: int arrays, the positive (user row, item row) pairs.
        num_items: int. Items to draw from.
        negatives: int. Negatives per positive (0: positives only).
        seed: int.
    """
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    if negatives < 0:
        raise ValueError(f"`negatives` must be >= 0. Received: {negatives!r}")
    rng = np.random.default_rng(seed)
    positive = set(zip(users.tolist(), items.tolist()))
    neg_users = np.repeat(users, negatives)
    neg_items = rng.integers(0, num_items, size=len(neg_users))
    for _ in range(10):
        clash = np.array(
            [(u, i) in positive for u, i in zip(neg_users.tolist(), neg_items.tolist())], bool
        )
        if not clash.any():
            break
        neg_items[clash] = rng.integers(0, num_items, size=int(clash.sum()))
    labels = np.concatenate([np.ones(len(users), np.float32), np.zeros(len(neg_users), np.float32)])
    return np.concatenate([users, neg_users]), np.concatenate([items, neg_items]), labels
