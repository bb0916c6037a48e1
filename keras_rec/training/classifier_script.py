"""Arguments of `keras-rec train-classifier` / `scripts/train_classifier.py`.

Parsed with `keras_rec.training.sagemaker_env.parse_training_args`, so the same
script runs locally and as a SageMaker training job (hyperparameters from
`SM_HPS` or the command line, `--output-dir` defaulting to `SM_MODEL_DIR`,
`--data` to `SM_CHANNEL_TRAINING`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from keras_rec.training.classifier_config import ClassifierTrainingConfig
from keras_rec.training.script_arguments import (
    add_run_arguments,
    parse_hidden_units,
    parse_script_args,
)


def build_argument_parser(prog: str = "keras-rec train-classifier") -> argparse.ArgumentParser:
    """The training script's argument parser."""
    defaults = ClassifierTrainingConfig()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a text classifier (TF Hub preprocessor + sentence-transformer "
        "encoder + dense head), evaluate it, and export it for TF Serving.",
    )
    add = parser.add_argument
    add("--data", default=defaults.data,
        help="'sentiment_tweets' (built in) or a CSV/TSV/Parquet path or URL; a SageMaker "
        "channel directory holding one such file also works")
    add("--text-column", default=defaults.text_column)
    add("--label-column", default=defaults.label_column)
    add("--encoding", default=defaults.encoding)
    add("--test-data", default=None, help="separate labelled file to evaluate on")
    add("--model", default=None, help="sentence-transformer path or id (default: embedded MiniLM)")
    add("--hub-dir", default=None, help="existing `keras-rec export-hub` output to use instead")
    add("--trainable", action="store_true", help="fine-tune the encoder")
    add("--epochs", type=int, default=defaults.epochs)
    add("--batch-size", type=int, default=defaults.batch_size)
    add("--head-learning-rate", type=float, default=defaults.head_learning_rate)
    add("--encoder-learning-rate", type=float, default=defaults.encoder_learning_rate)
    add("--hidden-units", default="128", help="comma-separated, e.g. 256,64; '' for none")
    add("--dropout", type=float, default=defaults.dropout)
    add("--validation-fraction", type=float, default=defaults.validation_fraction)
    add("--test-fraction", type=float, default=defaults.test_fraction)
    add("--seed", type=int, default=defaults.seed)
    add("--patience", type=int, default=defaults.patience)
    add("--max-examples", type=int, default=None, help="stratified subsample (quick runs)")
    add("--model-name", default=defaults.model_name)
    add_run_arguments(parser, defaults)
    return parser


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parses `argv` (SageMaker-aware) and runs `train_classifier`."""
    args = parse_script_args(build_argument_parser(), argv)
    hidden_units = parse_hidden_units(args.hidden_units)
    data = args.data
    if os.path.isdir(data):  # a SageMaker channel directory
        files = sorted(
            name for name in os.listdir(data)
            if name.endswith((".csv", ".tsv", ".parquet", ".pq", ".csv.gz", ".tsv.gz"))
        )
        if len(files) != 1:
            raise ValueError(
                f"`--data` is a directory; it must hold exactly one CSV/TSV/Parquet file. "
                f"Found: {files}"
            )
        data = os.path.join(data, files[0])
    config = ClassifierTrainingConfig(
        data=data, text_column=args.text_column, label_column=args.label_column,
        encoding=args.encoding, test_data=args.test_data, model=args.model,
        hub_dir=args.hub_dir, trainable=args.trainable, epochs=args.epochs,
        batch_size=args.batch_size, head_learning_rate=args.head_learning_rate,
        encoder_learning_rate=args.encoder_learning_rate, hidden_units=hidden_units,
        dropout=args.dropout, validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction, seed=args.seed, patience=args.patience,
        max_examples=args.max_examples, output_dir=args.output_dir,
        model_name=args.model_name, cache=args.cache, distribute=args.distribute,
        target=args.target, mlflow=args.mlflow, mlflow_experiment=args.mlflow_experiment,
    )
    from keras_rec.classifier.train_classifier import train_classifier

    return train_classifier(config)
