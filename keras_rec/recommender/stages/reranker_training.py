"""Training the two-stage model's re-ranker on the candidates of later interactions."""

from __future__ import annotations

import numpy as np

from keras_rec.recommender.data.user_item_lists import UserItemLists

RERANKER_BATCH_SIZE = 64
MIN_RERANKER_USERS = 2


class TooFewTargets(ValueError):
    """Too few users have a target among their candidates to train a re-ranker."""


RERANKER_HOLDOUT = 0.2


def reranker_examples(model, users: np.ndarray, targets: UserItemLists, batch: int = 256):
    """`(features [M, C, F], labels [M, C], user rows [M])`: users with a target among candidates.

    `model` is a `TwoStageRecommender` (without re-ranker) built on the
    interactions known *before* the targets (e.g. training without the
    validation pairs); a candidate's label is 1 when it is one of the
    user's `targets`.
    """
    import tensorflow as tf

    features, labels, kept = [], [], []
    users = np.asarray(users, np.int64)
    for start in range(0, len(users), batch):
        rows = users[start : start + batch]
        candidates, block = model.candidate_features(tf.constant(rows))
        candidates = candidates.numpy()
        hits = np.stack([np.isin(candidates[i], targets[row]) for i, row in enumerate(rows)])
        keep = hits.any(axis=1)
        features.append(block.numpy()[keep])
        labels.append(hits[keep].astype(np.float32))
        kept.append(rows[keep])
    return np.concatenate(features), np.concatenate(labels), np.concatenate(kept)


def fit_reranker(
    model,
    targets: UserItemLists,
    epochs: int,
    learning_rate: float,
    seed: int,
    strategy=None,
    callbacks=(),
):
    """Trains a re-ranker on `model`'s candidates for the users of `targets`.

    Listwise: each user's candidates are one example, the softmax over
    their logits is fit to the user's targets among them (normalized to
    sum to 1); users with no target among their candidates teach nothing
    and are left out. A seeded `RERANKER_HOLDOUT` share of the users is
    held out for early stopping (patience 3, best weights restored).

    Returns:
        `(reranker, holdout user rows, report)`.

    Raises:
        TooFewTargets: fewer than `MIN_RERANKER_USERS` users have a target
            among their candidates.
    """
    import keras
    import tensorflow as tf

    from keras_rec.recommender.layers.reranker import build_reranker
    from keras_rec.training.indexed_examples import IndexedExamples
    from keras_rec.training.strategy_fit import replica_batch_size, strategy_fit

    strategy = strategy or tf.distribute.get_strategy()
    users = np.flatnonzero(targets.lengths())
    features, labels, rows = reranker_examples(model, users, targets)
    if len(rows) < MIN_RERANKER_USERS:
        raise TooFewTargets(
            f"Only {len(rows)} users have a validation item among their candidates: too few to "
            "train the re-ranker. Raise `validation_fraction` or `recommend_candidates`, or set "
            "`recommend_candidates=0` to skip the two-stage model."
        )
    order = np.random.default_rng(seed).permutation(len(rows))
    held = max(1, int(round(len(rows) * RERANKER_HOLDOUT)))
    fit_part, held_part = np.sort(order[held:]), np.sort(order[:held])
    num_features = features.shape[-1]
    flat = features[fit_part].reshape(-1, num_features)
    with strategy.scope():
        reranker = build_reranker(
            num_features, feature_mean=flat.mean(axis=0), feature_variance=flat.var(axis=0)
        )
        reranker.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        )
    targets_share = labels / labels.sum(axis=1, keepdims=True)
    candidates = features.shape[1]
    signature = (
        tf.TensorSpec([None, candidates, num_features], tf.float32),
        tf.TensorSpec([None, candidates], tf.float32),
    )

    def examples(part):
        return IndexedExamples(
            len(part), lambda r: (features[part[r]], targets_share[part[r]]), signature
        )

    history = strategy_fit(
        reranker,
        examples(fit_part),
        # All the users when fewer than a batch, as many as the replicas share evenly.
        replica_batch_size(RERANKER_BATCH_SIZE, len(fit_part), strategy.num_replicas_in_sync),
        epochs,
        strategy=strategy,
        seed=seed,
        validation_examples=examples(held_part),
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=3, restore_best_weights=True
            ),
            *callbacks,
        ],
        name="reranker",
    )
    report = {
        "training_users": int(len(fit_part)),
        "holdout_users": int(len(held_part)),
        "users_without_target_in_candidates": int(len(users) - len(rows)),
        "epochs_run": len(history.history.get("loss", [])),
        "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.history.items()},
    }
    return reranker, rows[held_part], report
