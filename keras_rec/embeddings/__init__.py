"""Sentence-transformer encoding with a persistent, content-addressed cache."""

from keras_rec.embeddings.cached_encoder import CachedEncoder, EncodeReport, parse_shard
from keras_rec.embeddings.embedding_cache import CacheNamespace, EmbeddingCache, text_key
from keras_rec.embeddings.encoder_settings import EncoderSettings
from keras_rec.embeddings.hub_sentence_encoder import HubSentenceEncoder
from keras_rec.embeddings.sentence_encoder import DEFAULT_MODEL, SentenceEncoder

__all__ = [
    "DEFAULT_MODEL",
    "CacheNamespace",
    "CachedEncoder",
    "EmbeddingCache",
    "EncodeReport",
    "EncoderSettings",
    "HubSentenceEncoder",
    "SentenceEncoder",
    "parse_shard",
    "text_key",
]
