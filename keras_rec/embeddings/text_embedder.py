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

    import os

    import tensorflow as tf

    from keras_rec.hub.hub_layer import register_tf_text_ops

    register_tf_text_ops()
    preprocess = tf.saved_model.load(os.path.join(hub_dir, "preprocess"))
    encoder = tf.saved_model.load(os.path.join(hub_dir, "encoder"))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed_batch(text):
        return encoder(preprocess(text), training=False)["sentence_embedding"]

    def embed(texts):
        texts = list(texts)
        parts = [
            embed_batch(tf.constant(texts[i : i + 64])).numpy() for i in range(0, len(texts), 64)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    return embed
