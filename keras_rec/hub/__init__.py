"""TF Hub modules in Keras 3: resolve, load as layers, convert sentence-transformers."""

from keras_rec.hub.export_hub import export_hub
from keras_rec.hub.handle import resolve_handle
from keras_rec.hub.hub_layer import HubLayer
from keras_rec.hub.local_hub import hub_modules
from keras_rec.hub.wordpiece_preprocessor import (
    WordpiecePreprocessor,
    build_preprocessor,
    save_preprocessor,
)

__all__ = [
    "HubLayer",
    "WordpiecePreprocessor",
    "build_preprocessor",
    "export_hub",
    "hub_modules",
    "resolve_handle",
    "save_preprocessor",
]
