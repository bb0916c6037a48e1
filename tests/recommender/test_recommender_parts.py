import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_config_round_trip, assert_keras_round_trip

from keras_rec.recommender.evaluation.retrieval_metrics import (
    per_user_metrics,
    popularity_scores,
    top_k_categorical_accuracy,
    top_k_indices,
)
from keras_rec.recommender.index.brute_force_top_k import BruteForceTopK
from keras_rec.recommender.layers.tower import build_tower
from keras_rec.recommender.layers.two_tower_retrieval import TwoTowerRetrieval, in_batch_logits
from keras_rec.serving import export


def test_tower_outputs_unit_vectors_with_ids_and_features():
    tower = build_tower(8, "item_tower", output_dim=4, id_vocabulary_size=5, feature_dim=3)
    inputs = {
        "embedding": np.random.default_rng(0).normal(size=(6, 8)).astype("float32"),
        "id": np.array([0, 1, 2, 3, 4, 0]),
        "features": np.ones((6, 3), "float32"),
    }
    vectors = tower(inputs).numpy()
    assert vectors.shape == (6, 4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len(tower.losses) > 0  # weight decay
    with pytest.raises(ValueError, match="`output_dim` must be a positive integer"):
        build_tower(8, "t", output_dim=0)


def test_in_batch_logits_log_q_and_accidental_hits():
    user = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], "float32")
    item = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], "float32")
    log_q = np.log(np.array([0.5, 0.25, 0.5], "float32"))
    keys = np.array([7, 8, 7])
    logits = np.array(in_batch_logits(user, item, 0.5, log_q, keys))
    # user 0 x item 0: 1/0.5 - log(0.5) = 2.693; item 2 is item 7 again -> masked.
    assert logits[0, 0] == pytest.approx(2 - math.log(0.5))
    assert logits[0, 1] == pytest.approx(0 - math.log(0.25))
    assert logits[0, 2] < -1e8 and logits[2, 0] < -1e8
    assert logits[2, 2] == pytest.approx(2 - math.log(0.5))


def _synthetic_pairs(n=256, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(32, dim)).astype("float32")
    item_ids = rng.integers(0, 32, size=n)
    users = items[item_ids] + 0.1 * rng.normal(size=(n, dim)).astype("float32")
    return users, items, item_ids


def test_two_tower_training_lowers_the_loss_and_round_trips(tmp_path):
    users, items, item_ids = _synthetic_pairs()
    model = TwoTowerRetrieval(
        build_tower(8, "user_tower", output_dim=8, hidden_units=(16,)),
        build_tower(8, "item_tower", output_dim=8, hidden_units=(16,)),
        temperature=0.1,
    )
    x = {
        "user": {"embedding": users},
        "item": {"embedding": items[item_ids]},
        "item_key": item_ids.astype("int64"),
        "item_log_q": np.log(np.full(len(item_ids), 1 / 32, "float32")),
    }
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, epochs=8, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]
    clone = assert_config_round_trip(model)
    assert clone.temperature == 0.1
    assert_keras_round_trip(model, {"user": x["user"], "item": x["item"]}, tmp_path)


def test_brute_force_top_k_matches_numpy_and_excludes():
    rng = np.random.default_rng(1)
    candidates = rng.normal(size=(50, 4)).astype("float32")
    identifiers = np.arange(100, 150)
    queries = rng.normal(size=(5, 4)).astype("float32")
    index = BruteForceTopK(candidates, identifiers, k=7)
    scores, ids = index(queries)
    expected = np.argsort(-(queries @ candidates.T), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(ids.numpy(), identifiers[expected])
    np.testing.assert_allclose(
        scores.numpy(), np.take_along_axis(queries @ candidates.T, expected, 1), atol=1e-5
    )
    exclude = np.full((5, 3), -1)
    exclude[:, 0] = expected[:, 0]  # drop each query's best
    _, ids = index(queries, exclude=exclude)
    np.testing.assert_array_equal(ids.numpy()[:, :6], identifiers[expected[:, 1:7]])
    assert_config_round_trip(index)
    with pytest.raises(ValueError, match="`k` must be <= the 50 candidates"):
        BruteForceTopK(candidates, k=51)


def test_brute_force_top_k_in_a_saved_model(tmp_path):
    rng = np.random.default_rng(2)
    candidates = rng.normal(size=(20, 4)).astype("float32")
    index = BruteForceTopK(candidates, np.arange(20) * 10, k=3)
    query = keras.Input(shape=(4,), name="query")
    scores, ids = index(query)
    model = keras.Model(query, {"scores": scores, "item_ids": ids})
    q = rng.normal(size=(2, 4)).astype("float32")
    result = export(model, tmp_path, "index", examples={"query": q}, chief=True)
    assert result.serving_check["ok"]  # same top-k ids and scores in a TensorFlow-only process
    served = tf.saved_model.load(result.path).signatures["serving_default"]
    expected = np.argsort(-(q @ candidates.T), axis=1, kind="stable")[:, :3] * 10
    np.testing.assert_array_equal(served(query=tf.constant(q))["item_ids"].numpy(), expected)


def test_metrics_by_hand():
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]], "float32")
    np.testing.assert_array_equal(top_k_indices(scores, 2), [[0, 1], [3, 2]])
    # User 0: relevant {1, 2}, seen {0}: ranking 1, 3, 2 -> top 2 hits [1, 0].
    # recall@2 = 1/2; ndcg@2 = 1 / (1 + 1/log2(3)); MRR = 1/1.
    # User 1: relevant {0}, ranking 3, 2, 1, 0 -> recall@2 = 0, ndcg@2 = 0, MRR = 1/4.
    metrics = per_user_metrics(scores, [[1, 2], [0]], seen=[[0], []], ks=(2,))
    assert metrics["recall_at_2"] == pytest.approx((0.5 + 0) / 2)
    assert metrics["ndcg_at_2"] == pytest.approx((1 / (1 + 1 / math.log2(3))) / 2)
    assert metrics["mrr"] == pytest.approx((1 + 0.25) / 2)
    # Pairs (0, 2) and (1, 0): item 2 ranks 4th for user 0, item 0 4th for user 1.
    assert top_k_categorical_accuracy(scores, [0, 1], [2, 0], k=3) == 0.0
    assert top_k_categorical_accuracy(scores, [0, 1], [2, 0], k=4) == 1.0
    pop = popularity_scores(np.array([3, 3, 1]), num_items=4, num_users=2)
    np.testing.assert_array_equal(pop[1], [0, 1, 0, 2])
    # A short ranked list (the rest at -inf, e.g. a served top-K): slots past it never hit.
    short = np.array([[5.0, -np.inf, -np.inf, -np.inf]])
    assert per_user_metrics(short, [[2]], ks=(4,))["recall_at_4"] == 0.0
    assert per_user_metrics(short, [[0]], ks=(4,))["recall_at_4"] == 1.0


def test_ranker_binary_and_rating():
    from keras_rec.recommender.layers.ranker import build_ranker

    rng = np.random.default_rng(3)
    user, item = (
        rng.normal(size=(64, 6)).astype("float32"),
        rng.normal(size=(64, 4)).astype("float32"),
    )
    liked = (user[:, 0] * item[:, 0] > 0).astype("float32")  # learnable interaction
    ranker = build_ranker(6, 4, hidden_units=(32,), dropout=0.0)
    ranker.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"]
    )
    history = ranker.fit({"user": user, "item": item}, liked, epochs=60, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    scores = ranker({"user": user, "item": item}).numpy()
    assert scores.shape == (64, 1) and (0 <= scores).all() and (scores <= 1).all()

    rating = build_ranker(6, 4, task="rating", rating_range=(1, 5))
    values = rating({"user": user, "item": item}).numpy()
    assert (values >= 1).all() and (values <= 5).all()
    with pytest.raises(ValueError, match="`task` must be one of"):
        build_ranker(6, 4, task="softmax")
