"""Validated readers for tables, labelled texts and interactions.

Policies shared by all readers:

- Row numbers in error messages are 1-based data rows: the first row after
  the CSV header is row 1. At most 10 are shown, with the total count.
- No row is ever dropped silently. The only reader that drops rows is
  `read_interactions(duplicates="last")`, because the caller asked for it.
- In CSV, an empty field is the only missing marker for the columns the
  typed readers use: strings such as "NA", "null" or "None" are kept as text.
  CSV cannot tell a missing text from an empty one; Parquet can (null vs "").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from keras_rec.data import _row_checks as checks
from keras_rec.data._table_io import load_table, table_format

_MISSING_TEXT = ("error", "empty")
_DUPLICATES = ("error", "keep", "last")


def read_table(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    encoding: str = "utf-8",
    dtype: Any = None,
) -> pd.DataFrame:
    """Reads a CSV/TSV (optionally `.gz`) or Parquet file, chosen by extension.

    Column types are those pandas infers (pass `dtype=` to override for CSV).

    Args:
        path: str or path-like. A local path or an fsspec URL
            (`s3://...` needs `s3fs`). Extensions: `.csv`, `.csv.gz`, `.tsv`,
            `.tsv.gz`, `.parquet`, `.pq`, `.jsonl`, `.ndjson` (JSON Lines).
        columns: list of str, or `None`. Columns to return, in this order;
            each must be present. `None` returns all columns.
        encoding: str. Text encoding of a CSV file, and of `bytes` values in
            a Parquet file.
        dtype: optional. Passed to `pandas.read_csv` (ignored for Parquet).

    Returns:
        A `pandas.DataFrame` with at least one row.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unsupported extension.
        DataValidationError: empty file, missing column, undecodable bytes or
            malformed CSV. The message names the file and where.

    Example:

    ```python
    df = keras_rec.data.read_table("ratings.parquet", columns=["user_id"])
    ```
    """
    path = os.fspath(path)
    df = load_table(path, encoding=encoding, dtype=dtype)
    source = f"File '{path}'"
    if columns is not None:
        checks.require_columns(df, columns, source)
        df = df[list(columns)]
    checks.require_rows(df, source)
    return df


def read_text_labels(
    path: str | os.PathLike,
    text_column: str = "text",
    label_column: str | None = "label",
    id_column: str | None = None,
    encoding: str = "utf-8",
    missing_text: str = "error",
) -> pd.DataFrame:
    """Reads texts with (optional) labels and ids, validating every row.

    CSV columns are read as strings, so labels and ids come back exactly as
    written ("007" stays "007"); Parquet columns keep their stored type.

    Policies: a missing text (an empty CSV field, a Parquet null) raises, or
    becomes "" with `missing_text="empty"`. An empty or whitespace-only
    Parquet string is kept as is (the encoder handles empty strings).
    Missing labels and ids raise; ids must be unique.

    Args:
        path: str or path-like. CSV/TSV/Parquet file, local or fsspec URL.
        text_column: str. Column holding the texts.
        label_column: str or `None`. Column holding the labels; `None` reads
            texts only (e.g. for embedding).
        id_column: str or `None`. Optional unique row id column.
        encoding: str. Text encoding (e.g. "latin-1" for legacy exports).
        missing_text: str. `"error"` or `"empty"`.

    Returns:
        A `pandas.DataFrame` with columns `text`, then `label` and `id` when
        requested, one row per file row, in file order.

    Example:

    ```python
    df = keras_rec.data.read_text_labels("reviews.csv", label_column="stars")
    ```
    """
    _check_missing_text(missing_text)
    path = os.fspath(path)
    source = f"File '{path}'"
    wanted = {"text": text_column, "label": label_column, "id": id_column}
    wanted = {out: col for out, col in wanted.items() if col is not None}
    df = _load_typed(path, list(wanted.values()), encoding)

    out = text_frame(df, text_column, label_column, id_column, missing_text, source)
    if id_column is not None:
        checks.require_unique(df, [id_column], source)
    return out


def text_frame(
    df: pd.DataFrame,
    text_column: str,
    label_column: str | None,
    id_column: str | None,
    missing_text: str,
    source: str,
    first_row: int = 0,
) -> pd.DataFrame:
    """`text` (+ `label`, `id`) of rows read from a file, checked for missing values.

    The row checks of `read_text_labels` on one chunk of a file (ids are not
    checked for uniqueness here: that needs the whole file). `first_row` is
    the chunk's 0-based position in the file, so errors name file rows.
    """
    _check_missing_text(missing_text)
    text = df[text_column]
    if missing_text == "error":
        checks.require_present(
            text,
            text_column,
            source,
            hint='Pass `missing_text="empty"` to read them as "".',
            first_row=first_row,
        )
    out = pd.DataFrame({"text": text.fillna("").astype(str)})
    if label_column is not None:
        checks.require_present(df[label_column], label_column, source, first_row=first_row)
        out["label"] = df[label_column]
    if id_column is not None:
        checks.require_present(df[id_column], id_column, source, first_row=first_row)
        out["id"] = df[id_column]
    return out


def read_interactions(
    path: str | os.PathLike,
    user_column: str = "user_id",
    item_column: str = "item_id",
    rating_column: str | None = None,
    timestamp_column: str | None = None,
    duplicates: str = "error",
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Reads user-item interactions, validating every row.

    User and item ids are read as strings from CSV, so "007" stays "007";
    Parquet ids keep their stored type. Ratings come back as float32;
    timestamps as int64 when all values are whole numbers, else float64.

    Args:
        path: str or path-like. CSV/TSV/Parquet file, local or fsspec URL.
        user_column: str. Column holding user ids.
        item_column: str. Column holding item ids.
        rating_column: str or `None`. Optional numeric rating column.
        timestamp_column: str or `None`. Optional numeric timestamp column
            (e.g. Unix seconds).
        duplicates: str. What to do with repeated (user, item) pairs:
            `"error"` raises naming the rows; `"keep"` keeps every row;
            `"last"` keeps, for each pair, the row that comes last in the
            file (file order, not timestamp order) and drops the others.
        encoding: str. Text encoding of a CSV file.

    Returns:
        A `pandas.DataFrame` with columns `user_id`, `item_id`, then `rating`
        and `timestamp` when requested, in file order.

    Example:

    ```python
    df = keras_rec.data.read_interactions(
        "ratings.csv", rating_column="rating", timestamp_column="ts"
    )
    ```
    """
    if duplicates not in _DUPLICATES:
        raise ValueError(
            f"`duplicates` must be one of {_DUPLICATES}. Received: duplicates={duplicates!r}"
        )
    path = os.fspath(path)
    source = f"File '{path}'"
    wanted = {
        "user_id": user_column,
        "item_id": item_column,
        "rating": rating_column,
        "timestamp": timestamp_column,
    }
    wanted = {out: col for out, col in wanted.items() if col is not None}
    df = _load_typed(path, list(wanted.values()), encoding)

    out = pd.DataFrame(index=df.index)
    for name in ("user_id", "item_id"):
        checks.require_present(df[wanted[name]], wanted[name], source)
        out[name] = df[wanted[name]]
    if rating_column is not None:
        rating = checks.to_numeric(df[rating_column], rating_column, source)
        out["rating"] = rating.astype("float32")
    if timestamp_column is not None:
        out["timestamp"] = checks.to_numeric(df[timestamp_column], timestamp_column, source)
    if duplicates == "error":
        checks.require_unique(
            out.rename(columns={"user_id": user_column, "item_id": item_column}),
            [user_column, item_column],
            source,
            hint='Pass `duplicates="keep"` or `duplicates="last"` to accept them.',
        )
    elif duplicates == "last":
        keep = ~out.duplicated(["user_id", "item_id"], keep="last").to_numpy()
        out = out[keep].reset_index(drop=True)
    return out


def _check_missing_text(missing_text: str) -> None:
    if missing_text not in _MISSING_TEXT:
        raise ValueError(
            f"`missing_text` must be one of {_MISSING_TEXT}. "
            f"Received: missing_text={missing_text!r}"
        )


def _load_typed(path: str, columns: list[str], encoding: str) -> pd.DataFrame:
    source = f"File '{path}'"
    as_strings = table_format(path) != "parquet"
    df = load_table(path, encoding=encoding, as_strings=as_strings)
    checks.require_columns(df, columns, source)
    checks.require_rows(df, source)
    return df
