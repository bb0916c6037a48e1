"""`build_index`: any item vectors (Parquet) -> a versioned, checked top-K SavedModel."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from keras_rec.recommender.index.item_index import (
    INDEX_FILE,
    ItemIndexSettings,
    build_item_index,
    index_metadata,
    item_queries,
)


def build_index(
    item_vectors: str,
    *,
    id_column: str,
    output_dir: str,
    model_name: str,
    k: int = 10,
    settings: ItemIndexSettings | None = None,
    queries: str | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """Indexes the vectors of a Parquet file and exports `<output_dir>/<model_name>/<version>`.

    The SavedModel's `serving_default` takes `query` float `[B, D]` and
    returns `item_ids` and `scores` `[B, k]` (inner product, highest
    first): brute force, or an IVF index whose `nprobe` reaches
    `settings.target_recall` against exact on sample queries. It goes
    through every export check (ops of `target`, the Session loader,
    warmup) and appears as the next version atomically.

    Args:
        item_vectors: str. Parquet (local or fsspec URL) with `id_column`
            and an `embedding` list column, as `keras-rec embed` writes.
        id_column: str. The id column.
        output_dir: str. Local directory holding one folder per model.
        model_name: str. TF Serving's model name.
        k: int. Results per query.
        settings: `ItemIndexSettings` (`--index`, `--index-recall`, ...).
        queries: str or None. Parquet with an `embedding` column of real
            queries to tune `nprobe` on; default: a seeded sample of the
            items, each moved half-way to its nearest other item with its
            own row excluded (`item_queries`): the recorded recall is that
            of queries near the items, not on them.
        target: str or None. TF Serving build of the op check (default
            `keras_rec.serving.op_check.DEFAULT_TARGET`).

    Returns:
        A JSON-ready summary: the export's path and version, and the index
        report (`describe_index` + tuning figures).
    """
    from keras_rec.data.table_chunks import read_embedding_file
    from keras_rec.recommender.data.id_index import IdIndex
    from keras_rec.recommender.serving.vector_retrieval import VectorRetrieval
    from keras_rec.serving.op_check import DEFAULT_TARGET
    from keras_rec.serving.saved_model_export import export

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive integer. Received: k={k!r}")
    settings = settings or ItemIndexSettings()
    ids, vectors = read_embedding_file(item_vectors, id_column)
    ids = IdIndex(ids, f"File '{item_vectors}' column `{id_column}`").ids
    if k > len(vectors):
        raise ValueError(f"`k` must be <= the {len(vectors)} items. Received: k={k}")
    if queries is None:
        sample, source = (lambda: item_queries(vectors, settings.seed)), "items"
    else:
        given = query_vectors(queries, vectors.shape[1])
        sample, source = (lambda: (given, None, {"from": queries})), queries
    layer, report = build_item_index(vectors, k, settings, sample_queries=sample)
    if report["index"] == "ivf":
        report["tuning_queries_from"] = source
    model = VectorRetrieval(layer, ids)
    result = export(
        model,
        output_dir,
        model_name,
        examples={"query": vectors[: min(4, len(vectors))]},
        signatures={"serving_default": model.serve},
        target=target or DEFAULT_TARGET,
        assets_extra={INDEX_FILE: json.dumps(report, indent=1)},
        metadata={
            "index": index_metadata(report),
            "item_vectors": os.fspath(item_vectors),
            "id_column": id_column,
        },
    )
    return {"path": result.path, "version": result.version, "index": index_metadata(report)}


def query_vectors(path: str, dim: int) -> np.ndarray:
    """The `embedding` column of a Parquet file, `[Q, dim]` float32."""
    import fsspec
    import pyarrow.parquet as pq

    from keras_rec.data.errors import DataValidationError

    with fsspec.open(path, "rb") as file:
        table = pq.read_table(file, columns=None)
    if "embedding" not in table.column_names:
        raise DataValidationError(
            f"File '{path}' has no `embedding` column. Columns present: {table.column_names}."
        )
    rows = table.column("embedding").to_pylist()
    widths = {len(row) if row is not None else 0 for row in rows}
    if widths != {dim}:
        raise DataValidationError(
            f"File '{path}': queries must all have width {dim} (the item vectors'). "
            f"Received widths: {sorted(widths)}."
        )
    return np.asarray(rows, np.float32)
