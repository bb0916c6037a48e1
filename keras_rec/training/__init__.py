"""What a training run needs besides its model: settings, flags, SageMaker, strategy, plots.

Importing it (and the script configs and parsers) does not import
TensorFlow, so `keras-rec train-* --help` and a rejected flag answer at once.
"""

from keras_rec.training.indexed_examples import IndexedExamples
from keras_rec.training.run_config import RunConfig

__all__ = ["IndexedExamples", "RunConfig"]
