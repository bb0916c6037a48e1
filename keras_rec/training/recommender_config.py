"""`RecommenderTrainingConfig`: the settings of `train_recommender` and its command's flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from keras_rec.training.config_flags import flag
from keras_rec.training.run_config import RunConfig


@dataclasses.dataclass
class RecommenderTrainingConfig(RunConfig):
    """Settings of `train_recommender` (the flags of `keras-rec train-recommender`).

    Args:
        data: str or None. A local MovieLens-100K directory (RecBole or
            GroupLens files); None fetches the default copy.
        model: str or None. Sentence-transformer path or id for the texts
            (None: the embedded all-MiniLM-L6-v2).
        hub_dir: str or None. An existing `keras-rec export-hub` directory
            to use instead of `model` (embeddings then come from it).
        epochs, batch_size, learning_rate: retrieval training (Adam).
        loss: str. `"softmax"` (in-batch) or `"sampled_bce"`.
        temperature: float. Softmax temperature of the cosine logits.
        log_q: bool. Log-Q correction of in-batch negatives.
        num_negatives: int. Negatives per user for `"sampled_bce"`.
        id_dropout: float. Share of training ids hidden from the towers, so
            they also learn from text alone (cold start).
        output_dim: int. Width of the tower outputs.
        hidden_units: ints. Hidden layers of each tower.
        dropout, weight_decay: float. Tower regularization.
        k: int. Items returned by the served retrieval models.
        cold_start_fraction: float. Share of items held out of training
            entirely for the cold-start evaluation (0: none).
        max_ratings: int or None. Use only the first ratings (quick runs).
        ranker_task: str. `"binary"` (liked vs sampled negatives) or `"rating"`.
        ranker_epochs: int.
        ranker_negatives: int. Sampled negatives per positive (binary task).
        mlflow_experiment: str. MLflow experiment name.

    The run settings (`seed`, `output_dir`, `cache`, `distribute`, `target`,
    `mlflow`) are `keras_rec.training.RunConfig`'s.
    """

    data: str | None = flag(
        None, "local MovieLens-100K directory (RecBole or GroupLens files; default: fetch)"
    )
    model: str | None = flag(None, "sentence-transformer path or id (default: embedded MiniLM)")
    hub_dir: str | None = flag(None, "existing `keras-rec export-hub` output to use instead")
    epochs: int = 10
    batch_size: int = 512
    learning_rate: float = 1e-3
    loss: str = flag("softmax", choices=("softmax", "sampled_bce"))
    temperature: float = 0.05
    log_q: bool = flag(True, "no log-Q correction of in-batch negatives")
    num_negatives: int = flag(4, "negatives per user with --loss sampled_bce")
    id_dropout: float = 0.15
    output_dim: int = 128
    hidden_units: Sequence[int] = flag((256,), "hidden layers of each tower")
    dropout: float = 0.1
    weight_decay: float = 1e-5
    k: int = flag(10, "items returned by the served retrieval")
    cold_start_fraction: float = flag(
        0.0, "share of items held out of training for the cold-start evaluation"
    )
    max_ratings: int | None = flag(None, "use only the first ratings (quick runs)")
    ranker_task: str = flag("binary", choices=("binary", "rating"))
    ranker_epochs: int = 3
    ranker_negatives: int = 4
    mlflow_experiment: str = "keras_rec-recommender"
