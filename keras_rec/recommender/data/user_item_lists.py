"""`UserItemLists`: each user's item rows, stored as one sorted array and offsets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class UserItemLists(Sequence):
    """The item rows of each user, in CSR form: `items[splits[u]:splits[u + 1]]`.

    Memory is two integer arrays (pairs + users), where a list of Python
    lists costs ~30x more and takes minutes to build at 10M pairs. A user's
    items keep the order of the pairs given.

    Args:
        users: int array `[P]`, user row of each pair.
        items: int array `[P]`, item row of each pair.
        num_users: int. Users `0 .. num_users - 1`.

    Example:

    >>> seen = keras_rec.recommender.UserItemLists(train_users, train_items, num_users)
    >>> seen[3]  # item rows of user 3
    """

    def __init__(self, users, items, num_users: int):
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        if users.shape != items.shape:
            raise ValueError(
                f"`users` and `items` must have the same shape. Received: {users.shape} "
                f"and {items.shape}"
            )
        if len(users) and (users.min() < 0 or users.max() >= num_users):
            raise ValueError(f"User rows must be in [0, {num_users}).")
        order = np.argsort(users, kind="stable")
        self.items = items[order]
        self.splits = np.zeros(num_users + 1, np.int64)
        np.cumsum(np.bincount(users, minlength=num_users), out=self.splits[1:])

    def __len__(self) -> int:
        return len(self.splits) - 1

    def __getitem__(self, user):
        if isinstance(user, slice):
            return [self[u] for u in range(*user.indices(len(self)))]
        return self.items[self.splits[user] : self.splits[user + 1]]

    def lengths(self) -> np.ndarray:
        """int64 `[num_users]`: items per user."""
        return np.diff(self.splits)

    def filter(self, keep_items: np.ndarray) -> UserItemLists:
        """The same users with only the items where `keep_items[item]` is true."""
        users = np.repeat(np.arange(len(self)), self.lengths())
        mask = np.asarray(keep_items, bool)[self.items]
        return UserItemLists(users[mask], self.items[mask], len(self))
