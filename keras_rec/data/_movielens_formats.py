"""Parsers for the two MovieLens-100K file layouts.

- RecBole atomic files (`ml-100k.inter`, `.item`, `.user`): UTF-8,
  tab-separated, with a typed header such as `user_id:token`.
- GroupLens originals (`u.data`, `u.item`, `u.user`): no header; `u.data`
  tab-separated, the others pipe-separated and latin-1 encoded.

Both return `(ratings, items, users)` with the dtypes of `MovieLens100K`.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from keras_rec.data import _row_checks as checks
from keras_rec.data.errors import DataValidationError

RECBOLE_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
GROUPLENS_FILES = ("u.data", "u.item", "u.user")
GROUPLENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
    "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",
    "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# "Title (1995)", also "Title (1995) (V)" (GroupLens marks a video release).
_RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
_USER_COLUMNS = ["user_id", "age", "gender", "occupation", "zip_code"]
_RECBOLE_ITEM_COLUMNS = ["item_id", "movie_title", "release_year", "class"]
_GROUPLENS_ITEM_COLUMNS = [
    "item_id", "title", "release_date", "video_release_date", "url", *GROUPLENS_GENRES
]  # fmt: skip
_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)(?:\s*\(V\))?\s*$")
_YEAR = re.compile(r"^\d{4}$")
_DATE_YEAR = re.compile(r"(\d{4})$")


def split_title_year(title: str) -> tuple[str, int | None]:
    """Splits "Toy Story (1995)" into ("Toy Story", 1995); no year -> None.

    A trailing video-release marker goes too: "Land Before Time III: The
    Time of the Great Giving (1995) (V)" -> ("Land Before Time III: ...", 1995).
    """
    match = _TITLE_YEAR.match(title)
    if match and match.group(1):
        return match.group(1), int(match.group(2))
    return title.strip(), None


def read_recbole(directory: Path) -> tuple[pd.DataFrame, ...]:
    inter, item, user = (directory / name for name in RECBOLE_FILES)
    df = _read(inter, "\t", _RATING_COLUMNS, "utf-8", typed_header=True)
    ratings = _ratings(df, inter)

    df = _read(item, "\t", _RECBOLE_ITEM_COLUMNS, "utf-8", typed_header=True)
    titles, years = [], []
    for title, release_year in zip(df["movie_title"], df["release_year"]):
        # Item 267 reads "unkonwn" (sic) where GroupLens has "unknown".
        title, title_year = split_title_year("unknown" if title == "unkonwn" else title)
        titles.append(title)
        # Item 1412 has release_year "V" and the year inside its title.
        years.append(int(release_year) if _YEAR.match(release_year) else title_year)
    genres = [g.split() for g in df["class"]]
    items = _items(df["item_id"], titles, years, genres, item)

    df = _read(user, "\t", _USER_COLUMNS, "utf-8", typed_header=True)
    return ratings, items, _users(df, user)


def read_grouplens(directory: Path) -> tuple[pd.DataFrame, ...]:
    data, item, user = (directory / name for name in GROUPLENS_FILES)
    df = _read(data, "\t", _RATING_COLUMNS, "latin-1")
    ratings = _ratings(df, data)

    df = _read(item, "|", _GROUPLENS_ITEM_COLUMNS, "latin-1")
    titles, years = [], []
    for title, date in zip(df["title"], df["release_date"]):
        title, year = split_title_year(title)
        if year is None and (match := _DATE_YEAR.search(date.strip())):
            year = int(match[1])  # "01-Jan-1995" when the title has no year.
        titles.append(title)
        years.append(year)
    flags = df[list(GROUPLENS_GENRES)].to_numpy() == "1"
    genres = [[g for g, on in zip(GROUPLENS_GENRES, row) if on] for row in flags]
    items = _items(df["item_id"], titles, years, genres, item)

    df = _read(user, "|", _USER_COLUMNS, "latin-1")
    return ratings, items, _users(df, user)


def _read(
    path: Path, sep: str, columns: list[str], encoding: str, typed_header: bool = False
) -> pd.DataFrame:
    """Reads a headerless or RecBole-headed file as strings, checking columns."""
    source = f"File '{path}'"
    try:
        df = pd.read_csv(
            path, sep=sep, header=0 if typed_header else None, dtype=str,
            keep_default_na=False, quoting=csv.QUOTE_NONE, encoding=encoding,
        )  # fmt: skip
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataValidationError(f"{source} could not be parsed: {e}") from None
    if typed_header:
        df.columns = [str(c).split(":")[0] for c in df.columns]
        checks.require_columns(df, columns, source)
        df = df[columns]
    elif df.shape[1] != len(columns):
        raise DataValidationError(
            f"{source} must have {len(columns)} {sep!r}-separated fields per "
            f"line ({columns}). Received: {df.shape[1]} fields."
        )
    else:
        df.columns = columns
    checks.require_rows(df, source)
    return df


def _ints(values: pd.Series, column: str, path: Path) -> np.ndarray:
    numbers = checks.to_numeric(values, column, f"File '{path}'")
    if not pd.api.types.is_integer_dtype(numbers):
        raise DataValidationError(
            f"File '{path}': column `{column}` must hold whole numbers. "
            f"Received: dtype={numbers.dtype}"
        )
    return numbers.to_numpy(dtype="int64")


def _ratings(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    rating = checks.to_numeric(df["rating"], "rating", f"File '{path}'")
    return pd.DataFrame(
        {
            "user_id": _ints(df["user_id"], "user_id", path),
            "item_id": _ints(df["item_id"], "item_id", path),
            "rating": rating.to_numpy(dtype="float32"),
            "timestamp": _ints(df["timestamp"], "timestamp", path),
        }
    )


def _items(ids, titles, years, genres, path: Path) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": _ints(ids, "item_id", path),
            "title": pd.Series(titles, dtype=str),
            "year": pd.array(years, dtype="Int64"),
            "genres": pd.Series(genres, dtype=object),
        }
    )


def _users(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": _ints(df["user_id"], "user_id", path),
            "age": _ints(df["age"], "age", path),
            "gender": df["gender"].astype(str),
            "occupation": df["occupation"].astype(str),
            "zip_code": df["zip_code"].astype(str),
        }
    )
