"""Interactions read in chunks into integer row arrays, validated as they stream."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from keras_rec.data._row_checks import format_rows
from keras_rec.data.errors import DataValidationError
from keras_rec.data.table_chunks import CHUNK_ROWS, table_chunks
from keras_rec.recommender.data.id_index import IdIndex


@dataclasses.dataclass
class InteractionRows:
    """Interactions as arrays: user and item rows, and optional ratings and timestamps.

    Args:
        users, items: int64 `[P]` rows in the user and item `IdIndex`.
        ratings: float32 `[P]` or None.
        timestamps: numeric `[P]` or None.
        dropped: `{reason: count}` of rows read but not kept.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None
    timestamps: np.ndarray | None
    dropped: dict[str, int]

    def __len__(self) -> int:
        return len(self.users)

    def take(self, mask_or_rows) -> InteractionRows:
        """The interactions at a boolean mask or row indices."""
        return InteractionRows(
            self.users[mask_or_rows],
            self.items[mask_or_rows],
            None if self.ratings is None else self.ratings[mask_or_rows],
            None if self.timestamps is None else self.timestamps[mask_or_rows],
            dict(self.dropped),
        )


class _Problems:
    """Rows with a problem, collected over chunks, raised once with the file's row numbers."""

    def __init__(self):
        self.positions: dict[str, list[np.ndarray]] = {}
        self.examples: dict[str, list] = {}

    def add(self, problem: str, positions: np.ndarray, examples=()) -> None:
        if len(positions):
            self.positions.setdefault(problem, []).append(positions)
            self.examples.setdefault(problem, []).extend(list(examples)[:5])

    def raise_first(self, source: str) -> None:
        for problem, parts in self.positions.items():
            positions = np.concatenate(parts)
            shown = sorted({str(v) for v in self.examples[problem]})[:5]
            example = f" Examples: {shown}." if shown else ""
            raise DataValidationError(f"{source}: {problem} in {format_rows(positions)}.{example}")


def read_interaction_rows(
    path: str,
    user_column: str,
    item_column: str,
    user_index: IdIndex,
    item_index: IdIndex,
    rating_column: str | None = None,
    timestamp_column: str | None = None,
    min_rating: float | None = None,
    add_users: bool = True,
    unknown_users: str = "error",
    chunk_rows: int = CHUNK_ROWS,
) -> InteractionRows:
    """Reads `path` a chunk at a time into `InteractionRows`.

    Item ids must be in `item_index` (the catalogue). User ids are added to
    `user_index` when `add_users` (no user table), else must be in it, or
    with `unknown_users="drop"` are dropped and counted. Interactions rated
    below `min_rating` are dropped and counted. Memory holds one chunk of
    the file plus the integer arrays.

    Raises:
        DataValidationError: missing ids, item ids absent from the
            catalogue, user ids absent from the user table, non-numeric
            ratings or timestamps, naming the file, column and rows.
    """
    if min_rating is not None and rating_column is None:
        raise ValueError("`min_rating` needs `rating_column` (`--rating-column`).")
    source = f"File '{path}'"
    columns = [user_column, item_column]
    columns += [c for c in (rating_column, timestamp_column) if c is not None]
    problems = _Problems()
    parts: dict[str, list[np.ndarray]] = {"users": [], "items": [], "ratings": [], "times": []}
    dropped = {"below_min_rating": 0, "unknown_users": 0}
    for start, chunk in table_chunks(path, columns, chunk_rows):
        positions = start + np.arange(len(chunk))
        for column in dict.fromkeys(columns):
            missing = chunk[column].isna().to_numpy()
            problems.add(f"column `{column}` has missing values", positions[missing])
        items = item_index.rows(chunk[item_column])
        unknown = (items < 0) & chunk[item_column].notna().to_numpy()
        problems.add(
            f"column `{item_column}` has item ids absent from the item catalogue",
            positions[unknown],
            chunk[item_column][unknown].head(5),
        )
        users = user_index.rows(chunk[user_column], add=add_users)
        unknown_user = (users < 0) & chunk[user_column].notna().to_numpy()
        if unknown_users == "drop":
            dropped["unknown_users"] += int(unknown_user.sum())
        else:
            problems.add(
                f"column `{user_column}` has user ids absent from the user table",
                positions[unknown_user],
                chunk[user_column][unknown_user].head(5),
            )
        keep = (users >= 0) & (items >= 0)
        if rating_column is not None:
            ratings = _numbers(chunk[rating_column], rating_column, positions, problems)
            if min_rating is not None:
                below = ratings < min_rating
                dropped["below_min_rating"] += int((below & keep).sum())
                keep &= ~below
            parts["ratings"].append(ratings[keep].astype(np.float32))
        if timestamp_column is not None:
            times = _numbers(chunk[timestamp_column], timestamp_column, positions, problems, True)
            parts["times"].append(times[keep])
        parts["users"].append(users[keep])
        parts["items"].append(items[keep])
    problems.raise_first(source)
    return InteractionRows(
        users=np.concatenate(parts["users"]),
        items=np.concatenate(parts["items"]),
        ratings=np.concatenate(parts["ratings"]) if rating_column else None,
        timestamps=np.concatenate(parts["times"]) if timestamp_column else None,
        dropped={k: v for k, v in dropped.items() if v},
    )


def _numbers(values: pd.Series, column: str, positions, problems: _Problems, times=False):
    """float64 values of a column (timestamps: numbers or ISO dates, as seconds)."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna().to_numpy() & values.notna().to_numpy()
    if times and bad.any():
        dates = pd.to_datetime(values[bad], errors="coerce", utc=True, format="ISO8601")
        numbers = numbers.astype(np.float64)
        numbers[bad] = (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
        bad = numbers.isna().to_numpy() & values.notna().to_numpy()
    problems.add(
        f"column `{column}` has values that are not numbers" + (" or ISO dates" if times else ""),
        positions[bad],
        values[bad].head(5),
    )
    return numbers.to_numpy(np.float64, na_value=np.nan)


def keep_last_pairs(rows: InteractionRows, num_items: int) -> InteractionRows:
    """One interaction per (user, item): the latest by timestamp (else the last in the file)."""
    keys = rows.users * np.int64(num_items) + rows.items
    order_in_file = np.arange(len(keys))
    times = rows.timestamps if rows.timestamps is not None else order_in_file
    order = np.lexsort((order_in_file, times, keys))
    sorted_keys = keys[order]
    last = np.ones(len(keys), bool)
    last[:-1] = sorted_keys[:-1] != sorted_keys[1:]
    keep = np.sort(order[last])
    result = rows.take(keep)
    if len(keep) < len(keys):
        result.dropped["duplicate_pairs"] = len(keys) - len(keep)
    return result
