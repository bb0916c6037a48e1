"""Stage 2 with `--user-model sequence`: the next-item model over each user's latest items."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from keras_rec.recommender.data.user_sequences import (
    PADDING_ROW,
    latest_items,
    time_gap_buckets,
    time_ordered_items,
    training_windows,
)
from keras_rec.user_model_choices import FULL_SOFTMAX_MAX_ITEMS


@dataclasses.dataclass
class TrainedSequence:
    """The sequence model a training stage hands on (the towers stage's counterpart).

    Attributes:
        retrieval: the trained `NextItemModel` (its `item_tower` is exported).
        history: its Keras `History`.
        seconds: how long building and training took.
    """

    retrieval: Any
    history: Any
    seconds: float

    @property
    def epochs_run(self) -> int:
        return len(self.history.history.get("loss", []))

    def vectors(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        """`(user query vectors [U, D], item vectors [N, D])` from every user's known items."""
        return sequence_vectors(self.retrieval, inputs)


def sequence_loss(config, num_items: int) -> str:
    """The loss `config.sequence_loss` names ("auto": full softmax up to the size limit)."""
    if config.sequence_loss != "auto":
        return config.sequence_loss
    return "softmax" if num_items <= FULL_SOFTMAX_MAX_ITEMS else "sampled_softmax"


def train_sequence(config, inputs, run, tracker) -> TrainedSequence:
    """The sequence model trained under `run.strategy`, stopped early on the validation loss."""
    from keras_rec.recommender.stages.towers import training_callbacks

    callbacks = training_callbacks(run, tracker, inputs, patience=3)
    return TrainedSequence(
        *fit_sequence(
            config,
            inputs,
            run.strategy,
            callbacks=callbacks,
            checkpoint_dir=run.checkpoint_dir("sequence"),
            chief=run.chief,
        )
    )


def fit_sequence(
    config,
    inputs,
    strategy=None,
    callbacks=None,
    checkpoint_dir: str | None = None,
    chief: bool = True,
    name: str = "sequence",
    epochs: int | None = None,
):
    """Builds and trains a `NextItemModel`; returns `(model, History, seconds)`.

    Training examples are windows of each user's time-ordered training
    items (`training_windows`), streamed as row indices by `strategy_fit`
    (so `MirroredStrategy` / `MultiWorkerMirroredStrategy` and resumable
    checkpoints work as for the towers). With validation pairs, `val_loss`
    is the loss of predicting each validation item from the user's latest
    training items.
    """
    import tensorflow as tf

    from keras_rec.recommender.layers.lazy_adam import LazyAdam
    from keras_rec.training.strategy_fit import strategy_fit

    strategy = strategy or tf.distribute.get_strategy()
    start = time.perf_counter()
    sequences, gaps = user_sequences(inputs, config.sequence_time_gaps)
    windows = training_windows(sequences, config.max_history)
    gap_windows = (
        None if gaps is None else window_gaps(training_windows(gaps, config.max_history), windows)
    )
    with strategy.scope():
        model = build_sequence_model(config, inputs)
        model.compile(optimizer=LazyAdam(config.learning_rate))
        empty = np.full((1, config.max_history), PADDING_ROW, np.int64)
        model({"history": empty, "gaps": np.zeros_like(empty)})
        counts = np.bincount(windows[:, 1:][windows[:, 1:] >= 0], minlength=inputs.num_items)
        model.set_items(
            inputs.item_embeddings,
            inputs.item_id_index,
            np.log(np.maximum(counts, 1.0) / max(counts.sum(), 1.0)),
        )
    validation = None
    if len(inputs.val_items):
        held = validation_windows(sequences, inputs.val_users, inputs.val_items, config.max_history)
        held_gaps = None
        if gaps is not None:
            held_gaps = window_gaps(
                validation_windows(gaps, inputs.val_users, inputs.val_items, config.max_history),
                held,
            )
        validation = window_examples(held, held_gaps)
    history = strategy_fit(
        model,
        window_examples(windows, gap_windows),
        config.sequence_batch_size,
        epochs or config.sequence_epochs,
        strategy=strategy,
        seed=config.seed,
        validation_examples=validation,
        callbacks=callbacks or [],
        checkpoint_dir=checkpoint_dir,
        checkpoint_steps=config.checkpoint_steps,
        chief=chief,
        name=name,
    )
    return model, history, time.perf_counter() - start


def build_sequence_model(config, inputs):
    """The untrained `NextItemModel` of `config`, with an item tower like the towers'."""
    from keras_rec.recommender.layers.next_item_model import NextItemModel
    from keras_rec.recommender.layers.tower import build_tower

    item_tower = build_tower(
        inputs.embedding_dim,
        "item_tower",
        output_dim=config.output_dim,
        hidden_units=tuple(config.hidden_units),
        dropout=config.dropout,
        weight_decay=config.weight_decay,
        id_vocabulary_size=inputs.num_items + 1,
        id_dropout=config.id_dropout,
    )
    return NextItemModel(
        item_tower,
        inputs.num_items,
        inputs.embedding_dim,
        max_history=config.max_history,
        num_layers=config.sequence_layers,
        num_heads=config.sequence_heads,
        dropout=config.sequence_dropout,
        temperature=config.sequence_temperature,
        loss=sequence_loss(config, inputs.num_items),
        time_gaps=config.sequence_time_gaps,
        seed=config.seed,
    )


def user_sequences(inputs, time_gaps: bool):
    """`(items, gaps or None)`: each user's training items in time order (`UserItemLists`),
    and with `time_gaps` each one's gap bucket in the same order (`time_gap_buckets`)."""
    pairs = (inputs.train_users, inputs.train_items, inputs.train_times, inputs.num_users)
    return time_ordered_items(*pairs), time_gap_buckets(*pairs) if time_gaps else None


def window_gaps(gap_windows: np.ndarray, item_windows: np.ndarray) -> np.ndarray:
    """The gap buckets of windows, 0 at padding and at each window's oldest item.

    A `next_items` request carries a user's latest items only: its oldest
    has no item before it, so no gap. Windows and stored queries read gaps
    the same way.
    """
    gaps = np.where(item_windows >= 0, np.maximum(gap_windows, 0), 0)
    oldest = (item_windows < 0).sum(axis=1)
    inside = oldest < gaps.shape[1]
    gaps[np.flatnonzero(inside), oldest[inside]] = 0
    return gaps


def validation_windows(sequences, val_users, val_items, max_history: int) -> np.ndarray:
    """`[V, max_history + 1]` windows: each user's latest training items, then a validation item."""
    history = latest_items(sequences, max_history, np.asarray(val_users, np.int64))
    return np.concatenate([history, np.asarray(val_items, np.int64)[:, None]], axis=1)


def window_examples(windows: np.ndarray, gap_windows: np.ndarray | None = None):
    """`IndexedExamples` of `{"history", "targets"[, "gaps"]}` from windows: the inputs, the
    next items, and each input's gap bucket when `gap_windows` are given."""
    import tensorflow as tf

    from keras_rec.training.indexed_examples import IndexedExamples

    length = windows.shape[1] - 1
    spec = tf.TensorSpec([None, length], tf.int64)

    def examples(rows):
        batch = {"history": windows[rows, :-1], "targets": windows[rows, 1:]}
        if gap_windows is not None:
            batch["gaps"] = gap_windows[rows, :-1]
        return batch

    specs = {"history": spec, "targets": spec}
    if gap_windows is not None:
        specs["gaps"] = spec
    return IndexedExamples(len(windows), examples, specs)


def sequence_vectors(model, inputs, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """`(user queries [U, D], item vectors [N, D])`: each user's next-item query, every item.

    A user's query reads their latest *training* items, in time order (after
    the refit, training holds the validation pairs too); a user with none
    gets a zero vector. Validation pairs are never read before the refit:
    the validation figures and the re-ranker's candidates would otherwise
    see the very item they are scored on.
    """
    from keras_rec.training.local_predict import predict_locally

    sequences, gaps = user_sequences(inputs, model.time_gaps)
    items = np.asarray(model.item_vectors(training=False), np.float32)
    queries = []
    for start in range(0, inputs.num_users, chunk):
        users = np.arange(start, min(start + chunk, inputs.num_users))
        history = latest_items(sequences, model.max_history, users)
        features = {"history": history}
        if gaps is not None:
            features["gaps"] = window_gaps(latest_items(gaps, model.max_history, users), history)
        states = np.asarray(predict_locally(model, features), np.float32)[:, -1, :]
        states[history[:, -1] < 0] = 0.0
        queries.append(states)
    return np.concatenate(queries), items
