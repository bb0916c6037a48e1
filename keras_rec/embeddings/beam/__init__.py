"""Batch embedding on Apache Beam (`pip install 'keras_rec[beam]'`).

`embed_with_beam` runs `keras-rec embed` as a Beam pipeline: on the
in-process runner, or on Dataflow, Flink or Spark, filling the same
embedding cache.
"""

from keras_rec.embeddings.beam.embed_pipeline import (
    RUNNERS,
    build_embed_pipeline,
    embed_with_beam,
    output_schema,
)
from keras_rec.embeddings.beam.encoder_handler import TextEncoderModelHandler

__all__ = [
    "RUNNERS",
    "TextEncoderModelHandler",
    "build_embed_pipeline",
    "embed_with_beam",
    "output_schema",
]
