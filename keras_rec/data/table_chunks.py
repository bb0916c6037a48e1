"""Reads large CSV/TSV/Parquet tables a chunk of rows at a time, and embedding files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from keras_rec.data import _row_checks as checks
from keras_rec.data._table_io import (
    PARQUET_SUFFIXES,
    check_file,
    read_jsonl_chunks,
    table_format,
)
from keras_rec.data.errors import DataValidationError

CHUNK_ROWS = 1_000_000


def table_chunks(
    path: str | os.PathLike,
    columns: Sequence[str],
    chunk_rows: int = CHUNK_ROWS,
    encoding: str = "utf-8",
) -> Iterator[tuple[int, pd.DataFrame]]:
    """`(first row position, DataFrame)` chunks of `columns` of a table, in file order.

    CSV/TSV columns come back as strings (an empty field is the only
    missing marker, as in `keras_rec.data.read_interactions`); Parquet
    columns keep their stored types. A directory (local or fsspec URL) is
    read as the Parquet parts inside it, in name order. Memory holds one
    chunk.

    Args:
        path: str or path-like. File, directory of Parquet parts, or URL.
        columns: the columns to read; each must be present.
        chunk_rows: int. Rows per chunk.
        encoding: str. Text encoding of a CSV file.

    Raises:
        DataValidationError: a column is missing, or the table has no rows.
    """
    import fsspec

    path = os.fspath(path)
    fs, fs_path = fsspec.core.url_to_fs(path)
    if fs.isdir(fs_path):
        parts = sorted(
            p for p in fs.ls(fs_path, detail=False) if str(p).lower().endswith(PARQUET_SUFFIXES)
        )
        if not parts:
            raise DataValidationError(f"Directory '{path}' holds no Parquet files.")
        protocol = path.split("://")[0] + "://" if "://" in path else ""
        files = [(protocol + p if protocol and "://" not in p else p) for p in parts]
    else:
        check_file(path)
        files = [path]
    position = 0
    for file in files:
        for chunk in file_chunks(file, list(columns), chunk_rows, encoding):
            yield position, chunk
            position += len(chunk)
    if position == 0:
        raise DataValidationError(f"File '{path}' has no data rows.")


def file_chunks(
    path: str,
    columns: list[str],
    chunk_rows: int,
    encoding: str = "utf-8",
    opener: Callable[[str], Any] | None = None,
) -> Iterator[pd.DataFrame]:
    """DataFrames of up to `chunk_rows` rows of `columns` of one file, in file order.

    Types as in `table_chunks` (JSON Lines values keep their JSON types).

    Args:
        path: str. The file; its extension picks the format.
        columns: the columns to read; each must be present.
        chunk_rows: int. Rows per chunk.
        encoding: str. Text encoding of a CSV or JSON Lines file.
        opener: callable or None. `opener(path)` returns a context manager
            of a binary file, decompressed (e.g. Apache Beam's
            `FileSystems.open`); `None` opens with fsspec.
    """
    import fsspec

    source = f"File '{path}'"
    fmt = table_format(path)
    if opener is None:

        def opener(name):
            return fsspec.open(name, "rb", compression="infer")

    with opener(path) as file:
        if fmt == "parquet":
            yield from _parquet_chunks(file, columns, chunk_rows, source)
        elif fmt == "jsonl":
            for chunk in read_jsonl_chunks(file, encoding, chunk_rows, name=path):
                checks.require_columns(chunk, columns, source)
                yield chunk[columns].reset_index(drop=True)
        else:
            yield from _csv_chunks(
                file, "\t" if fmt == "tsv" else ",", columns, chunk_rows, encoding, source
            )


def _parquet_chunks(file, columns: list[str], chunk_rows: int, source: str):
    import pyarrow.parquet as pq

    # No pre-buffering: it reads whole column chunks ahead, doubling the peak.
    with pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 20) as parquet:
        names = parquet.schema_arrow.names
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataValidationError(
                f"{source} has no column(s) {missing}. Columns present: {names}."
            )
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()


def _csv_chunks(file, sep: str, columns: list[str], chunk_rows: int, encoding: str, source: str):
    try:
        reader = pd.read_csv(
            file,
            sep=sep,
            encoding=encoding,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            chunksize=chunk_rows,
        )
        with reader:
            for chunk in reader:
                checks.require_columns(chunk, columns, source)
                yield chunk[columns].reset_index(drop=True)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{source} is empty: no header and no data rows.") from None
    except pd.errors.ParserError as e:
        raise DataValidationError(f"{source} is not valid CSV: {e}") from None
    except UnicodeDecodeError as e:
        raise DataValidationError(
            f"{source} is not valid {encoding} ({e.reason}). Pass the file's encoding."
        ) from None


def read_embedding_file(
    path: str | os.PathLike, id_column: str, column: str = "embedding"
) -> tuple[np.ndarray, np.ndarray]:
    """`(ids [N], float32 vectors [N, D])` of a Parquet file of ids and embedding lists.

    The format `keras-rec embed` writes: an id column and a (fixed-size or
    variable) list column of floats. Read a batch of rows at a time into
    one preallocated array, so memory peaks at the vectors plus a batch
    (reading the whole table first would hold it two or three times over).

    Raises:
        DataValidationError: missing column, a missing or empty embedding,
            embeddings of different widths, or duplicate ids (rows named).
    """
    import fsspec
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = os.fspath(path)
    source = f"File '{path}'"
    if table_format(path) != "parquet":
        raise DataValidationError(
            f"{source}: embeddings must be a Parquet file (an id column and an "
            f"`{column}` list column, as `keras-rec embed` writes)."
        )
    check_file(path)
    # No pre-buffering: it reads whole column chunks ahead, doubling the peak.
    with (
        fsspec.open(path, "rb") as file,
        pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 20) as parquet,
    ):
        names = parquet.schema_arrow.names
        missing = [c for c in (id_column, column) if c not in names]
        if missing:
            raise DataValidationError(
                f"{source} has no column(s) {missing}. Columns present: {names}."
            )
        count = parquet.metadata.num_rows
        if not count:
            raise DataValidationError(f"{source} has no data rows.")
        vectors, ids, wrong, width, start = None, [], [], None, 0
        for batch in parquet.iter_batches(batch_size=65_536, columns=[id_column, column]):
            lists = batch.column(column)
            lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
            if width is None:
                width = int(np.bincount(lengths).argmax()) if len(lengths) else 0
                vectors = np.empty((count, max(width, 1)), np.float32)
            bad = np.flatnonzero(lengths != width)
            wrong.extend((start + bad).tolist())
            if not len(bad) and width:
                flat = lists.flatten().to_numpy(zero_copy_only=False)
                vectors[start : start + len(lengths)] = np.asarray(flat, np.float32).reshape(
                    -1, width
                )
            ids.append(batch.column(id_column).to_pandas())
            start += len(lengths)
    if wrong or not width:
        raise DataValidationError(
            f"{source}: column `{column}` has embeddings of different widths (most have "
            f"{width}) or missing ones in {checks.format_rows(wrong)}."
        )
    ids = pd.concat(ids, ignore_index=True)
    checks.require_present(ids, id_column, source)
    checks.require_unique(pd.DataFrame({id_column: ids}), [id_column], source)
    return ids.to_numpy(), vectors
