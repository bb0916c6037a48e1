"""`HubSentenceEncoder`: texts -> vectors through exported TF Hub modules."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_rec.embeddings.sentence_encoder import _as_text_list
from keras_rec.precision import PRECISIONS

# The `backend` an identity names for vectors made by the TF Hub modules.
HUB_BACKEND = "tf-hub"


class HubSentenceEncoder:
    """The `preprocess/` + `encoder/` SavedModels of `keras-rec export-hub`, as an encoder.

    It has the interface of `SentenceEncoder` that `CachedEncoder` uses
    (`encode`, `identity`, `embedding_dim`), so TensorFlow can fill the
    embedding cache without PyTorch. Its identity names the source model's
    fingerprint recorded at export and `backend="tf-hub"`: its vectors equal
    the sentence-transformer's within float tolerance but get their own cache
    namespace.

    Args:
        hub_dir: str. A directory written by `keras-rec export-hub`.
        batch_size: int. Texts per encoder call.
        normalize: bool. L2-normalize the vectors.

    Example:

    >>> encoder = HubSentenceEncoder("/models/minilm_hub")
    >>> encoder.encode(["a text"]).shape
    (1, 384)
    """

    def __init__(self, hub_dir: str, batch_size: int = 64, normalize: bool = False):
        from keras_rec.hub.export_hub import METADATA_FILE, SENTENCE_EMBEDDING_KEY

        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
            )
        hub_dir = os.fspath(hub_dir)
        metadata_path = os.path.join(hub_dir, METADATA_FILE)
        missing = [
            path
            for path in (
                os.path.join(hub_dir, "preprocess"),
                os.path.join(hub_dir, "encoder"),
                metadata_path,
            )
            if not os.path.exists(path)
        ]
        if missing:
            raise ValueError(
                "`hub_dir` must be a `keras-rec export-hub` directory (preprocess/, encoder/ "
                f"and {METADATA_FILE}). Missing: {missing}. Received: hub_dir={hub_dir!r}"
            )
        with open(metadata_path) as file:
            self.metadata = json.load(file)
        self.hub_dir = hub_dir
        self.batch_size = batch_size
        self.normalize = bool(normalize)
        self._output_key = self.metadata.get("sentence_embedding_key", SENTENCE_EMBEDDING_KEY)
        # Loaded on the first `encode`: the identity needs only the metadata.
        self._embed_batch = None

    @property
    def embedding_dim(self) -> int:
        return int(self.metadata["embedding_dim"])

    @property
    def max_seq_length(self) -> int:
        return int(self.metadata["max_seq_length"])

    def identity(self) -> dict[str, Any]:
        """What determines the vectors (see `SentenceEncoder.identity`)."""
        identity = {
            "model_name": str(self.metadata["model"]),
            "model_fingerprint": self.metadata["model_fingerprint"],
            "max_seq_length": self.max_seq_length,
            "normalize": self.normalize,
            "embedding_dim": self.embedding_dim,
            "dtype": "float32",
            "backend": HUB_BACKEND,
        }
        precision = self.metadata.get("precision", PRECISIONS[0])
        if precision != PRECISIONS[0]:
            identity["precision"] = precision
        return identity

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encodes `texts` into a float32 array of shape `(len(texts), dim)`."""
        import tensorflow as tf

        texts = _as_text_list(texts)
        if self._embed_batch is None:
            self._embed_batch = _load_modules(self.hub_dir, self._output_key)
        parts = [
            self._embed_batch(tf.constant(texts[start : start + self.batch_size])).numpy()
            for start in range(0, len(texts), self.batch_size)
        ]
        if not parts:
            return np.zeros((0, self.embedding_dim), np.float32)
        vectors = np.concatenate(parts).astype(np.float32, copy=False)
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return vectors


def _load_modules(hub_dir: str, output_key: str):
    import tensorflow as tf

    from keras_rec.hub.hub_layer import register_tf_text_ops

    register_tf_text_ops()
    preprocess = tf.saved_model.load(os.path.join(hub_dir, "preprocess"))
    encoder = tf.saved_model.load(os.path.join(hub_dir, "encoder"))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed_batch(text):
        return encoder(preprocess(text), training=False)[output_key]

    # The modules must outlive the function that captured them.
    embed_batch.modules = (preprocess, encoder)
    return embed_batch
