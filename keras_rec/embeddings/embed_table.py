"""Embed the text column of a CSV/Parquet table into a Parquet file."""

from __future__ import annotations

import os
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from keras_rec.atomic_io import open_atomic
from keras_rec.embeddings.cached_encoder import CachedEncoder


def embed_table(
    input_path: str,
    text_column: str,
    id_column: str | None,
    output_path: str | None,
    encoder: CachedEncoder,
    shard: str | None = None,
    encoding: str = "utf-8",
    missing_text: str = "error",
) -> dict[str, Any]:
    """Reads `input_path`, embeds `text_column` through the cache, writes Parquet.

    The output has the id column (when given), `text`, and `embedding`
    (a fixed-size list of float32). It is written to a temporary file and
    renamed, so an interrupted run never leaves a partial output. With
    `shard="I/N"` the call only fills this worker's part of the cache and
    writes no output.

    Returns:
        A summary dict (counts, dimension, seconds, output path).
    """
    from keras_rec.data import read_text_labels

    table = read_text_labels(
        input_path,
        text_column=text_column,
        label_column=None,
        id_column=id_column,
        encoding=encoding,
        missing_text=missing_text,
    )
    texts = table["text"].tolist()
    summary: dict[str, Any] = {"input": str(input_path), "rows": len(texts)}
    if shard is not None:
        report = encoder.fill(texts, shard=shard)
        summary.update(shard=shard, **report.as_dict())
        return summary
    if output_path is None:
        raise ValueError("`output_path` is required unless `shard` is given.")
    vectors = encoder.encode(texts)
    output = pd.DataFrame({"text": texts})
    if id_column is not None:
        output.insert(0, id_column, table["id"].to_numpy())
    write_embeddings_parquet(output, vectors, output_path)
    summary.update(
        output=str(output_path),
        embedding_dim=int(vectors.shape[1]),
        **encoder.last_report.as_dict(),
    )
    return summary


ROW_GROUP_BYTES = 64 * 1024 * 1024


def embedding_row_group_rows(dim: int) -> int:
    """Rows per Parquet row group so each group's vectors take ~64 MB.

    A reader decodes a whole row group at once: with pyarrow's default (1M
    rows) a 1M x 384 file would need a second 1.5 GB while being read.
    """
    return max(1024, ROW_GROUP_BYTES // (4 * max(int(dim), 1)))


def embedding_column(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """float32 vectors `[N, D]` as the `embedding` column: a fixed-size list of float32."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def write_embeddings_parquet(frame: pd.DataFrame, vectors: np.ndarray, path: str) -> None:
    """Writes `frame` plus an `embedding` column atomically to `path`."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.append_column("embedding", embedding_column(vectors))
    fs, fs_path = fsspec.core.url_to_fs(os.fspath(path))
    with open_atomic(fs, fs_path) as file:
        pq.write_table(table, file, row_group_size=embedding_row_group_rows(vectors.shape[1]))


def read_embeddings_parquet(path: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Reads a file written by `write_embeddings_parquet`: (columns, vectors)."""
    table = pq.read_table(path)
    embedding = table.column("embedding").combine_chunks()
    dim = embedding.type.list_size
    vectors = embedding.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    frame = table.drop(["embedding"]).to_pandas()
    return frame, vectors.astype(np.float32, copy=False)
