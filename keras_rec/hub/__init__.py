"""TF Hub modules in Keras 3: resolve, load as layers, convert sentence-transformers."""

from keras_rec.hub.handle import resolve_handle
from keras_rec.hub.hub_layer import HubLayer
from keras_rec.hub.wordpiece_preprocessor import (
    WordpiecePreprocessor,
    build_preprocessor,
    save_preprocessor,
)

__all__ = [
    "HubLayer",
    "WordpiecePreprocessor",
    "build_preprocessor",
    "resolve_handle",
    "save_preprocessor",
]
