"""Two-tower retrieval and ranking on precomputed sentence-transformer embeddings."""

from keras_rec.recommender.brute_force_top_k import BruteForceTopK
from keras_rec.recommender.id_dropout import IdDropout
from keras_rec.recommender.interactions import (
    InteractionSplit,
    check_interactions,
    cold_start_split,
    tfrs_protocol_split,
)
from keras_rec.recommender.lazy_adam import LazyAdam
from keras_rec.recommender.ranker import build_ranker
from keras_rec.recommender.recommender_inputs import RecommenderInputs, build_inputs
from keras_rec.recommender.retrieval_evaluation import (
    evaluate_retrieval,
    popularity_baseline,
)
from keras_rec.recommender.retrieval_metrics import (
    per_user_metrics,
    popularity_scores,
    top_k_categorical_accuracy,
)
from keras_rec.recommender.retrieval_serving import QueryRetrieval, UserRetrieval
from keras_rec.recommender.row_embedding import RowEmbedding
from keras_rec.recommender.tower import build_tower
from keras_rec.recommender.train_recommender import (
    RecommenderTrainingConfig,
    train_recommender,
)
from keras_rec.recommender.two_tower_retrieval import TwoTowerRetrieval, in_batch_logits
from keras_rec.recommender.user_data import load_user_inputs
from keras_rec.recommender.user_item_lists import UserItemLists

__all__ = [
    "BruteForceTopK",
    "IdDropout",
    "InteractionSplit",
    "LazyAdam",
    "QueryRetrieval",
    "RecommenderInputs",
    "RecommenderTrainingConfig",
    "RowEmbedding",
    "TwoTowerRetrieval",
    "UserItemLists",
    "UserRetrieval",
    "build_inputs",
    "build_ranker",
    "build_tower",
    "check_interactions",
    "cold_start_split",
    "evaluate_retrieval",
    "in_batch_logits",
    "load_user_inputs",
    "per_user_metrics",
    "popularity_baseline",
    "popularity_scores",
    "tfrs_protocol_split",
    "top_k_categorical_accuracy",
    "train_recommender",
]
