"""Each user's items in time order, cut into the fixed-length windows a sequence model eats."""

from __future__ import annotations

import numpy as np

from keras_rec.recommender.data.user_item_lists import UserItemLists

# The item row that pads a window (and an unknown item at serving).
PADDING_ROW = -1
# Time gaps (`--sequence-time-gaps`): the gap between an item and the one before
# it, in seconds, falls in bucket 1 + (how many of these powers of two it reaches):
# 1 for 0 s, 2 for 1 s, 3 for 2-3 s, ... 31 from 2**29 s (17 years). Bucket 0: no
# item before it (a user's first item, padding). Integer comparisons, so the
# served graph buckets exactly as training does.
TIME_GAP_BOUNDARIES = tuple(2**power for power in range(30))
TIME_GAP_BUCKETS = len(TIME_GAP_BOUNDARIES) + 2


def time_ordered_items(users, items, times, num_users: int, values=None) -> UserItemLists:
    """Each user's item rows ordered by time, ties broken by item row.

    Args:
        users: int array `[P]`, user row of each interaction.
        items: int array `[P]`, item row of each interaction.
        times: numeric array `[P]` (e.g. Unix seconds), or empty / None:
            then the interactions keep the order given (file order).
        num_users: int.
        values: optional int array `[P]` to list instead of the items, in
            the same order (e.g. each interaction's time).

    Returns:
        `UserItemLists` whose row `u` is user `u`'s items (or `values`),
        oldest first.
    """
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    if times is None or not len(times):
        order = np.argsort(users, kind="stable")
    else:
        times = np.asarray(times)
        if times.shape != users.shape:
            raise ValueError(
                f"`times` must have one value per interaction ({users.shape[0]}). "
                f"Received shape: {times.shape}"
            )
        order = np.lexsort((items, times, users))
    listed = items if values is None else np.asarray(values, np.int64)
    return UserItemLists(users[order], listed[order], num_users)


def time_gap_buckets(users, items, times, num_users: int) -> UserItemLists:
    """Each user's time-gap buckets, in the order of `time_ordered_items`.

    Entry `t` of user `u` is the bucket (`gap_bucket`) of the seconds between
    the user's item `t` and item `t - 1`, and 0 for their first item, so
    `training_windows` and `latest_items` cut it exactly as the items.

    Args:
        users, items: int arrays `[P]`, as for `time_ordered_items`.
        times: numeric array `[P]`, in seconds (required).
        num_users: int.
    """
    users = np.asarray(users, np.int64)
    if times is None or len(times) != len(users):
        raise ValueError(
            "Time gaps need one timestamp per interaction (e.g. `--timestamp-column`). "
            f"Received {0 if times is None else len(times)} for {len(users)} interactions."
        )
    seconds = time_ordered_items(users, items, times, num_users, values=whole_seconds(times))
    first = np.zeros(len(seconds.items), bool)
    first[seconds.splits[:-1][seconds.lengths() > 0]] = True
    gaps = np.diff(seconds.items, prepend=seconds.items[:1])
    # The lists are already per user in order: their seconds become the buckets in place.
    seconds.items = np.where(first, 0, gap_bucket(gaps))
    return seconds


def whole_seconds(times) -> np.ndarray:
    """int64 seconds of `times` (floored), as a `next_items` request carries them."""
    return np.floor(np.asarray(times, np.float64)).astype(np.int64)


def gap_bucket(seconds) -> np.ndarray:
    """int64 bucket (1 .. `TIME_GAP_BUCKETS` - 1) of gaps in whole seconds (negative: as 0)."""
    boundaries = np.asarray(TIME_GAP_BOUNDARIES, np.int64)
    return 1 + np.searchsorted(boundaries, np.asarray(seconds, np.int64), side="right")


def training_windows(sequences: UserItemLists, max_history: int) -> np.ndarray:
    """int64 `[W, max_history + 1]`: every next-item step of every user, in windows.

    A user's `n` items give `n - 1` steps (each item predicts the next).
    They are cut from the end into windows of `max_history` steps, so each
    step is trained once, seeing at most `max_history` items before it; a
    window's first column is the item before its first step. Windows are
    left-padded with `PADDING_ROW` (the latest item is always the last
    column, as at serving). Users with one item give nothing.

    Args:
        sequences: time-ordered item rows per user (`time_ordered_items`).
        max_history: int >= 1. Items a step looks back on.

    Returns:
        Window `w`: inputs `w[:-1]`, next-item targets `w[1:]`.
    """
    _check_history(max_history)
    steps = np.maximum(sequences.lengths() - 1, 0)
    per_user = -(-steps // max_history)  # ceil
    owner = np.repeat(np.arange(len(per_user)), per_user)
    first_window = np.cumsum(per_user) - per_user
    within = np.arange(len(owner)) - first_window[owner]
    # Index (within its user) of each window's last item.
    last = steps[owner] - within * max_history
    positions = last[:, None] + np.arange(-max_history, 1)[None, :]
    rows = sequences.splits[owner][:, None] + positions
    windows = np.where(positions >= 0, sequences.items[np.maximum(rows, 0)], PADDING_ROW)
    return windows.astype(np.int64)


def latest_items(sequences: UserItemLists, max_history: int, users=None) -> np.ndarray:
    """int64 `[U, max_history]`: each user's last items, left-padded with `PADDING_ROW`.

    Args:
        sequences: time-ordered item rows per user.
        max_history: int >= 1.
        users: int array of user rows, or None for every user.
    """
    _check_history(max_history)
    users = np.arange(len(sequences)) if users is None else np.asarray(users, np.int64)
    ends = sequences.splits[users + 1]
    positions = ends[:, None] + np.arange(-max_history, 0)[None, :]
    valid = positions >= sequences.splits[users][:, None]
    if not len(sequences.items):
        return np.full(positions.shape, PADDING_ROW, np.int64)
    return np.where(valid, sequences.items[np.where(valid, positions, 0)], PADDING_ROW).astype(
        np.int64
    )


def _check_history(max_history: int) -> None:
    if isinstance(max_history, bool) or not isinstance(max_history, int) or max_history < 1:
        raise ValueError(
            f"`max_history` must be a positive integer. Received: max_history={max_history!r}"
        )
