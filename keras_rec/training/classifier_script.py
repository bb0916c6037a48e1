"""Arguments of `keras-rec train-classifier` / `scripts/train_classifier.py`.

Parsed with `keras_rec.training.sagemaker_job.parse_training_args`, so the same
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
from keras_rec.training.config_flags import add_config_flags, config_from_args
from keras_rec.training.sagemaker_job import parse_training_args


def build_argument_parser(prog: str = "keras-rec train-classifier") -> argparse.ArgumentParser:
    """The training script's argument parser."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a text classifier (TF Hub preprocessor + sentence-transformer "
        "encoder + dense head), evaluate it, and export it for TF Serving.",
    )
    add_config_flags(parser, ClassifierTrainingConfig)
    return parser


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parses `argv` (SageMaker-aware) and runs `train_classifier`."""
    args = parse_training_args(build_argument_parser(), argv)
    data = args.data
    if os.path.isdir(data):  # a SageMaker channel directory
        files = sorted(
            name
            for name in os.listdir(data)
            if name.endswith((".csv", ".tsv", ".parquet", ".pq", ".csv.gz", ".tsv.gz"))
        )
        if len(files) != 1:
            raise ValueError(
                f"`--data` is a directory; it must hold exactly one CSV/TSV/Parquet file. "
                f"Found: {files}"
            )
        data = os.path.join(data, files[0])
    config = config_from_args(ClassifierTrainingConfig, args, data=data)
    from keras_rec.classifier.train_classifier import train_classifier

    return train_classifier(config)
