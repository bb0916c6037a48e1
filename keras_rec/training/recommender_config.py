"""`RecommenderTrainingConfig`: the settings of `train_recommender` and its command's flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

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
        seed: int.
        output_dir: str. Base directory of the exports (TF Serving's).
        cache: str or None. Embedding cache root (local or fsspec URL).
        distribute: str. `none`, `mirrored` or `multi_worker`.
        target: str. TF Serving build for the op check.
        mlflow: bool. Track the run with MLflow (also on when
            `MLFLOW_TRACKING_URI` is set; default store `sqlite:///mlruns.db`).
        mlflow_experiment: str. MLflow experiment name.
    """

    data: str | None = None
    model: str | None = None
    hub_dir: str | None = None
    epochs: int = 10
    batch_size: int = 512
    learning_rate: float = 1e-3
    loss: str = "softmax"
    temperature: float = 0.05
    log_q: bool = True
    num_negatives: int = 4
    id_dropout: float = 0.15
    output_dim: int = 128
    hidden_units: Sequence[int] = (256,)
    dropout: float = 0.1
    weight_decay: float = 1e-5
    k: int = 10
    cold_start_fraction: float = 0.0
    max_ratings: int | None = None
    ranker_task: str = "binary"
    ranker_epochs: int = 3
    ranker_negatives: int = 4
    mlflow_experiment: str = "keras_rec-recommender"
