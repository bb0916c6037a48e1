"""Flags of `keras-rec train-recommender` (and `scripts/train_recommender.py`).

SageMaker-aware and strict like `train-classifier`: see
`keras_rec.training.sagemaker_env.parse_training_args`. Parsing imports no
TensorFlow: a rejected flag stops the run at once.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from keras_rec.training.recommender_config import RecommenderTrainingConfig
from keras_rec.training.script_arguments import (
    add_run_arguments,
    parse_hidden_units,
    parse_script_args,
)


def build_argument_parser(prog: str = "keras-rec train-recommender") -> argparse.ArgumentParser:
    """The training script's argument parser."""
    defaults = RecommenderTrainingConfig()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a two-tower recommender on MovieLens-100K from sentence-transformer "
        "embeddings of user and item texts, evaluate it beside a popularity baseline, and "
        "export user_tower, item_tower, ranker, retrieval and query_retrieval for TF Serving.",
    )
    add = parser.add_argument
    add("--data", default=None,
        help="local MovieLens-100K directory (RecBole or GroupLens files; default: fetch)")
    add("--model", default=None, help="sentence-transformer path or id (default: embedded MiniLM)")
    add("--hub-dir", default=None, help="existing `keras-rec export-hub` output to use instead")
    add("--epochs", type=int, default=defaults.epochs)
    add("--batch-size", type=int, default=defaults.batch_size)
    add("--learning-rate", type=float, default=defaults.learning_rate)
    add("--loss", choices=("softmax", "sampled_bce"), default=defaults.loss)
    add("--temperature", type=float, default=defaults.temperature)
    add("--no-log-q", action="store_true", help="no log-Q correction of in-batch negatives")
    add("--num-negatives", type=int, default=defaults.num_negatives,
        help="negatives per user with --loss sampled_bce")
    add("--id-dropout", type=float, default=defaults.id_dropout)
    add("--output-dim", type=int, default=defaults.output_dim)
    add("--hidden-units", default="256", help="comma-separated, e.g. 512,256; '' for none")
    add("--dropout", type=float, default=defaults.dropout)
    add("--weight-decay", type=float, default=defaults.weight_decay)
    add("--k", type=int, default=defaults.k, help="items returned by the served retrieval")
    add("--cold-start-fraction", type=float, default=defaults.cold_start_fraction,
        help="share of items held out of training for the cold-start evaluation")
    add("--max-ratings", type=int, default=None, help="use only the first ratings (quick runs)")
    add("--ranker-task", choices=("binary", "rating"), default=defaults.ranker_task)
    add("--ranker-epochs", type=int, default=defaults.ranker_epochs)
    add("--ranker-negatives", type=int, default=defaults.ranker_negatives)
    add("--seed", type=int, default=defaults.seed)
    add_run_arguments(parser, defaults)
    return parser


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parses `argv` (SageMaker-aware) and runs `train_recommender`."""
    args = parse_script_args(build_argument_parser(), argv)
    hidden_units = parse_hidden_units(args.hidden_units)
    config = RecommenderTrainingConfig(
        data=args.data, model=args.model, hub_dir=args.hub_dir, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, loss=args.loss,
        temperature=args.temperature, log_q=not args.no_log_q, num_negatives=args.num_negatives,
        id_dropout=args.id_dropout, output_dim=args.output_dim, hidden_units=hidden_units,
        dropout=args.dropout, weight_decay=args.weight_decay, k=args.k,
        cold_start_fraction=args.cold_start_fraction, max_ratings=args.max_ratings,
        ranker_task=args.ranker_task, ranker_epochs=args.ranker_epochs,
        ranker_negatives=args.ranker_negatives, seed=args.seed, output_dir=args.output_dir,
        cache=args.cache, distribute=args.distribute, target=args.target,
        mlflow=args.mlflow, mlflow_experiment=args.mlflow_experiment,
    )
    from keras_rec.recommender.train_recommender import train_recommender

    return train_recommender(config)
