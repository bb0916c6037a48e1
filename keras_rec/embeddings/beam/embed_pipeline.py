"""`embed_with_beam`: the `keras-rec embed` job as an Apache Beam pipeline.

    texts (CSV/TSV/Parquet/JSON Lines, any Beam filesystem)
      -> unique texts -> looked up in the embedding cache
      -> the missing ones spread over the workers, batched by length, encoded by RunInference
      -> committed to the cache, one shard per batch of `cache_shard_size`
      -> every row joined with its vector -> one Parquet file (id, text, embedding)

The cache is the one `keras-rec embed` uses (same namespace and key, same
shard + manifest layout, same atomic writes), so either fills it for the other.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

try:
    import apache_beam as beam
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "keras_rec.embeddings.beam needs Apache Beam: pip install 'keras_rec[beam]' "
        "(or `bash scripts/setup.sh beam`)."
    ) from error
import numpy as np
import pyarrow as pa
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.util import SortAndBatchElements

from keras_rec.data.errors import DataValidationError
from keras_rec.embeddings.beam.cache_steps import MISSING, SplitByCache, WriteToCache
from keras_rec.embeddings.beam.encoder_handler import TextEncoderModelHandler, text_length
from keras_rec.embeddings.beam.text_rows import (
    METRICS_NAMESPACE,
    ReadTextRows,
    arrow_type,
    first_file_sample,
)
from keras_rec.embeddings.embed_table import embedding_column
from keras_rec.embeddings.embedding_cache import EmbeddingCache, text_key
from keras_rec.embeddings.encoder_settings import EncoderSettings

# `--runner` short names; anything else is passed to Beam as it is.
RUNNERS = {
    "direct": "FnApiRunner",
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
    "prism": "PrismRunner",
    "portable": "PortableRunner",
}
# Runners whose workers do not share the launcher's disk.
_REMOTE_RUNNERS = ("DataflowRunner",)

# Unique texts looked up in the cache per step.
_LOOKUP_BATCH = 4096
# SortAndBatchElements caps batches by count only (the encoder truncates long texts).
_NO_WEIGHT_LIMIT = 2**62
# Output rows per Arrow table handed to the Parquet sink.
_OUTPUT_BATCH = 4096


def embed_with_beam(
    input_pattern: str,
    text_column: str,
    output_path: str,
    id_column: str | None = None,
    settings: EncoderSettings | None = None,
    cache: str | None = None,
    storage_options: dict[str, Any] | None = None,
    runner: str = "direct",
    beam_args: Sequence[str] = (),
    missing_text: str = "error",
    encoding: str = "utf-8",
    cache_shard_size: int = 4096,
    worker_threads: int | None = None,
) -> dict[str, Any]:
    """Embeds a text column on an Apache Beam runner, through the embedding cache.

    The output equals `keras-rec embed`'s (the id column when given, `text`,
    `embedding`), one row per input row; its row order is the runner's, not
    the input's. It is written by Beam's file sink (temporary files renamed
    when the pipeline succeeds): a failed run leaves no output.

    Args:
        input_pattern: str. A file or glob (`gs://bucket/texts-*.parquet`).
        text_column: str. The column to embed.
        output_path: str. The Parquet file to write (path or URL).
        id_column: str or None. Unique ids, copied to the output.
        settings: `EncoderSettings` or None. The encoder (`None`: the default
            sentence-transformer).
        cache: str or None. Cache root, a directory or URL all workers reach
            (`None`: the default local cache).
        storage_options: dict or None. fsspec options of the cache.
        runner: str. `"direct"` (in-process, no download), `"dataflow"`,
            `"flink"`, `"spark"`, `"prism"`, or a Beam runner class name.
        beam_args: Beam pipeline options, e.g. `["--direct_num_workers=2",
            "--direct_running_mode=multi_processing"]` or Dataflow's `--project`.
        missing_text: str. `"error"` or `"empty"`.
        encoding: str. Text encoding of CSV / JSON Lines input.
        cache_shard_size: int. Encoded texts per cache shard.
        worker_threads: int or None. Intra-op threads of each worker's model.
            `None`: the library default (all cores), except for the direct
            runner in `multi_processing` mode, where the cores are shared
            out among its `direct_num_workers` processes.

    Returns:
        A summary dict: rows, unique/cached/encoded counts, seconds, runner.
    """
    start = time.perf_counter()
    settings = settings or EncoderSettings()
    if not isinstance(cache_shard_size, int) or cache_shard_size < 1:
        raise ValueError(
            "`cache_shard_size` must be a positive integer. "
            f"Received: cache_shard_size={cache_shard_size!r}"
        )
    runner_name = RUNNERS.get(runner.lower(), runner) if isinstance(runner, str) else None
    if not runner_name:
        raise ValueError(f"`runner` must be a runner name. Received: runner={runner!r}")
    embedding_cache = EmbeddingCache(cache, storage_options)
    if runner_name in _REMOTE_RUNNERS:
        local = {
            name: value
            for name, value in (
                ("input", input_pattern),
                ("output", output_path),
                ("cache", embedding_cache.root),
            )
            if "://" not in str(value)
        }
        if local:
            raise ValueError(
                f"With runner={runner!r} the workers cannot see this machine's disk: pass "
                f"URLs they reach (gs://, s3://) for {sorted(local)}. Received: {local}"
            )
    options = _pipeline_options(beam_args)
    # The input is checked (and its id type learnt) before the model loads.
    columns = [text_column] + ([id_column] if id_column else [])
    sample = first_file_sample(input_pattern, columns, encoding)
    id_type = arrow_type(sample[id_column]) if id_column else None
    encoder = settings.build(show_progress_bar=False)
    identity = encoder.identity()
    del encoder
    schema = output_schema(identity["embedding_dim"], id_column, id_type)

    pipeline_runner = _runner(runner_name)
    if worker_threads is None and runner_name == RUNNERS["direct"]:
        worker_threads = _local_worker_threads(options)
    temporaries_before = _sink_temporaries(output_path)
    try:
        with beam.Pipeline(runner=pipeline_runner, options=options) as pipeline:
            _ = build_embed_pipeline(
                pipeline,
                input_pattern=input_pattern,
                text_column=text_column,
                id_column=id_column,
                output_path=output_path,
                settings=settings,
                identity=identity,
                cache_root=embedding_cache.root,
                storage_options=embedding_cache.storage_options,
                schema=schema,
                missing_text=missing_text,
                encoding=encoding,
                cache_shard_size=cache_shard_size,
                worker_threads=worker_threads,
            )
    except BaseException:
        # Beam's file sink removes its temporary directory only on success.
        _remove_sink_temporaries(output_path, keep=temporaries_before)
        raise
    counters = _counters(pipeline.result)
    seconds = time.perf_counter() - start
    return {
        "input": str(input_pattern),
        "output": str(output_path),
        "runner": runner_name,
        "beam_version": beam.__version__,
        "rows": counters.get("rows_read", 0),
        "num_rows_written": counters.get("rows_written", 0),
        "num_unique": counters.get("texts_cached", 0) + counters.get("texts_encoded", 0),
        "num_cached": counters.get("texts_cached", 0),
        "num_encoded": counters.get("texts_encoded", 0),
        "embedding_dim": identity["embedding_dim"],
        "cache": embedding_cache.root,
        "seconds": seconds,
    }


def build_embed_pipeline(
    pipeline,
    input_pattern: str,
    text_column: str,
    id_column: str | None,
    output_path: str,
    settings: EncoderSettings,
    identity: dict[str, Any],
    cache_root: str,
    storage_options: dict[str, Any],
    schema: pa.Schema,
    missing_text: str = "error",
    encoding: str = "utf-8",
    cache_shard_size: int = 4096,
    worker_threads: int | None = None,
):
    """Adds the embedding steps to `pipeline`; returns the `(id, text, vector)` rows."""
    rows = pipeline | "ReadTexts" >> ReadTextRows(
        input_pattern, text_column, id_column, missing_text, encoding
    )
    keyed_rows = rows | "KeyByText" >> beam.Map(lambda row: (text_key(row[1]), row))
    split = (
        keyed_rows
        | "KeyAndText" >> beam.Map(lambda keyed: (keyed[0], keyed[1][1]))
        | "UniqueTexts" >> beam.Distinct()
        | "LookupBatches" >> beam.BatchElements(_LOOKUP_BATCH, _LOOKUP_BATCH)
        | "SplitByCache"
        >> beam.ParDo(SplitByCache(cache_root, storage_options, identity)).with_outputs(
            MISSING, main="cached"
        )
    )
    encoded = (
        split[MISSING]
        # The texts to encode leave SplitByCache in few bundles: spread them
        # over the workers, then batch each worker's share sorted by length.
        | "SpreadTexts" >> beam.Reshuffle()
        | "LengthSortedBatches"
        >> SortAndBatchElements(
            settings.batch_size,
            settings.batch_size,
            max_batch_weight=_NO_WEIGHT_LIMIT,
            element_size_fn=text_length,
        )
        | "Encode"
        >> RunInference(
            TextEncoderModelHandler(settings, identity, threads=worker_threads).with_no_batching()
        )
        | "CacheShards" >> beam.BatchElements(cache_shard_size, cache_shard_size)
        | "WriteToCache" >> beam.ParDo(WriteToCache(cache_root, storage_options, identity))
    )
    vectors = (split["cached"], encoded) | "AllVectors" >> beam.Flatten()
    embedded = (
        {"rows": keyed_rows, "vectors": vectors}
        | "JoinRowsAndVectors" >> beam.CoGroupByKey()
        | "RowsWithVector" >> beam.FlatMap(_rows_with_vector)
    )
    duplicate_ids = beam.pvalue.AsSingleton(_repeated_ids(pipeline, rows, id_column))
    _ = (
        embedded
        | "OutputBatches" >> beam.BatchElements(_OUTPUT_BATCH, _OUTPUT_BATCH)
        | "ArrowTables" >> beam.ParDo(_ArrowTables(schema, id_column), duplicate_ids)
        | "WriteParquet"
        >> beam.io.WriteToParquetBatched(output_path, schema, num_shards=1, shard_name_template="")
    )
    return embedded


def output_schema(embedding_dim: int, id_column: str | None = None, id_type=None) -> pa.Schema:
    """The Arrow schema of the output: [`id_column` of `id_type`,] `text`, `embedding`."""
    fields = [
        pa.field("text", pa.string()),
        pa.field("embedding", pa.list_(pa.float32(), int(embedding_dim))),
    ]
    if id_column is not None:
        fields.insert(0, pa.field(id_column, id_type))
    return pa.schema(fields)


def _rows_with_vector(joined):
    key, grouped = joined
    vectors = list(grouped["vectors"])
    if not vectors:
        raise RuntimeError(f"No vector was made for the text with key {key}.")
    for row_id, text in grouped["rows"]:
        yield row_id, text, vectors[0]


def _repeated_ids(pipeline, rows, id_column: str | None):
    """One element: up to 10 `(id, count)` pairs of ids on several rows (`[]` without ids)."""
    if id_column is None:
        return pipeline | "NoIdColumn" >> beam.Create([[]])
    return (
        rows
        | "Ids" >> beam.Map(lambda row: row[0])
        | "CountIds" >> beam.combiners.Count.PerElement()
        | "Repeated" >> beam.Filter(lambda pair: pair[1] > 1)
        | "SomeRepeated" >> beam.combiners.Sample.FixedSizeGlobally(10)
    )


class _ArrowTables(beam.DoFn):
    """Batches of `(id, text, vector)` -> Arrow tables of the output schema."""

    def __init__(self, schema: pa.Schema, id_column: str | None):
        self.schema = schema
        self.id_column = id_column
        self.rows_written = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows_written")

    def process(self, batch, duplicate_ids):
        if duplicate_ids:
            shown = ", ".join(f"{value!r} ({count} rows)" for value, count in duplicate_ids)
            raise DataValidationError(
                f"The input's `{self.id_column}` column must hold unique ids; repeated: {shown}."
            )
        embedding = embedding_column(np.stack([vector for _, _, vector in batch]))
        columns = [pa.array([text for _, text, _ in batch], type=pa.string()), embedding]
        if self.id_column is not None:
            id_type = self.schema.field(0).type
            columns.insert(0, pa.array([row_id for row_id, _, _ in batch], type=id_type))
        self.rows_written.inc(len(batch))
        yield pa.Table.from_arrays(columns, schema=self.schema)


def _sink_temporaries(output_path: str) -> set[str]:
    """The `beam-temp-<output name>-*` directories Beam's file sink made beside the output."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(str(output_path))
    parent, name = os.path.split(path.rstrip("/"))
    try:
        entries = fs.ls(parent or ".", detail=False)
    except FileNotFoundError:
        return set()
    prefix = f"beam-temp-{name}-"
    return {entry for entry in entries if os.path.basename(entry.rstrip("/")).startswith(prefix)}


def _remove_sink_temporaries(output_path: str, keep: set[str]) -> None:
    import fsspec

    fs, _ = fsspec.core.url_to_fs(str(output_path))
    for entry in _sink_temporaries(output_path) - keep:
        fs.rm(entry, recursive=True)


def _pipeline_options(beam_args: Sequence[str]) -> PipelineOptions:
    """Beam's options; an option Beam does not know is an error (Beam would drop it)."""
    options = PipelineOptions(list(beam_args))
    known = options.get_all_options()
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
    if unknown:
        raise ValueError(
            f"Neither keras-rec embed nor Apache Beam knows the option(s) {unknown} "
            "(Beam would drop them). Check their spelling against Beam's pipeline "
            f"options. Received: {list(beam_args)}"
        )
    return options


def _local_worker_threads(options: PipelineOptions) -> int | None:
    """Cores per process of the direct runner's `multi_processing` mode (else None)."""
    from apache_beam.options.pipeline_options import DirectOptions

    direct = options.view_as(DirectOptions)
    workers = direct.direct_num_workers or 1
    if direct.direct_running_mode != "multi_processing" or workers < 2:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


def _runner(name: str):
    if name == RUNNERS["direct"]:
        # In-process; with `--direct_num_workers=N --direct_running_mode=multi_processing`
        # N worker processes. Beam's default local runner may download Prism instead.
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    return name


def _counters(result) -> dict[str, int]:
    from apache_beam.metrics.metric import MetricsFilter

    counters: dict[str, int] = {}
    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        counters[counter.key.metric.name] = counters.get(counter.key.metric.name, 0) + int(value)
    return counters
