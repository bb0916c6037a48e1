"""Two-tower retrieval and ranking on precomputed sentence-transformer embeddings."""

from keras_rec.recommender.data.interactions import (
    InteractionSplit,
    check_interactions,
    cold_start_split,
    tfrs_protocol_split,
)
from keras_rec.recommender.data.recommender_inputs import RecommenderInputs, build_inputs
from keras_rec.recommender.data.user_data import load_user_inputs
from keras_rec.recommender.data.user_item_lists import UserItemLists
from keras_rec.recommender.data.user_sequences import (
    latest_items,
    time_ordered_items,
    training_windows,
)
from keras_rec.recommender.evaluation.retrieval_evaluation import (
    evaluate_retrieval,
    popularity_baseline,
)
from keras_rec.recommender.evaluation.retrieval_metrics import (
    per_user_metrics,
    popularity_scores,
    top_k_categorical_accuracy,
)
from keras_rec.recommender.index.add_items import add_items
from keras_rec.recommender.index.brute_force_top_k import BruteForceTopK
from keras_rec.recommender.index.build_index import build_index
from keras_rec.recommender.index.item_index import ItemIndexSettings, build_item_index
from keras_rec.recommender.index.ivf_partitions import IVFPartitions, kmeans_partitions
from keras_rec.recommender.index.ivf_top_k import IVFTopK
from keras_rec.recommender.layers.causal_sequence_encoder import CausalSequenceEncoder
from keras_rec.recommender.layers.id_dropout import IdDropout
from keras_rec.recommender.layers.lazy_adam import LazyAdam
from keras_rec.recommender.layers.next_item_model import NextItemModel
from keras_rec.recommender.layers.ranker import build_ranker
from keras_rec.recommender.layers.row_embedding import RowEmbedding
from keras_rec.recommender.layers.tower import build_tower
from keras_rec.recommender.layers.two_tower_retrieval import TwoTowerRetrieval, in_batch_logits
from keras_rec.recommender.serving.next_items import NextItems
from keras_rec.recommender.serving.retrieval_serving import QueryRetrieval, UserRetrieval
from keras_rec.recommender.serving.vector_retrieval import VectorRetrieval
from keras_rec.recommender.train_recommender import (
    RecommenderTrainingConfig,
    train_recommender,
)

__all__ = [
    "BruteForceTopK",
    "CausalSequenceEncoder",
    "IVFPartitions",
    "IVFTopK",
    "IdDropout",
    "InteractionSplit",
    "ItemIndexSettings",
    "LazyAdam",
    "NextItemModel",
    "NextItems",
    "QueryRetrieval",
    "RecommenderInputs",
    "RecommenderTrainingConfig",
    "RowEmbedding",
    "TwoTowerRetrieval",
    "UserItemLists",
    "UserRetrieval",
    "VectorRetrieval",
    "add_items",
    "build_index",
    "build_inputs",
    "build_item_index",
    "build_ranker",
    "build_tower",
    "check_interactions",
    "cold_start_split",
    "evaluate_retrieval",
    "in_batch_logits",
    "kmeans_partitions",
    "latest_items",
    "load_user_inputs",
    "per_user_metrics",
    "popularity_baseline",
    "popularity_scores",
    "tfrs_protocol_split",
    "time_ordered_items",
    "top_k_categorical_accuracy",
    "train_recommender",
    "training_windows",
]
