"""Stage 2, towers: the two-tower model trained with in-batch softmax, and its vectors."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

PREDICT_CHUNK = 65_536


@dataclasses.dataclass
class TrainedTowers:
    """The towers a training stage hands on.

    Attributes:
        retrieval: the trained `TwoTowerRetrieval`.
        history: its Keras `History` (`resumed_at` set on a resumed run).
        seconds: how long building and training took.
    """

    retrieval: Any
    history: Any
    seconds: float

    @property
    def epochs_run(self) -> int:
        return len(self.history.history.get("loss", []))

    def vectors(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        """`(user vectors [U, D], item vectors [N, D])` of every user and item row."""
        return tower_vectors(self.retrieval, inputs)


def train_towers(config, inputs, run, tracker) -> TrainedTowers:
    """The towers trained under `run.strategy`, logged to TensorBoard and `tracker`.

    With validation pairs, training stops early on `val_loss` (patience 2,
    best weights restored). Checkpoints (and resume) are the stage's own:
    `run.checkpoint_dir("retrieval")`.
    """
    callbacks = training_callbacks(run, tracker, inputs, patience=2)
    return TrainedTowers(
        *fit_retrieval(
            config,
            inputs,
            run.strategy,
            callbacks=callbacks,
            checkpoint_dir=run.checkpoint_dir("retrieval"),
            chief=run.chief,
        )
    )


def training_callbacks(run, tracker, inputs, patience: int) -> list:
    """TensorBoard logs, the tracker's callbacks and, with validation pairs, early stopping
    on `val_loss` (best weights restored)."""
    import keras

    callbacks = [
        keras.callbacks.TensorBoard(os.path.join(run.run_dir, "logs"), write_graph=False),
        *tracker.keras_callbacks(),
    ]
    if len(inputs.val_items):
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            )
        )
    return callbacks


def fit_retrieval(
    config,
    inputs,
    strategy=None,
    callbacks=None,
    checkpoint_dir: str | None = None,
    chief: bool = True,
    name: str = "retrieval",
):
    """Builds and trains the two towers; returns `(TwoTowerRetrieval, History, seconds)`.

    The model is built and compiled under `strategy.scope()` (default: the
    current strategy) and trained by `strategy_fit`, so `MirroredStrategy`
    and `MultiWorkerMirroredStrategy` replicate it; `config.batch_size` is
    the global batch, and each replica's in-batch softmax runs over all
    of it. Pairs stream as row indices (`IndexedExamples`): each batch's
    features are looked up in the user and item tables. `LazyAdam` updates
    only the id embeddings in the batch. With validation pairs, `val_loss`
    is logged each epoch. With `checkpoint_dir`, training resumes from (and
    writes) checkpoints there.
    """
    import tensorflow as tf

    from keras_rec.recommender.layers.lazy_adam import LazyAdam
    from keras_rec.training.strategy_fit import strategy_fit

    strategy = strategy or tf.distribute.get_strategy()
    start = time.perf_counter()
    with strategy.scope():
        retrieval = build_retrieval(config, inputs)
        retrieval.compile(optimizer=LazyAdam(config.learning_rate))
        retrieval(
            {
                "user": inputs.user_features(inputs.train_users[:2]),
                "item": inputs.item_features(inputs.train_items[:2]),
            }
        )
    validation = None
    if len(inputs.val_items):
        validation = training_pairs(inputs, config, inputs.val_users, inputs.val_items)
    history = strategy_fit(
        retrieval,
        training_pairs(inputs, config),
        config.batch_size,
        config.epochs,
        strategy=strategy,
        seed=config.seed,
        validation_examples=validation,
        callbacks=callbacks or [],
        checkpoint_dir=checkpoint_dir,
        checkpoint_steps=config.checkpoint_steps,
        chief=chief,
        name=name,
    )
    return retrieval, history, time.perf_counter() - start


def build_retrieval(config, inputs):
    """The untrained `TwoTowerRetrieval` of `config`'s tower settings, sized for `inputs`."""
    from keras_rec.recommender.layers.tower import build_tower
    from keras_rec.recommender.layers.two_tower_retrieval import TwoTowerRetrieval

    common = dict(
        output_dim=config.output_dim,
        hidden_units=tuple(config.hidden_units),
        dropout=config.dropout,
        weight_decay=config.weight_decay,
        id_dropout=config.id_dropout,
    )
    dim = inputs.embedding_dim
    user_tower = build_tower(
        dim,
        "user_tower",
        id_vocabulary_size=inputs.num_users + 1,
        feature_dim=dim if inputs.user_text else None,
        **common,
    )
    item_tower = build_tower(dim, "item_tower", id_vocabulary_size=inputs.num_items + 1, **common)
    return TwoTowerRetrieval(
        user_tower,
        item_tower,
        temperature=config.temperature,
        loss=config.loss,
        num_negatives=config.num_negatives,
        seed=config.seed,
    )


def training_pairs(inputs, config, users=None, items=None):
    """`IndexedExamples` of `{"user", "item", "item_key", "item_log_q"}` pairs (default: training).

    The pairs stay two int arrays; a batch's tower inputs are looked up in
    the user and item tables when the batch is made. `item_key` is the item
    row (accidental hits are the same row).
    """
    import tensorflow as tf

    from keras_rec.training.indexed_examples import IndexedExamples

    users = inputs.train_users if users is None else users
    items = inputs.train_items if items is None else items
    log_q = inputs.item_log_q() if config.log_q else None

    def gather(rows):
        user_rows, item_rows = users[rows], items[rows]
        x = {
            "user": inputs.user_features(user_rows),
            "item": inputs.item_features(item_rows),
            "item_key": item_rows,
        }
        if log_q is not None:
            x["item_log_q"] = log_q[item_rows]
        return x

    def specs(tables):
        return {
            name: tf.TensorSpec(
                [None, *np.shape(table)[1:]], tf.as_dtype(np.asarray(table[:1]).dtype)
            )
            for name, table in tables.items()
        }

    signature = {
        "user": specs(inputs.user_tables()),
        "item": specs(inputs.item_tables()),
        "item_key": tf.TensorSpec([None], tf.int64),
    }
    if log_q is not None:
        signature["item_log_q"] = tf.TensorSpec([None], tf.float32)
    return IndexedExamples(len(users), gather, signature)


def tower_vectors(retrieval, inputs) -> tuple[np.ndarray, np.ndarray]:
    """`(user vectors [U, D], item vectors [N, D])` of every user and item row."""
    return (
        predict_rows(retrieval.user_tower, inputs.user_features, inputs.num_users),
        predict_rows(retrieval.item_tower, inputs.item_features, inputs.num_items),
    )


def predict_rows(model, features, count: int, chunk: int = PREDICT_CHUNK) -> np.ndarray:
    """float32 outputs of `model` on `features(rows)` for rows `0 .. count - 1`, a chunk at a time.

    Only one chunk's features exist at once (a table's rows are looked up
    per chunk, not copied whole).
    """
    from keras_rec.training.local_predict import predict_locally

    parts = [
        np.asarray(
            predict_locally(model, features(np.arange(start, min(start + chunk, count)))),
            np.float32,
        )
        for start in range(0, count, chunk)
    ]
    return np.concatenate(parts)
