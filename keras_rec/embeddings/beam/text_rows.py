"""`ReadTextRows`: the `(id, text)` rows of CSV/TSV/Parquet/JSON Lines files, in Beam."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from keras_rec.data.errors import DataValidationError
from keras_rec.data.readers import text_frame
from keras_rec.data.table_chunks import file_chunks

METRICS_NAMESPACE = "keras_rec"

# Rows read from a file per chunk (one pandas frame at a time in memory).
_CHUNK_ROWS = 50_000


def open_with_beam(path: str):
    """A binary file of any filesystem Beam knows (local, gs://, s3://, hdfs://...).

    Decompressed by extension (`.gz`), as `file_chunks` expects.
    """
    return FileSystems.open(path, compression_type=CompressionTypes.AUTO)


class ReadTextRows(beam.PTransform):
    """Reads `(id, text)` rows of every file matching `file_pattern`.

    Files are matched through Beam's filesystems and read one file per
    element (each by chunks), with the row checks of `keras-rec embed`: a
    missing text fails naming the file and row (or reads as `""` with
    `missing_text="empty"`); a missing id fails. `id` is `None` without an
    `id_column`.

    Args:
        file_pattern: str. A file, or a glob such as `gs://bucket/texts-*.parquet`.
        text_column: str. The column of texts.
        id_column: str or None. A column copied to the output with each text.
        missing_text: str. `"error"` or `"empty"`.
        encoding: str. Text encoding of CSV and JSON Lines files.
    """

    def __init__(
        self,
        file_pattern: str,
        text_column: str,
        id_column: str | None = None,
        missing_text: str = "error",
        encoding: str = "utf-8",
    ):
        super().__init__()
        self.file_pattern = file_pattern
        self.reader = _ReadFileRows(text_column, id_column, missing_text, encoding)

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchFiles"
            >> fileio.MatchFiles(
                self.file_pattern, empty_match_treatment=fileio.EmptyMatchTreatment.DISALLOW
            )
            | "FilePaths" >> beam.Map(lambda metadata: metadata.path)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadRows" >> beam.ParDo(self.reader)
        )


class _ReadFileRows(beam.DoFn):
    def __init__(self, text_column, id_column, missing_text, encoding):
        self.text_column = text_column
        self.id_column = id_column
        self.missing_text = missing_text
        self.encoding = encoding
        self.rows_read = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows_read")

    def process(self, path: str):
        columns = [self.text_column] + ([self.id_column] if self.id_column else [])
        position = 0
        for chunk in file_chunks(path, columns, _CHUNK_ROWS, self.encoding, open_with_beam):
            frame = text_frame(
                chunk,
                self.text_column,
                None,
                self.id_column,
                self.missing_text,
                f"File '{path}'",
                first_row=position,
            )
            position += len(frame)
            ids = frame["id"].tolist() if self.id_column else [None] * len(frame)
            yield from zip(ids, frame["text"].tolist())
            self.rows_read.inc(len(frame))
        if position == 0:
            raise DataValidationError(f"File '{path}' has no data rows.")


def first_file_sample(file_pattern: str, columns: list[str], encoding: str = "utf-8"):
    """The first rows of `columns` of the first file (by name) matching `file_pattern`.

    Read before a pipeline starts, so that a wrong pattern or column fails
    at once, and to learn the id column's type.

    Raises:
        FileNotFoundError: no file matches.
        DataValidationError: a column is missing, or the file has no rows.
    """
    matches = FileSystems.match([file_pattern])[0].metadata_list
    if not matches:
        raise FileNotFoundError(f"No file matches the input pattern '{file_pattern}'.")
    first = sorted(metadata.path for metadata in matches)[0]
    chunk = next(file_chunks(first, columns, 1000, encoding, open_with_beam), None)
    if chunk is None or chunk.empty:
        raise DataValidationError(f"File '{first}' has no data rows.")
    return chunk


def arrow_type(values) -> Any:
    """The Arrow type pandas `values` get in a Parquet file."""
    import pyarrow as pa

    frame = values.to_frame(name="values")
    return pa.Schema.from_pandas(frame, preserve_index=False).field("values").type
