"""`ClassifierTrainingConfig`: the settings of `train_classifier` and its command's flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from keras_rec.training.run_config import RunConfig


@dataclasses.dataclass
class ClassifierTrainingConfig(RunConfig):
    """Settings of `train_classifier` (the CLI flags of `keras-rec train-classifier`).

    Args:
        data: str. `"sentiment_tweets"` or a CSV/TSV/Parquet path or URL.
        text_column, label_column: str. Columns of `data`.
        encoding: str. Text encoding of a CSV file.
        test_data: str or None. A separate labelled file to evaluate on
            (instead of the test split); its labels must be known classes.
        model: str or None. Sentence-transformer path or id (None: the
            embedded all-MiniLM-L6-v2); exported once to TF Hub format.
        hub_dir: str or None. An existing `keras-rec export-hub` directory
            (`preprocess/`, `encoder/`) to use instead of `model`.
        trainable: bool. Fine-tune the encoder; else train the head on
            embeddings computed once through the embedding cache.
        epochs, batch_size: int.
        head_learning_rate, encoder_learning_rate: float.
        hidden_units: ints. Hidden layers of the head.
        dropout: float.
        validation_fraction, test_fraction: float. Stratified split.
        seed: int.
        patience: int. Early stopping on validation loss (0: off).
        max_examples: int or None. Stratified subsample first (quick runs).
        output_dir: str. Base directory of the exports (TF Serving's).
        model_name: str. Export name: `<output_dir>/<model_name>/<version>/`.
        cache: str or None. Embedding cache root (local or fsspec URL).
        distribute: str. `none`, `mirrored` or `multi_worker`.
        target: str. TF Serving build for the op check.
        mlflow: bool. Track the run with MLflow (also on when
            `MLFLOW_TRACKING_URI` is set; default store `sqlite:///mlruns.db`).
        mlflow_experiment: str. MLflow experiment name.
    """

    data: str = "sentiment_tweets"
    text_column: str = "text"
    label_column: str = "label"
    encoding: str = "utf-8"
    test_data: str | None = None
    model: str | None = None
    hub_dir: str | None = None
    trainable: bool = False
    epochs: int = 10
    batch_size: int = 32
    head_learning_rate: float = 1e-3
    encoder_learning_rate: float = 2e-5
    hidden_units: Sequence[int] = (128,)
    dropout: float = 0.2
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    patience: int = 3
    max_examples: int | None = None
    model_name: str = "text_classifier"
    mlflow_experiment: str = "keras_rec-text_classifier"
