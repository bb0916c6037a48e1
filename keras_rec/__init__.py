"""keras_rec: sentence-transformer models inside Keras 3 / TensorFlow.

Subpackages are imported on demand, so `import keras_rec` stays light (no
TensorFlow or PyTorch import):

- `keras_rec.data`: real datasets (MovieLens-100K, sentiment tweets), text
  builders and validated CSV/Parquet readers.
- `keras_rec.embeddings`: sentence-transformer encoding with a persistent,
  content-addressed cache (local directory or any fsspec URL).
- `keras_rec.hub`: sentence-transformers as TF Hub modules; `HubLayer`.
- `keras_rec.classifier`: text classifiers and their training script.
- `keras_rec.recommender`: two-tower retrieval, ranker, training script.
- `keras_rec.serving`: checked, versioned SavedModel exports for TF Serving.
- `keras_rec.tracking`: MLflow runs of the training scripts.
- `keras_rec.training`: run settings, the training scripts' flags, SageMaker
  conventions, strategies, resumable runs.
"""

from __future__ import annotations

import importlib
import os

from keras_rec.tensorflow_startup import HIDE_STARTUP_VARIABLE, hide_tensorflow_startup_lines

__version__ = "0.1.0"

_SUBPACKAGES = (
    "classifier",
    "data",
    "embeddings",
    "hub",
    "recommender",
    "serving",
    "tracking",
    "training",
)

__all__ = ["__version__", *_SUBPACKAGES]

# A process `keras-rec` started (e.g. a Beam worker) hides TensorFlow's start-up lines as it does.
if os.environ.get(HIDE_STARTUP_VARIABLE) == "1":
    hide_tensorflow_startup_lines()


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"keras_rec.{name}")
    raise AttributeError(f"module 'keras_rec' has no attribute {name!r}")
