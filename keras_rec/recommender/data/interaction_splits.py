"""Held-out masks over interaction arrays: random, temporal and leave-last-out splits."""

from __future__ import annotations

import numpy as np

SPLITS = ("random", "temporal", "leave-last-out")


def holdout_mask(
    kind: str,
    users: np.ndarray,
    timestamps: np.ndarray | None,
    fraction: float,
    leave_last: int,
    seed: int,
) -> np.ndarray:
    """bool `[P]`: the interactions held out by the split `kind`.

    - `"random"`: a seeded `fraction` of the interactions (TFRS protocol).
    - `"temporal"`: the latest `fraction` by timestamp: every interaction at
      or after the cutoff time (a global quantile; ties all go out).
    - `"leave-last-out"`: each user's last `leave_last` interactions by
      timestamp (ties: later rows last); users with no more than
      `leave_last` interactions keep all of theirs.

    Args:
        kind: str. One of `SPLITS`.
        users: int array `[P]`, user row per interaction.
        timestamps: numeric array `[P]`, or None (required but for random).
        fraction: float in (0, 1).
        leave_last: int >= 1.
        seed: int.
    """
    count = len(users)
    if kind not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={kind!r}")
    if kind == "random":
        _check_fraction(fraction)
        held = np.zeros(count, bool)
        held[np.random.default_rng(seed).permutation(count)[: int(round(count * fraction))]] = True
        return held
    if timestamps is None:
        raise ValueError(
            f"`split={kind!r}` orders interactions by time: pass `timestamp_column` "
            "(`--timestamp-column`)."
        )
    if kind == "temporal":
        _check_fraction(fraction)
        held_count = int(round(count * fraction))
        if held_count == 0:
            return np.zeros(count, bool)
        cutoff = np.sort(timestamps, kind="stable")[count - held_count]
        return timestamps >= cutoff
    if isinstance(leave_last, bool) or not isinstance(leave_last, int) or leave_last < 1:
        raise ValueError(f"`leave_last` must be a positive integer. Received: {leave_last!r}")
    order = np.lexsort((np.arange(count), timestamps, users))
    sorted_users = users[order]
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    ends = np.searchsorted(sorted_users, sorted_users, side="right")
    from_end = ends - np.arange(count)  # 1 for a user's last interaction
    held_sorted = (from_end <= leave_last) & (ends - starts > leave_last)
    held = np.zeros(count, bool)
    held[order] = held_sorted
    return held


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"The held-out fraction must be in (0, 1). Received: {fraction!r}")
