"""Two-stage `recommend`: features by hand, served graph equals memory, ranker pairs."""

import numpy as np
import pytest
import tensorflow as tf

from keras_rec.recommender.data.ranker_data import auc_report, sampled_negative_pairs
from keras_rec.recommender.data.user_item_lists import UserItemLists
from keras_rec.recommender.layers.reranker import build_reranker
from keras_rec.recommender.serving.two_stage import (
    FEATURE_NAMES,
    TwoStageRecommender,
    two_stage_scores,
)
from keras_rec.recommender.stages.reranker_training import fit_reranker, reranker_examples
from keras_rec.serving import export
from keras_rec.serving.fresh_process import answer_in_fresh_process

USERS, ITEMS, DIM, TEXT_DIM, CANDIDATES, K, NEIGHBORS = 9, 40, 4, 6, 12, 5, 3


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(3)
    history_users = np.repeat(np.arange(USERS - 1), 4)  # the last user has no history
    history_items = np.concatenate([rng.choice(ITEMS, 4, replace=False) for _ in range(USERS - 1)])
    return {
        "user_vectors": _unit(rng.normal(size=(USERS, DIM))),
        "item_vectors": _unit(rng.normal(size=(ITEMS, DIM))),
        "item_embeddings": rng.normal(size=(ITEMS, TEXT_DIM)).astype(np.float32),
        "counts": rng.integers(0, 50, ITEMS),
        "history": UserItemLists(history_users, history_items, USERS),
        "neighbors": rng.integers(0, ITEMS, (ITEMS, NEIGHBORS)),
        "neighbor_weights": rng.uniform(0, 1, (ITEMS, NEIGHBORS)).astype(np.float32),
    }


def _model(tables, reranker=None):
    popular = np.argsort(-tables["counts"], kind="stable")
    return TwoStageRecommender(
        tables["user_vectors"],
        np.array([f"u{i}" for i in range(USERS)]),
        tables["item_vectors"],
        tables["item_embeddings"],
        np.arange(100, 100 + ITEMS),
        [f"title {i}" for i in range(ITEMS)],
        tables["counts"],
        tables["history"],
        reranker,
        K,
        CANDIDATES,
        popular,
        np.linspace(1, 0, ITEMS),
        tables["neighbors"],
        tables["neighbor_weights"],
    )


def _reference_features(tables, user):
    """The candidates and features of one user, in NumPy."""
    seen = np.asarray(tables["history"][user])
    scores = tables["user_vectors"][user] @ tables["item_vectors"].T
    scores[seen] = -np.inf
    candidates = np.argsort(-scores, kind="stable")[:CANDIDATES]
    texts = _unit(tables["item_embeddings"])
    rows = []
    for rank, c in enumerate(candidates):
        tower = tables["item_vectors"][seen] @ tables["item_vectors"][c]
        text = texts[seen] @ texts[c]
        weights = np.exp(tower / 0.1) / np.exp(tower / 0.1).sum() if len(seen) else tower
        item_item = sum(
            w
            for h in seen
            for n, w in zip(tables["neighbors"][h], tables["neighbor_weights"][h], strict=True)
            if n == c
        )
        rows.append(
            [
                scores[c],
                np.log1p(rank),
                np.log1p(tables["counts"][c]),
                tower.max() if len(seen) else 0.0,
                tower.mean() if len(seen) else 0.0,
                (weights * tower).sum() if len(seen) else 0.0,
                text.max() if len(seen) else 0.0,
                text.mean() if len(seen) else 0.0,
                np.log1p(len(seen)),
                item_item,
            ]
        )
    return candidates, np.array(rows)


def test_candidate_features_equal_numpy(tables):
    model = _model(tables)
    candidates, features = model.candidate_features(tf.constant(np.arange(USERS), tf.int64))
    assert features.shape == (USERS, CANDIDATES, len(FEATURE_NAMES))
    for user in range(USERS):
        want_candidates, want = _reference_features(tables, user)
        np.testing.assert_array_equal(candidates.numpy()[user], want_candidates)
        np.testing.assert_allclose(features.numpy()[user], want, atol=1e-5, err_msg=f"user {user}")
        # Known items are never candidates.
        assert not np.isin(want_candidates, tables["history"][user]).any()


def test_recommend_export_equals_in_memory_two_stage(tables, tmp_path):
    reranker = build_reranker(len(FEATURE_NAMES), hidden_units=(8,))
    model = _model(tables, reranker)
    user_ids = np.array(["u0", "u3", "u8", "nobody"], object)
    in_memory = {k: v.numpy() for k, v in model.serve(tf.constant(user_ids)).items()}
    # The in-memory two stages, by hand: candidates re-ranked by the re-ranker's logits.
    candidates, features = model.candidate_features(tf.constant([0, 3, 8], tf.int64))
    logits = reranker(features).numpy()
    order = np.argsort(-logits, axis=1, kind="stable")[:, :K]
    want = np.take_along_axis(candidates.numpy(), order, axis=1) + 100
    np.testing.assert_array_equal(in_memory["item_ids"][:3], want)
    assert in_memory["known_user"].tolist() == [True, True, True, False]
    popular = np.argsort(-tables["counts"], kind="stable")[:K] + 100
    np.testing.assert_array_equal(in_memory["item_ids"][3], popular)

    result = export(
        model,
        tmp_path,
        "recommend",
        examples={"user_id": user_ids},
        signatures={"serving_default": model.serve},
        chief=True,
    )
    assert result.serving_check["ok"]
    served = answer_in_fresh_process(
        result.path, {"r": ("serving_default", {"user_id": user_ids})}, ["session"]
    )
    assert not served["errors"]["session"], served["errors"]
    answer = served["answers"]["session"]["r"]
    np.testing.assert_array_equal(answer["item_ids"], in_memory["item_ids"])
    np.testing.assert_allclose(answer["scores"], in_memory["scores"], atol=1e-5)
    assert [t.decode() for t in answer["titles"][0]] == [f"title {i - 100}" for i in want[0]]


def test_two_stage_scores_put_the_reranked_candidates_first(tables):
    reranker = build_reranker(len(FEATURE_NAMES), hidden_units=(8,))
    model = _model(tables, reranker)
    block = two_stage_scores(model)(np.array([2]))
    candidates, features = model.candidate_features(tf.constant([2], tf.int64))
    order = np.argsort(-reranker(features).numpy()[0], kind="stable")
    ranked = np.argsort(-block[0], kind="stable")
    np.testing.assert_array_equal(ranked[:CANDIDATES], candidates.numpy()[0][order])


def test_reranker_learns_targets_from_a_telling_feature(tables):
    model = _model(tables)
    candidates, _ = model.candidate_features(tf.constant(np.arange(USERS), tf.int64))
    # Each user's target: their candidate with the largest item_item_score.
    _, features = model.candidate_features(tf.constant(np.arange(USERS), tf.int64))
    best = np.argmax(features.numpy()[..., FEATURE_NAMES.index("item_item_score")], axis=1)
    chosen = candidates.numpy()[np.arange(USERS), best]
    targets = UserItemLists(np.arange(USERS), chosen, USERS)
    x, labels, rows = reranker_examples(model, np.arange(USERS), targets)
    assert labels.sum(axis=1).tolist() == [1.0] * len(rows)
    np.testing.assert_array_equal(np.argmax(labels, axis=1), best[rows])
    reranker, held, report = fit_reranker(model, targets, epochs=2, learning_rate=1e-2, seed=0)
    assert report["training_users"] + report["holdout_users"] == len(rows)
    assert set(held.tolist()) <= set(rows.tolist())


def test_ranker_negatives_never_collide_with_positives():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 20, 400)
    items = rng.integers(0, 15, 400)  # dense: most draws would clash
    other = (rng.integers(0, 20, 100), rng.integers(0, 15, 100))
    pair_users, pair_items, labels = sampled_negative_pairs(users, items, 15, 3, 0, other)
    positives = set(zip(users.tolist(), items.tolist())) | set(
        zip(other[0].tolist(), other[1].tolist())
    )
    negatives = labels == 0
    full = {u for u in range(20) if len({i for (v, i) in positives if v == u}) == 15}
    # Every positive draws 3 negatives, except for users with every item a positive.
    assert negatives.sum() == 3 * sum(u not in full for u in users.tolist())
    clashes = [
        pair
        for pair in zip(pair_users[negatives].tolist(), pair_items[negatives].tolist())
        if pair in positives
    ]
    assert not clashes


def test_auc_report_pooled_and_per_user():
    users = np.array([0, 0, 0, 1, 1, 1])
    labels = np.array([1, 0, 0, 1, 0, 0])
    scores = np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.35])
    report = auc_report(users, labels, scores)
    # User 0 orders perfectly (1.0); user 1 ranks its positive last (0.0).
    assert report["per_user_auc"] == pytest.approx(0.5)
    assert report["users"] == 2
    # Pooled: positives 0.9, 0.3 against 0.1, 0.2, 0.4, 0.35: 4 + 2 of 8 pairs.
    assert report["pooled_auc"] == pytest.approx(6 / 8)
