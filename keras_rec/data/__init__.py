"""Datasets, text builders and validated readers.

Imports only pandas, numpy, pyarrow (through pandas) and the standard
library: no TensorFlow or PyTorch.
"""

from __future__ import annotations

from keras_rec.data.errors import DataValidationError
from keras_rec.data.movielens import MovieLens100K, movielens_100k
from keras_rec.data.readers import read_interactions, read_table, read_text_labels
from keras_rec.data.sentiment import sentiment_tweets
from keras_rec.data.text_builders import (
    item_text,
    movielens_item_texts,
    movielens_item_titles,
    movielens_user_texts,
)

__all__ = [
    "DataValidationError",
    "MovieLens100K",
    "item_text",
    "movielens_100k",
    "movielens_item_texts",
    "movielens_item_titles",
    "movielens_user_texts",
    "read_interactions",
    "read_table",
    "read_text_labels",
    "sentiment_tweets",
]
