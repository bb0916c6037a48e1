"""Stage 6, ranker: the concatenate-MLP ranker on (user text, item text) embeddings,
trained on the training pairs and scored on the test pairs."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_rec.metric_keys import with_old_keys

RANKER_BATCH_SIZE = 1024


@dataclasses.dataclass
class RankerPairs:
    """(user row, item row, label) triples: `users`, `items`, `labels` (None: none drawn)."""

    users: np.ndarray | None
    items: np.ndarray | None
    labels: np.ndarray | None


@dataclasses.dataclass
class TrainedRanker:
    """The trained ranker and its test figures (`ranker` in the report)."""

    model: Any
    metrics: dict


def train_ranker(config, inputs, run, tracker) -> TrainedRanker:
    """The ranker trained for `config.ranker_epochs` (its own checkpoints), and its figures.

    Binary task (rated vs not rated): each positive with `ranker_negatives`
    items drawn uniformly, never one of the user's train or test positives;
    rating task: the ratings, by mean squared error. Pairs stream as row
    indices; features are looked up per batch.
    """
    import keras

    from keras_rec.recommender.layers.ranker import build_ranker

    train, test = ranker_pairs(config, inputs)
    loss = "binary_crossentropy" if config.ranker_task == "binary" else "mse"
    with run.strategy.scope():
        ranker = build_ranker(inputs.embedding_dim, inputs.embedding_dim, task=config.ranker_task)
        ranker.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss)
    if config.ranker_epochs:
        _fit(ranker, inputs, train, config, run, tracker)
    predictions = _predict(ranker, inputs, test)
    return TrainedRanker(ranker, ranker_metrics(config, inputs, test, predictions))


def ranker_pairs(config, inputs) -> tuple[RankerPairs, RankerPairs]:
    """`(training pairs, test pairs)` of `config.ranker_task`."""
    if config.ranker_task == "binary":
        from keras_rec.recommender.data.ranker_data import sampled_negative_pairs

        positives = (
            np.concatenate([inputs.train_users, inputs.val_users, inputs.test_users]),
            np.concatenate([inputs.train_items, inputs.val_items, inputs.test_items]),
        )

        def pairs(users, items, seed):
            return RankerPairs(
                *sampled_negative_pairs(
                    users, items, inputs.num_items, config.ranker_negatives, seed, positives
                )
            )

        train = (
            pairs(inputs.train_users, inputs.train_items, config.seed)
            if config.ranker_epochs
            else RankerPairs(None, None, None)  # No training: no negatives to draw.
        )
        return train, pairs(inputs.test_users, inputs.test_items, config.seed + 1)
    if not len(inputs.train_ratings):
        raise ValueError(
            "`ranker_task='rating'` needs ratings: pass `--rating-column` with your data."
        )
    return (
        RankerPairs(inputs.train_users, inputs.train_items, inputs.train_ratings),
        RankerPairs(inputs.test_users, inputs.test_items, inputs.test_ratings),
    )


def _features(inputs, users, items) -> dict:
    return {"user": inputs.user_embeddings[users], "item": inputs.item_embeddings[items]}


def _fit(ranker, inputs, pairs: RankerPairs, config, run, tracker) -> None:
    import tensorflow as tf

    from keras_rec.training.indexed_examples import IndexedExamples
    from keras_rec.training.strategy_fit import strategy_fit

    spec = tf.TensorSpec([None, inputs.embedding_dim], tf.float32)
    examples = IndexedExamples(
        len(pairs.labels),
        lambda rows: (
            _features(inputs, pairs.users[rows], pairs.items[rows]),
            pairs.labels[rows],
        ),
        ({"user": spec, "item": spec}, tf.TensorSpec([None], tf.float32)),
    )
    strategy_fit(
        ranker,
        examples,
        RANKER_BATCH_SIZE,
        config.ranker_epochs,
        strategy=run.strategy,
        seed=config.seed,
        callbacks=tracker.keras_callbacks("ranker_"),
        checkpoint_dir=run.checkpoint_dir("ranker"),
        checkpoint_steps=config.checkpoint_steps,
        chief=run.chief,
        name="ranker",
    )


def _predict(ranker, inputs, pairs: RankerPairs) -> np.ndarray:
    from keras_rec.recommender.stages.towers import predict_rows

    return predict_rows(
        ranker,
        lambda rows: _features(inputs, pairs.users[rows], pairs.items[rows]),
        len(pairs.labels),
    ).reshape(-1)


def ranker_metrics(config, inputs, test: RankerPairs, predictions: np.ndarray) -> dict:
    """The ranker's test figures: AUCs beside popularity's (binary), or RMSE (rating)."""
    if config.ranker_task == "binary":
        from keras_rec.recommender.data.ranker_data import auc_report
        from keras_rec.recommender.data.recommender_inputs import known_popularity

        popularity = np.log1p(known_popularity(inputs)[0])
        ranker_auc = auc_report(test.users, test.labels, predictions)
        metrics = {
            "task": "binary",
            "labels": "rated (1) vs not rated (0): test pairs, and sampled items never a positive",
            "test_auc": ranker_auc["pooled_auc"],
            "test_per_user_auc": ranker_auc["per_user_auc"],
            "popularity_test_auc": auc_report(test.users, test.labels, popularity[test.items]),
            "negatives_per_positive": config.ranker_negatives,
        }
    else:
        rmse = float(np.sqrt(np.mean((predictions - test.labels) ** 2)))
        mean_rmse = float(np.sqrt(np.mean((inputs.train_ratings.mean() - test.labels) ** 2)))
        metrics = {
            "task": "rating",
            "test_rmse": round(rmse, 4),
            "train_mean_rmse": round(mean_rmse, 4),
        }
    # Every pair the ranker scored on the test split: the positives and, for
    # `binary`, their sampled negatives (not the split's `test_pairs`).
    metrics["test_scored_pairs"] = int(len(test.labels))
    return with_old_keys(metrics, "ranker")
