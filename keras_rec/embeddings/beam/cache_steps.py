"""Beam steps between the texts and the `EmbeddingCache`: look up, then commit shards."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import numpy as np

from keras_rec.embeddings.beam.text_rows import METRICS_NAMESPACE
from keras_rec.embeddings.embedding_cache import EmbeddingCache

MISSING = "missing"


class _CacheStep(beam.DoFn):
    """Opens the cache namespace of `identity` once per DoFn instance."""

    def __init__(self, cache_root: str, storage_options: dict[str, Any], identity: dict[str, Any]):
        self.cache_root = cache_root
        self.storage_options = dict(storage_options)
        self.identity = dict(identity)
        self.store = None

    def setup(self):
        cache = EmbeddingCache(self.cache_root, self.storage_options)
        self.store = cache.namespace(self.identity)

    def finish_bundle(self):
        self.store.release_vectors()


class SplitByCache(_CacheStep):
    """Batches of `(key, text)` -> `(key, vector)` for texts in the cache; the rest on `missing`.

    The main output holds the cached vectors; the `MISSING` output the
    `(key, text)` pairs to encode.
    """

    def __init__(self, cache_root, storage_options, identity):
        super().__init__(cache_root, storage_options, identity)
        self.texts_cached = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "texts_cached")

    def process(self, batch):
        found, vectors = self.store.lookup([key for key, _ in batch])
        for position, pair in enumerate(batch):
            if found[position]:
                yield pair[0], vectors[position]
            else:
                yield beam.pvalue.TaggedOutput(MISSING, pair)
        self.texts_cached.inc(int(found.sum()))


class WriteToCache(_CacheStep):
    """Batches of `(key, vector)` -> one committed cache shard each; passes the pairs on.

    `CacheNamespace.add` writes the shard and then its manifest entry, each
    atomically: a bundle that fails (and is retried by the runner) leaves at
    most an unreferenced file, never a partial shard that readers see.
    """

    def __init__(self, cache_root, storage_options, identity):
        super().__init__(cache_root, storage_options, identity)
        self.texts_encoded = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "texts_encoded")

    def process(self, batch):
        keys = [key for key, _ in batch]
        self.store.add(keys, np.stack([vector for _, vector in batch]))
        self.texts_encoded.inc(len(keys))
        yield from batch
