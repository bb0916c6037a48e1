"""`CachedEncoder`: encode only the texts the cache does not hold yet."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_rec.embeddings.embedding_cache import EmbeddingCache, iter_chunks, text_key
from keras_rec.embeddings.sentence_encoder import SentenceEncoder, _as_text_list


@dataclasses.dataclass(frozen=True)
class EncodeReport:
    """What one `CachedEncoder` call did.

    Attributes:
        num_texts: texts asked for (duplicates included).
        num_unique: distinct texts among them.
        num_selected: distinct texts this call was responsible for (all of
            them, or the ones in its `shard`).
        num_cached: selected texts found in the cache.
        num_encoded: selected texts encoded by the model and written to the cache.
        seconds: wall time of the call.
    """

    num_texts: int
    num_unique: int
    num_selected: int
    num_cached: int
    num_encoded: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """Parses `"I/N"` (0 <= I < N) into `(I, N)`; `None` stays `None`."""
    if shard is None:
        return None
    if isinstance(shard, str):
        parts = shard.split("/")
        try:
            index, count = (int(part) for part in parts)
        except ValueError:
            raise ValueError(
                f"`shard` must look like 'I/N' with integers 0 <= I < N. Received: shard={shard!r}"
            ) from None
    else:
        index, count = shard
    if not (
        isinstance(count, int) and count >= 1 and isinstance(index, int) and 0 <= index < count
    ):
        raise ValueError(f"`shard` must satisfy 0 <= I < N. Received: shard={shard!r}")
    return index, count


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    """Whether a text key belongs to worker `shard[0]` of `shard[1]`."""
    index, count = shard
    return int(key[:15], 16) % count == index


class CachedEncoder:
    """A `SentenceEncoder` in front of an `EmbeddingCache`.

    Texts already in the cache are read back; only the others are encoded,
    longest first, in chunks of `chunk_size` texts. Each chunk is committed
    to the cache as one shard as soon as it is encoded, so a run that is
    killed resumes where it stopped.

    Args:
        encoder: `SentenceEncoder`, `HubSentenceEncoder` or None. `None`
            builds the default (all-MiniLM-L6-v2, embedded).
        cache: `EmbeddingCache`, str or None. A cache, or its root (local
            directory or fsspec URL). `None` uses the default local cache.
        chunk_size: int. Texts encoded per committed shard.

    Example:

    >>> encoder = keras_rec.embeddings.CachedEncoder(cache="/tmp/vectors")
    >>> vectors = encoder.encode(["a text", "another text"])
    >>> encoder.last_report.num_encoded
    2
    >>> vectors = encoder.encode(["a text", "another text"])
    >>> encoder.last_report.num_encoded
    0
    """

    def __init__(
        self,
        encoder: SentenceEncoder | None = None,
        cache: EmbeddingCache | str | None = None,
        chunk_size: int = 4096,
    ):
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(
                f"`chunk_size` must be a positive integer. Received: chunk_size={chunk_size!r}"
            )
        self.encoder = encoder if encoder is not None else SentenceEncoder()
        self.cache = cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
        self.chunk_size = chunk_size
        self.store = self.cache.namespace(self.encoder.identity())
        self.last_report: EncodeReport | None = None

    @property
    def embedding_dim(self) -> int:
        return self.encoder.embedding_dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Returns float32 vectors `(len(texts), dim)`, encoding only cache misses."""
        vectors, _ = self._run(texts, shard=None, want_vectors=True)
        return vectors

    def fill(
        self, texts: Sequence[str], shard: str | tuple[int, int] | None = None
    ) -> EncodeReport:
        """Makes sure the cache holds `texts` (or this worker's `shard` of them).

        `shard="I/N"` lets N workers fill one cache together: worker I
        encodes only the texts whose key falls in its part. Returns the report.
        """
        _, report = self._run(texts, shard=parse_shard(shard), want_vectors=False)
        return report

    def _run(self, texts, shard, want_vectors):
        start = time.perf_counter()
        texts = _as_text_list(texts)
        keys = [text_key(text) for text in texts]
        first_position: dict[str, int] = {}
        for position, key in enumerate(keys):
            first_position.setdefault(key, position)
        unique_keys = list(first_position)
        selected = unique_keys if shard is None else [k for k in unique_keys if in_shard(k, shard)]

        found, selected_vectors = self.store.lookup(selected)
        missing_rows = np.flatnonzero(~found)
        # Longest first: batches of similar length waste less padding, and the
        # slowest chunk is done (and committed) first.
        order = sorted(
            missing_rows.tolist(),
            key=lambda row: len(texts[first_position[selected[row]]]),
            reverse=True,
        )
        for chunk_rows in iter_chunks(order, self.chunk_size):
            chunk_keys = [selected[row] for row in chunk_rows]
            chunk_vectors = self.encoder.encode([texts[first_position[k]] for k in chunk_keys])
            self.store.add(chunk_keys, chunk_vectors)
            selected_vectors[chunk_rows] = chunk_vectors

        vectors = None
        if want_vectors:  # Only without a shard, so `selected` is every unique key.
            row_of = {key: row for row, key in enumerate(selected)}
            vectors = selected_vectors[[row_of[key] for key in keys]]
        self.last_report = EncodeReport(
            num_texts=len(texts),
            num_unique=len(unique_keys),
            num_selected=len(selected),
            num_cached=len(selected) - len(missing_rows),
            num_encoded=len(missing_rows),
            seconds=time.perf_counter() - start,
        )
        return vectors, self.last_report
