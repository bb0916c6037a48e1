"""TF Hub modules in Keras 3: resolve, load as layers, convert sentence-transformers."""

from keras_rec.hub.handle import resolve_handle
from keras_rec.hub.hub_layer import HubLayer

__all__ = ["HubLayer", "resolve_handle"]
