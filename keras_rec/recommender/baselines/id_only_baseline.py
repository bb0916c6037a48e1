"""The TFRS basic-retrieval tutorial's model, rebuilt in Keras 3 as a baseline.

TFRS's tutorial trains a user and a movie tower that are each one
32-dimensional embedding over ids, with TFRS's `Retrieval` task (in-batch
softmax on raw dot products summed over the batch: no temperature, no
normalization, no log-Q, accidental hits kept), Adagrad at 0.1, batches of 8,192, 3 epochs. This
module builds the same model on `TwoTowerRetrieval` so the comparison runs
in one process on one split.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_rec.recommender.layers.two_tower_retrieval import TwoTowerRetrieval

TFRS_EMBEDDING_DIM = 32
TFRS_LEARNING_RATE = 0.1
TFRS_BATCH_SIZE = 8192
TFRS_EPOCHS = 3


def build_id_tower(num_ids: int, name: str, embedding_dim: int = TFRS_EMBEDDING_DIM) -> keras.Model:
    """int64 id `[B]` (0 = unknown) -> its embedding `[B, embedding_dim]`."""
    ids = keras.Input(shape=(), dtype="int64", name="id")
    vectors = keras.layers.Embedding(num_ids + 1, embedding_dim, name="id_embedding")(ids)
    return keras.Model(ids, vectors, name=name)


def train_id_only_baseline(
    train_users: np.ndarray,
    train_items: np.ndarray,
    num_users: int,
    num_items: int,
    epochs: int = TFRS_EPOCHS,
    batch_size: int = TFRS_BATCH_SIZE,
    seed: int = 42,
    on_epoch=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Trains the tutorial's model; returns `(user_vectors [U, 32], item_vectors [N, 32])`.

    Ids are row indices + 1 (0 is the tutorial's out-of-vocabulary slot).
    The training pairs are reshuffled every epoch, as `train.shuffle(100_000)`
    does in the tutorial. `on_epoch(epoch, user_vectors, item_vectors)`, when
    given, is called after each epoch (to choose the epochs on validation).
    """
    keras.utils.set_random_seed(seed)
    model = TwoTowerRetrieval(
        build_id_tower(num_users, "user_ids"),
        build_id_tower(num_items, "item_ids"),
        temperature=1.0,
        remove_accidental_hits=False,
        loss_reduction="sum",
    )
    model.compile(optimizer=keras.optimizers.Adagrad(TFRS_LEARNING_RATE))
    rng = np.random.default_rng(seed)
    users = np.asarray(train_users, np.int64) + 1
    items = np.asarray(train_items, np.int64) + 1

    def vectors():
        return (
            model.user_tower.predict(np.arange(1, num_users + 1), verbose=0, batch_size=4096),
            model.item_tower.predict(np.arange(1, num_items + 1), verbose=0, batch_size=4096),
        )

    for epoch in range(epochs):
        order = rng.permutation(len(users))
        model.fit(
            {"user": users[order], "item": items[order]},
            batch_size=batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        if on_epoch is not None:
            on_epoch(epoch + 1, *vectors())
    return vectors()
