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
    split's) is redrawn, up to 20 times, so labels stay true. Pairs are
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
    labels = np.concatenate([np.ones(len(users), np.float32), np.zeros(len(neg_users), np.float32)])
    return np.concatenate([users, neg_users]), np.concatenate([items, neg_items]), labels


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    positions = np.searchsorted(sorted_keys, keys)
    positions = np.minimum(positions, max(len(sorted_keys) - 1, 0))
    if not len(sorted_keys):
        return np.zeros(len(keys), bool)
    return sorted_keys[positions] == keys
