"""`text_embedder`: texts -> sentence embeddings, through the cache or a hub encoder."""

from __future__ import annotations

import numpy as np


def text_embedder(sentence_encoder=None, cache=None, hub_dir: str | None = None):
    """Returns `embed(texts) -> float32 [N, D]`.

    With a `SentenceEncoder`, texts go through a `CachedEncoder` on `cache`
    (texts already cached are not encoded again); the function counts them
    in its `encoded` and `cached` attributes and keeps the encoder as
    `sentence_encoder`. Without one, the TF Hub
    `preprocess/` and `encoder/` SavedModels of `hub_dir` embed every text.

    Args:
        sentence_encoder: `SentenceEncoder` or None.
        cache: embedding cache root (local path or fsspec URL) or None.
        hub_dir: str. Used when `sentence_encoder` is None.
    """
    if sentence_encoder is not None:
        from keras_rec.embeddings import CachedEncoder

        cached = CachedEncoder(sentence_encoder, cache=cache)

        def embed_cached(texts):
            vectors = np.asarray(cached.encode(list(texts)), dtype=np.float32)
            embed_cached.encoded += cached.last_report.num_encoded
            embed_cached.cached += cached.last_report.num_cached
            return vectors

        embed_cached.encoded = embed_cached.cached = 0
        embed_cached.sentence_encoder = sentence_encoder
        return embed_cached
    if hub_dir is None:
        raise ValueError("Pass a `sentence_encoder` or a `hub_dir`.")
    from keras_rec.embeddings.hub_sentence_encoder import HubSentenceEncoder

    return HubSentenceEncoder(hub_dir).encode
