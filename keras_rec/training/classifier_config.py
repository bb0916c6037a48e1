"""`ClassifierTrainingConfig`: the settings of `train_classifier` and its command's flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from keras_rec.precision import PRECISIONS
from keras_rec.training.config_flags import flag
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
        encoder_precision: str. `"float32"` or `"bfloat16"`: the TF Hub
            encoder export inside the served models (see `export_hub`).
        hub_dir: str or None. An existing `keras-rec export-hub` directory
            (`preprocess/`, `encoder/`) to use instead of `model`.
        trainable: bool. Fine-tune the encoder; else train the head on
            embeddings computed once through the embedding cache.
        epochs, batch_size: int.
        head_learning_rate, encoder_learning_rate: float.
        hidden_units: ints. Hidden layers of the head.
        dropout: float.
        validation_fraction, test_fraction: float. Stratified split.
        patience: int. Early stopping on validation loss (0: off).
        max_examples: int or None. Stratified subsample first (quick runs).
        model_name: str. Export name: `<output_dir>/<model_name>/<version>/`.
        mlflow_experiment: str. MLflow experiment name.

    The run settings (`seed`, `output_dir`, `cache`, `distribute`, `target`,
    `mlflow`) are `keras_rec.training.RunConfig`'s.
    """

    data: str = flag(
        "sentiment_tweets",
        "'sentiment_tweets' (built in) or a CSV/TSV/Parquet path or URL; a SageMaker "
        "channel directory holding one such file also works",
    )
    text_column: str = "text"
    label_column: str = "label"
    encoding: str = "utf-8"
    test_data: str | None = flag(None, "separate labelled file to evaluate on")
    model: str | None = flag(None, "sentence-transformer path or id (default: embedded MiniLM)")
    hub_dir: str | None = flag(None, "existing `keras-rec export-hub` output to use instead")
    trainable: bool = flag(False, "fine-tune the encoder")
    encoder_precision: str = flag(
        "float32",
        "precision of the exported TF Hub encoder inside the served models (bfloat16: "
        "faster on AMX CPUs, cosine >= 0.999 to float32; inference only)",
        choices=PRECISIONS,
    )
    epochs: int = 10
    batch_size: int = 32
    head_learning_rate: float = 1e-3
    encoder_learning_rate: float = 2e-5
    hidden_units: Sequence[int] = flag((128,), "hidden layers of the head")
    dropout: float = 0.2
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    patience: int = flag(3, "early stopping on validation loss (0: off)")
    max_examples: int | None = flag(None, "stratified subsample (quick runs)")
    model_name: str = flag("text_classifier", "export name: OUTPUT_DIR/MODEL_NAME/VERSION")
    mlflow_experiment: str = "keras_rec-text_classifier"

    def __post_init__(self):
        super().__post_init__()
        if self.trainable and self.encoder_precision != "float32":
            raise ValueError(
                "`encoder_precision` must be 'float32' when fine-tuning (`trainable=True`): "
                "bfloat16 encoder weights are for inference. Fine-tune in float32, then "
                "export the encoder with `keras-rec export-hub --precision bfloat16`. "
                f"Received: encoder_precision={self.encoder_precision!r}, trainable=True"
            )
