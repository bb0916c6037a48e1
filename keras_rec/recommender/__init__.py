"""Two-tower retrieval on precomputed sentence-transformer embeddings (work in progress)."""

from keras_rec.recommender.brute_force_top_k import BruteForceTopK
from keras_rec.recommender.ranker import build_ranker
from keras_rec.recommender.retrieval_metrics import (
    per_user_metrics,
    popularity_scores,
    top_k_categorical_accuracy,
)
from keras_rec.recommender.tower import build_tower
from keras_rec.recommender.two_tower_retrieval import TwoTowerRetrieval, in_batch_logits

__all__ = [
    "BruteForceTopK",
    "TwoTowerRetrieval",
    "build_ranker",
    "build_tower",
    "in_batch_logits",
    "per_user_metrics",
    "popularity_scores",
    "top_k_categorical_accuracy",
]
