"""Flags of `keras-rec train-recommender` (and `scripts/train_recommender.py`).

SageMaker-aware and strict like `train-classifier`: see
`keras_rec.training.sagemaker_job.parse_training_args`. Parsing imports no
TensorFlow: a rejected flag stops the run at once.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from keras_rec.training.config_flags import add_config_flags, config_from_args
from keras_rec.training.recommender_config import RecommenderTrainingConfig
from keras_rec.training.sagemaker_job import parse_training_args


def build_argument_parser(prog: str = "keras-rec train-recommender") -> argparse.ArgumentParser:
    """The training script's argument parser."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a two-tower recommender on MovieLens-100K from sentence-transformer "
        "embeddings of user and item texts, evaluate it beside a popularity baseline, and "
        "export user_tower, item_tower, ranker, retrieval and query_retrieval for TF Serving.",
    )
    add_config_flags(parser, RecommenderTrainingConfig)
    return parser


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parses `argv` (SageMaker-aware) and runs `train_recommender`."""
    args = parse_training_args(build_argument_parser(), argv)
    config = config_from_args(RecommenderTrainingConfig, args)
    from keras_rec.recommender.train_recommender import train_recommender

    return train_recommender(config)
