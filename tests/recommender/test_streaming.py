"""Streaming equals in-memory: lookups, batched evaluation, sparse history, CSR seen items."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_config_round_trip

from keras_rec.recommender.data.recommender_inputs import RecommenderInputs, history_embeddings
from keras_rec.recommender.data.user_item_lists import UserItemLists
from keras_rec.recommender.evaluation.retrieval_evaluation import evaluate_retrieval, vector_scores
from keras_rec.recommender.layers.lazy_adam import LazyAdam
from keras_rec.recommender.layers.row_embedding import RowEmbedding
from keras_rec.recommender.serving.retrieval_serving import UserRetrieval
from keras_rec.recommender.stages.towers import build_retrieval, training_pairs
from keras_rec.recommender.train_recommender import RecommenderTrainingConfig
from keras_rec.serving import export
from keras_rec.training.indexed_examples import IndexedExamples
from keras_rec.training.strategy_fit import strategy_fit

USERS, ITEMS, DIM = 40, 60, 8


def _inputs(seed=0, user_text=True, string_ids=False) -> RecommenderInputs:
    rng = np.random.default_rng(seed)
    pairs = np.unique(rng.integers(0, [USERS, ITEMS], size=(600, 2)), axis=0)
    pairs = pairs[rng.permutation(len(pairs))]
    train, test = pairs[:400], pairs[400:]
    items = rng.normal(size=(ITEMS, DIM)).astype(np.float32)
    history = history_embeddings(train[:, 0], train[:, 1], items, USERS)
    users = rng.normal(size=(USERS, DIM)).astype(np.float32) if user_text else history
    ids = np.arange(USERS)
    return RecommenderInputs(
        item_ids=np.array([f"i{i}" for i in range(ITEMS)], object)
        if string_ids
        else np.arange(ITEMS),
        item_titles=[f"t{i}" for i in range(ITEMS)],
        item_texts=[],
        item_embeddings=items,
        item_id_index=np.arange(1, ITEMS + 1),
        user_ids=np.array([f"u{i}" for i in ids], object) if string_ids else ids,
        user_texts=[],
        user_embeddings=users,
        user_history=history,
        user_id_index=np.arange(1, USERS + 1),
        train_users=train[:, 0],
        train_items=train[:, 1],
        test_users=test[:, 0],
        test_items=test[:, 1],
        cold_items=np.array([3, 7, 11]),
        user_text=user_text,
    )


def test_training_on_looked_up_batches_equals_training_on_materialized_pairs():
    """The lookup pipeline feeds the exact tensors a per-pair copy of every feature would."""
    inputs = _inputs()
    config = RecommenderTrainingConfig(batch_size=64, epochs=2, hidden_units=(16,), output_dim=8)
    streamed = training_pairs(inputs, config)
    # In memory: every pair's features copied out, as `from_tensor_slices` used to hold them.
    materialized = streamed.gather(np.arange(streamed.count))
    in_memory = IndexedExamples(
        streamed.count,
        lambda rows: tf.nest.map_structure(lambda a: a[rows], materialized),
        streamed.signature,
    )
    losses = []
    for examples in (streamed, in_memory):
        keras.utils.set_random_seed(0)
        model = build_retrieval(config, inputs)
        model.compile(optimizer=LazyAdam(1e-3))
        history = strategy_fit(model, examples, 64, 2, seed=3, name="t")
        losses.append(history.history["loss"])
    assert losses[0] == losses[1]
    assert losses[0][1] < losses[0][0]
    assert materialized["user"]["embedding"].shape == (streamed.count, DIM)


def test_epoch_rows_shard_shuffle_and_wrap():
    examples = IndexedExamples(10, lambda rows: rows, tf.TensorSpec([None], tf.int64))
    rows = examples.epoch_rows(4, 3, pipeline=1, pipelines=2, seed=5)
    assert rows.shape == (3, 4)
    assert set(rows.reshape(-1)) == {1, 3, 5, 7, 9}  # this pipeline's shard, wrapped to fill
    np.testing.assert_array_equal(rows, examples.epoch_rows(4, 3, 1, 2, seed=5))
    assert not np.array_equal(rows, examples.epoch_rows(4, 3, 1, 2, seed=6))
    with pytest.raises(ValueError, match="`count` must be a non-negative integer"):
        IndexedExamples(-1, lambda rows: rows, None)


def _reference_metrics(scores, inputs, k=10):
    """Recall@k and MRR written out plainly, one user at a time."""
    recalls, reciprocal = [], []
    for user in range(inputs.num_users):
        wanted = set(inputs.test_items[inputs.test_users == user].tolist())
        if not wanted:
            continue
        row = scores[user].astype(np.float64).copy()
        row[inputs.train_items[inputs.train_users == user]] = -np.inf
        order = sorted(range(len(row)), key=lambda i: (-row[i], i))
        recalls.append(len(wanted & set(order[:k])) / len(wanted))
        reciprocal.append(1 / (1 + min(order.index(i) for i in wanted)))
    return np.mean(recalls), np.mean(reciprocal)


def test_batched_evaluation_equals_the_whole_matrix_and_a_plain_reference(monkeypatch):
    from keras_rec.recommender.evaluation import retrieval_metrics

    inputs = _inputs()
    rng = np.random.default_rng(1)
    user_vectors = rng.normal(size=(USERS, 4)).astype(np.float32)
    item_vectors = rng.normal(size=(ITEMS, 4)).astype(np.float32)
    scores = user_vectors @ item_vectors.T
    whole = evaluate_retrieval(scores, inputs, curve_ks=(1, 5, 10))
    monkeypatch.setattr(retrieval_metrics, "SCORE_BLOCK_VALUES", 3 * ITEMS)  # 3 users a batch
    batched = evaluate_retrieval(vector_scores(user_vectors, item_vectors), inputs, (1, 5, 10))
    assert batched == whole
    recall, mrr = _reference_metrics(scores, inputs)
    assert whole["user_recall_at_10"] == pytest.approx(recall, abs=1e-4)
    assert whole["user_mrr"] == pytest.approx(mrr, abs=1e-4)
    assert "cold_start_recall_at_10" in whole
    sample = evaluate_retrieval(scores, inputs, users=np.array([0, 1, 2]))
    assert sample["evaluated_users"] <= 3


def test_sparse_history_equals_the_dense_sum():
    rng = np.random.default_rng(2)
    users, items = rng.integers(0, 5, 50), rng.integers(0, 9, 50)
    table = rng.normal(size=(9, 4)).astype(np.float32)
    sums = np.zeros((6, 4))
    np.add.at(sums, users, table[items])
    expected = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(history_embeddings(users, items, table, 6), expected, atol=1e-6)
    assert not history_embeddings(users, items, table, 6)[5].any()  # no history: zeros


def test_user_item_lists():
    lists = UserItemLists(np.array([2, 0, 2, 2]), np.array([5, 1, 3, 5]), 4)
    assert [x.tolist() for x in lists] == [[1], [], [5, 3, 5], []]
    assert lists.lengths().tolist() == [1, 0, 3, 0]
    assert [x.tolist() for x in lists.filter(np.array([1, 0, 0, 1, 0, 0], bool))] == [
        [], [], [3], []
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"User rows must be in \[0, 4\)"):
        UserItemLists(np.array([4]), np.array([0]), 4)


def test_string_id_retrieval_served_through_the_session_loader(tmp_path):
    """String user and item ids, seen items as CSR arrays, answered as TF Serving would."""
    inputs = _inputs(string_ids=True, user_text=False)
    config = RecommenderTrainingConfig(hidden_units=(16,), output_dim=8)
    keras.utils.set_random_seed(0)
    retrieval = build_retrieval(config, inputs)
    items = np.asarray(retrieval.item_tower(inputs.item_features(np.arange(ITEMS))))
    seen = UserItemLists(inputs.train_users, inputs.train_items, USERS)
    module = UserRetrieval(
        np.asarray(retrieval.user_tower(inputs.user_tables())),
        inputs.user_ids,
        items,
        inputs.item_ids,
        inputs.item_titles,
        k=5,
        popular_items=np.arange(ITEMS),
        popular_scores=np.zeros(ITEMS),
        seen_items=seen,
    )
    asked = np.array(["u3", "u17", "stranger"], object)
    in_memory = module.serve(tf.constant(asked.astype(str)))
    assert in_memory["known_user"].numpy().tolist() == [True, True, False]
    for row, user in enumerate((3, 17)):
        returned = {int(i.decode()[1:]) for i in in_memory["item_ids"].numpy()[row]}
        assert not returned & set(seen[user].tolist())
    result = export(
        module,
        tmp_path,
        "retrieval",
        examples={"user_id": asked},
        signatures={"serving_default": module.serve},
        chief=True,
    )
    assert result.serving_check["ok"], result.serving_check  # Session loader + warmup


def test_lazy_adam_updates_only_the_batch_rows_as_adam_would():
    def model():
        ids = keras.Input((), dtype="int64")
        x = RowEmbedding(100, 4, name="ids")(ids)
        return keras.Model(ids, keras.layers.Dense(1)(x))

    keras.utils.set_random_seed(0)
    lazy = model()
    lazy.compile(LazyAdam(1e-2), "mse")
    before = lazy.get_weights()
    x, y = np.array([1, 2, 2, 5]), np.ones(4)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((lazy(x)[:, 0] - y) ** 2)
    gradient = tf.convert_to_tensor(tape.gradient(loss, lazy.trainable_variables[0])).numpy()
    lazy.train_on_batch(x, y)
    m, v = 0.1 * gradient, 0.001 * gradient**2
    expected = before[0] - 1e-2 * np.sqrt(0.001) / 0.1 * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(lazy.get_weights()[0], expected, atol=1e-6)
    untouched = np.setdiff1d(np.arange(100), x)
    np.testing.assert_array_equal(lazy.get_weights()[0][untouched], before[0][untouched])
    # Dense variables take Adam's own path: the Dense kernel moved as with keras Adam.
    keras.utils.set_random_seed(0)
    plain = model()
    plain.compile(keras.optimizers.Adam(1e-2), "mse")
    plain.train_on_batch(x, y)
    np.testing.assert_allclose(lazy.get_weights()[1], plain.get_weights()[1], atol=1e-6)
    with pytest.raises(ValueError, match="does not support `amsgrad=True`"):
        LazyAdam(amsgrad=True)


def test_row_embedding_equals_embedding_and_round_trips():
    keras.utils.set_random_seed(0)
    layer = RowEmbedding(10, 3)
    ids = np.array([[0, 9], [4, 4]])
    plain = keras.layers.Embedding(10, 3)
    plain.build((None, 2))
    layer.build((None, 2))
    plain.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(ids), plain(ids))
    restored = assert_config_round_trip(layer)
    assert isinstance(restored, RowEmbedding)


def test_inputs_without_user_texts_feed_the_history_as_the_embedding():
    inputs = _inputs(user_text=False)
    assert sorted(inputs.user_tables()) == ["embedding", "id"]
    assert inputs.user_tables()["embedding"] is inputs.user_history
    with_text = dataclasses.replace(inputs, user_text=True)
    assert sorted(with_text.user_tables()) == ["embedding", "features", "id"]
