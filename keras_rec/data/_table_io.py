"""Loads a CSV or Parquet file, turning I/O failures into clear errors."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from keras_rec.data._row_checks import format_rows
from keras_rec.data.errors import DataValidationError

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
# JSON Lines: one JSON object per line.
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES + JSONL_SUFFIXES


def table_format(path: str) -> str:
    """Returns "csv", "tsv", "parquet" or "jsonl" from the file name's extension."""
    name = str(path).lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            if suffix in PARQUET_SUFFIXES:
                return "parquet"
            if suffix in JSONL_SUFFIXES:
                return "jsonl"
            return "tsv" if suffix.startswith(".tsv") else "csv"
    raise ValueError(
        f"Unsupported file extension for '{path}'. Supported extensions: "
        f"{', '.join(SUPPORTED_SUFFIXES)}."
    )


def check_file(path: str) -> None:
    """Raises FileNotFoundError / DataValidationError for absent or 0-byte files."""
    import fsspec

    fs, fs_path = fsspec.core.url_to_fs(path)
    if not fs.exists(fs_path):
        raise FileNotFoundError(f"No such file: '{path}'")
    if fs.isdir(fs_path):
        raise IsADirectoryError(f"Expected a file, got a directory: '{path}'")
    if fs.size(fs_path) == 0:
        raise DataValidationError(f"File '{path}' is empty (0 bytes).")


def load_table(
    path: str | os.PathLike,
    encoding: str = "utf-8",
    as_strings: bool = False,
    dtype: Any = None,
) -> pd.DataFrame:
    """Reads `path` (CSV/TSV, optionally gzipped, or Parquet).

    Args:
        path: str or path-like. Local path or fsspec URL.
        encoding: str. Text encoding of a CSV, and of `bytes` values in a
            Parquet file.
        as_strings: bool. For CSV only: read every column as `str`, with an
            empty field as the only missing marker (so "NA", "null" or "007"
            come back as written).
        dtype: passed to `pandas.read_csv` when `as_strings` is False.

    Returns:
        A DataFrame with a 0-based RangeIndex (position = data row - 1).
    """
    path = os.fspath(path)
    if "://" not in path:
        path = os.path.expanduser(path)
    fmt = table_format(path)
    check_file(path)
    if fmt == "parquet":
        return _load_parquet(path, encoding)
    if fmt == "jsonl":
        return pd.concat(list(read_jsonl_chunks(path, encoding, 1_000_000)), ignore_index=True)
    kwargs: dict[str, Any] = {"sep": "\t" if fmt == "tsv" else ",", "encoding": encoding}
    if as_strings:
        kwargs.update(dtype=str, keep_default_na=False, na_values=[""])
    elif dtype is not None:
        kwargs["dtype"] = dtype
    try:
        df = pd.read_csv(path, **kwargs)
    except UnicodeDecodeError:
        raise _decode_error(path, encoding) from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"File '{path}' is empty: no header and no data rows.") from None
    except pd.errors.ParserError as e:
        raise DataValidationError(f"File '{path}' is not valid CSV: {e}") from None
    return df.reset_index(drop=True)


def read_jsonl_chunks(source: Any, encoding: str, chunk_rows: int, name: str | None = None):
    """Yields DataFrames of up to `chunk_rows` lines of a JSON Lines file.

    `source` is a path/URL or an open binary file (then `name` names it in
    errors). Values keep their JSON types (a missing key or `null` is missing).
    """
    name = name or str(source)
    try:
        reader = pd.read_json(
            source, lines=True, chunksize=chunk_rows, dtype=False, encoding=encoding
        )
        with reader:
            yield from reader
    except UnicodeDecodeError as e:
        raise DataValidationError(
            f"File '{name}' is not valid {encoding} ({e.reason}). Pass the file's encoding."
        ) from None
    except ValueError as e:
        raise DataValidationError(f"File '{name}' is not valid JSON Lines: {e}") from None


def _load_parquet(path: str, encoding: str) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DataValidationError(f"File '{path}' could not be read as Parquet: {e}") from None
    df = df.reset_index(drop=True)
    for column in df.columns:
        if df[column].dtype == object:
            df[column] = _decode_bytes(df[column], column, path, encoding)
    return df


def _decode_bytes(values: pd.Series, column: str, path: str, encoding: str) -> pd.Series:
    is_bytes = values.map(lambda v: isinstance(v, (bytes, bytearray))).to_numpy()
    if not is_bytes.any():
        return values
    decoded = values.copy()
    bad, first = [], None
    for pos in is_bytes.nonzero()[0]:
        try:
            decoded.iat[pos] = bytes(values.iat[pos]).decode(encoding)
        except UnicodeDecodeError as e:
            bad.append(pos)
            first = first or (pos, e)
    if bad:
        pos, e = first
        raise DataValidationError(
            f"File '{path}': column `{column}` has bytes that are not valid "
            f"{encoding} in {format_rows(bad)}. First: row {pos + 1}, byte "
            f"offset {e.start} within the value ({e.reason}). Pass the right "
            '`encoding=` (e.g. encoding="latin-1").'
        )
    return decoded


def _decode_error(path: str, encoding: str) -> DataValidationError:
    """Locates the first undecodable byte of a CSV file."""
    import fsspec

    with fsspec.open(path, "rb", compression="infer") as f:
        raw = f.read()
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        bad = raw[e.start : e.end]
        return DataValidationError(
            f"File '{path}' is not valid {encoding}: byte(s) {bad!r} at byte "
            f"offset {e.start} (file line {line}, byte {column} of the line) "
            f"cannot be decoded ({e.reason}). Pass the file's encoding, e.g. "
            'encoding="latin-1".'
        )
    return DataValidationError(  # pandas failed, a whole-file decode did not.
        f"File '{path}' could not be decoded as {encoding}. Pass the file's "
        'encoding, e.g. encoding="latin-1".'
    )
