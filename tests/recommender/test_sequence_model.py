"""The next-item sequence model: its windows, its encoder's masks, its training, its serving."""

import numpy as np
import pytest

from keras_rec.recommender.baselines.markov_baseline import (
    MarkovSettings,
    latest_item_weights,
    markov_scores,
    transition_weights,
    tune_markov,
)
from keras_rec.recommender.data.user_sequences import (
    PADDING_ROW,
    latest_items,
    time_ordered_items,
    training_windows,
)
from keras_rec.serving import export
from keras_rec.serving.fresh_process import answer_in_fresh_process
from tests.helpers import assert_config_round_trip

ITEMS, DIM = 12, 8


def test_time_order_breaks_ties_by_item_and_keeps_file_order_without_times():
    users = np.array([0, 1, 0, 0, 1])
    items = np.array([5, 2, 3, 1, 7])
    times = np.array([20, 5, 10, 10, 1])
    ordered = time_ordered_items(users, items, times, 2)
    assert ordered[0].tolist() == [1, 3, 5]  # 1 and 3 tie at t=10: item 1 first
    assert ordered[1].tolist() == [7, 2]
    assert time_ordered_items(users, items, None, 2)[0].tolist() == [5, 3, 1]
    with pytest.raises(ValueError, match="one value per interaction"):
        time_ordered_items(users, items, times[:2], 2)


def test_windows_train_every_step_once_and_end_with_the_latest_item():
    sequences = time_ordered_items(
        np.repeat([0, 1, 2], [7, 1, 3]), np.r_[0:7, 9, 3, 4, 5], np.arange(11), 3
    )
    windows = training_windows(sequences, max_history=3)
    steps = sorted(
        (int(w[i]), int(w[i + 1])) for w in windows for i in range(3) if w[i] != PADDING_ROW
    )
    expected = sorted([(a, a + 1) for a in range(6)] + [(3, 4), (4, 5)])
    assert steps == expected  # user 1 (one item) gives nothing
    assert windows[0].tolist() == [3, 4, 5, 6]  # user 0's latest window
    assert windows[1].tolist() == [0, 1, 2, 3]
    assert windows[-1].tolist() == [PADDING_ROW, PADDING_ROW, 3, 4, 5][-4:]
    latest = latest_items(sequences, 4)
    assert latest.tolist() == [[3, 4, 5, 6], [-1, -1, -1, 9], [-1, 3, 4, 5]]
    with pytest.raises(ValueError, match="max_history"):
        training_windows(sequences, 0)


def test_markov_baseline_scores_what_followed_the_latest_items():
    # Everyone goes 0 -> 1 -> 2; user 2 has just seen 0.
    sequences = time_ordered_items(
        np.array([0, 0, 0, 1, 1, 1, 2]), np.array([0, 1, 2, 0, 1, 2, 0]), np.arange(7), 3
    )
    weights = transition_weights(sequences, 4, window=1, directed=True).toarray()
    assert weights[0, 1] > 0 and weights[1, 2] > 0 and weights[1, 0] == 0
    assert weights[2, 0] == 0  # a user's end does not lead to the next user's start
    latest = latest_item_weights(sequences, 4, history=2, decay=0.5).toarray()
    np.testing.assert_allclose(latest[0], [0, 0.5, 1, 0])
    scores = markov_scores(sequences, 4, MarkovSettings(1, 1, 0.5, True))(np.array([2]))
    assert int(np.argmax(scores[0])) == 1
    best, results = tune_markov(
        sequences,
        lambda score: {"user_ndcg_at_10": float(score(np.array([2]))[0, 1])},
        4,
        grid=[MarkovSettings(1, 1, 0.5, True), MarkovSettings(1, 1, 0.5, False)],
    )
    assert best in results and len(results) == 2


@pytest.fixture(scope="module")
def encoder():
    from keras_rec.recommender.layers.causal_sequence_encoder import CausalSequenceEncoder

    layer = CausalSequenceEncoder(5, num_layers=2, num_heads=2, dropout=0.0, seed=1)
    layer(np.zeros((1, 5, DIM), "float32"), np.ones((1, 5), bool))
    return layer


def test_encoder_is_causal_and_blind_to_padding(encoder):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2, 5, DIM)).astype("float32")
    valid = np.array([[False, False, True, True, True], [True] * 5])
    out = np.asarray(encoder(vectors, valid))
    later = vectors.copy()
    later[:, 4] = rng.normal(size=(2, DIM))
    np.testing.assert_allclose(np.asarray(encoder(later, valid))[:, :4], out[:, :4], atol=1e-5)
    padded = vectors.copy()
    padded[0, :2] = 100.0
    np.testing.assert_allclose(np.asarray(encoder(padded, valid))[0, 2:], out[0, 2:], atol=1e-5)
    assert not np.isnan(out).any()
    # Serving computes only the last position in the last block: the same state.
    last = np.asarray(encoder(vectors, valid, last_only=True))
    assert last.shape == (2, 1, DIM)
    np.testing.assert_allclose(last[:, 0], out[:, -1], atol=1e-6)
    restored = assert_config_round_trip(encoder)
    assert restored.max_history == 5 and restored.num_heads == 2


def test_encoder_rejects_bad_settings():
    from keras_rec.recommender.layers.causal_sequence_encoder import CausalSequenceEncoder

    with pytest.raises(ValueError, match="max_history"):
        CausalSequenceEncoder(0)
    with pytest.raises(ValueError, match="divisible"):
        CausalSequenceEncoder(4, num_heads=3)(np.zeros((1, 4, DIM), "float32"), np.ones((1, 4)))


def _next_item_model(loss: str, max_history: int = 4, time_gaps: bool = False):
    import keras

    from keras_rec.recommender.layers.next_item_model import NextItemModel
    from keras_rec.recommender.layers.tower import build_tower

    keras.utils.set_random_seed(3)
    tower = build_tower(
        DIM, "item_tower", output_dim=16, hidden_units=(32,), id_vocabulary_size=ITEMS + 1
    )
    model = NextItemModel(
        tower, ITEMS, DIM, max_history=max_history, num_layers=1, num_heads=2, dropout=0.0,
        temperature=0.1, loss=loss, time_gaps=time_gaps, seed=3,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    model.set_items(
        rng.normal(size=(ITEMS, DIM)).astype("float32"),
        np.arange(1, ITEMS + 1),
        np.full(ITEMS, -np.log(ITEMS)),
    )
    empty = np.full((1, max_history), PADDING_ROW)
    model({"history": empty, "gaps": np.zeros_like(empty)})
    return model


@pytest.mark.parametrize("loss", ["softmax", "sampled_softmax"])
def test_next_item_model_learns_what_comes_next(loss):
    import keras

    # Every user walks the catalogue in a cycle: the next item is always item + 1.
    starts = np.arange(48) % ITEMS
    walks = (starts[:, None] + np.arange(9)[None, :]) % ITEMS
    users = np.repeat(np.arange(len(walks)), walks.shape[1])
    sequences = time_ordered_items(users, walks.ravel(), None, len(walks))
    windows = training_windows(sequences, 4)
    model = _next_item_model(loss)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(
        {"history": windows[:, :-1], "targets": windows[:, 1:]},
        batch_size=16,
        epochs=40,
        verbose=0,
    )
    histories = np.array([[PADDING_ROW, 2, 3, 4], [7, 8, 9, 10]])
    queries = np.asarray(model({"history": histories}))[:, -1]
    items = np.asarray(model.item_vectors())
    assert np.argmax(queries @ items.T, axis=1).tolist() == [5, 11]


def test_the_full_softmax_leaves_out_items_never_trained_on():
    # Item 5 has no training interaction (id input 0): it is no negative of any step.
    model = _next_item_model("softmax")
    id_index = np.arange(1, ITEMS + 1)
    id_index[5] = 0
    model.set_items(np.asarray(model.item_embeddings), id_index)
    history = np.array([[PADDING_ROW, 1, 2, 3], [6, 7, 8, 9]])
    targets = np.array([[PADDING_ROW, 2, 3, 4], [7, 8, 9, 10]])
    x = {"history": history, "targets": targets}
    loss = float(model.compute_loss(x, y_pred=model(x), training=False))

    queries = np.asarray(model(x))
    items = np.asarray(model.item_vectors())
    kept = np.flatnonzero(id_index > 0)
    valid = targets >= 0
    logits = queries[valid] @ items[kept].T / model.temperature
    labels = np.searchsorted(kept, targets[valid])
    log_norm = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    expected = np.mean(log_norm - logits[np.arange(len(labels)), labels])
    expected += sum(float(extra) for extra in model.losses)  # the towers' regularization
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    model.set_items(np.asarray(model.item_embeddings), np.arange(1, ITEMS + 1))
    assert float(model.compute_loss(x, y_pred=model(x), training=False)) > loss + 1e-3


def test_next_item_model_config_round_trip_and_errors():
    from keras_rec.recommender.layers.next_item_model import NextItemModel

    model = _next_item_model("softmax")
    restored = NextItemModel.from_config(model.get_config())
    assert restored.max_history == 4 and restored.loss_name == "softmax"
    with pytest.raises(ValueError, match="loss"):
        NextItemModel(model.item_tower, ITEMS, DIM, loss="bce")
    with pytest.raises(ValueError, match="item_embeddings"):
        model.set_items(np.zeros((ITEMS + 1, DIM)), np.arange(ITEMS + 1))


@pytest.mark.parametrize("ids", ["int", "string"])
def test_next_items_serves_recent_ids_through_tf_servings_loader(ids, tmp_path):
    import tensorflow as tf

    from keras_rec.recommender.serving.next_items import PADDING_IDS, NextItems

    model = _next_item_model("softmax", max_history=3)
    item_vectors = np.asarray(model.item_vectors())
    item_ids = np.arange(100, 100 + ITEMS) if ids == "int" else np.array(
        [f"item-{i}" for i in range(ITEMS)], object
    )  # fmt: skip
    served = NextItems(
        model.encoder, item_vectors, item_ids, [f"t{i}" for i in range(ITEMS)], k=4,
        popular_items=np.arange(ITEMS), popular_scores=np.linspace(1, 0, ITEMS),
    )  # fmt: skip
    pad = PADDING_IDS["int64" if ids == "int" else "string"]
    unknown = 999 if ids == "int" else "nope"
    rows = [[pad, pad, 1, 2], [1, unknown, pad, 2], [pad, pad, pad, unknown], [0, 1, 2, 3]]
    request = np.array([[pad if r == pad else r if r == unknown else item_ids[r] for r in row]
                        for row in rows], dtype=item_ids.dtype)  # fmt: skip
    answer = served.serve(tf.constant(request))
    answered_ids = [[i.decode() if isinstance(i, bytes) else i for i in row]
                    for row in answer["item_ids"].numpy().tolist()]  # fmt: skip
    assert answer["used_items"].numpy().tolist() == [2, 2, 0, 3]
    # Unknown ids and padding are ignored wherever they sit.
    assert answered_ids[0] == answered_ids[1]
    # The given items are excluded; a row with none known gets popularity.
    for row in (0, 3):
        assert not set(answered_ids[row]) & set(request[row].tolist())
    assert answered_ids[2] == item_ids[:4].tolist()
    # The longest row keeps its latest 3 items: those are the query.
    expected = np.asarray(model({"history": np.array([[1, 2, 3]])}))[0, -1] @ item_vectors.T
    expected[[0, 1, 2, 3]] = -np.inf
    assert answered_ids[3] == item_ids[np.argsort(-expected)[:4]].tolist()
    result = export(
        served,
        tmp_path,
        "next_items",
        examples={"recent_item_ids": request},
        signatures={"serving_default": served.serve},
        chief=True,
    )
    assert result.serving_check["ok"]
    answered = answer_in_fresh_process(
        result.path,
        {"request": ("serving_default", {"recent_item_ids": request})},
        loaders=("session",),
    )
    assert not answered["errors"]["session"]
    got = answered["answers"]["session"]["request"]
    np.testing.assert_array_equal(got["item_ids"], answer["item_ids"].numpy())
    np.testing.assert_allclose(got["scores"], answer["scores"].numpy(), atol=1e-5)


def test_user_queries_read_training_items_only_until_the_refit():
    """Before the refit, a query must not read the validation item it is scored on."""
    import tensorflow as tf

    from keras_rec.recommender.data.recommender_inputs import RecommenderInputs, merge_validation
    from keras_rec.recommender.stages.sequence import sequence_vectors

    class LatestItem:
        """A stand-in model whose query is a one-hot of the latest item read."""

        max_history = 3
        time_gaps = False

        def item_vectors(self, training=False):
            return np.eye(4, dtype="float32")

        def __call__(self, inputs, training=False):
            rows = tf.maximum(inputs["history"], 0)
            return tf.one_hot(rows, 4)

    empty = np.zeros(0, np.int64)
    inputs = RecommenderInputs(
        item_ids=np.arange(4), item_titles=["a", "b", "c", "d"], item_texts=[],
        item_embeddings=np.eye(4, dtype="float32"), item_id_index=np.arange(1, 5),
        user_ids=np.arange(1), user_texts=[], user_embeddings=np.zeros((1, 4), "float32"),
        user_history=np.zeros((1, 4), "float32"), user_id_index=np.ones(1, np.int64),
        train_users=np.array([0, 0]), train_items=np.array([0, 1]), test_users=empty,
        test_items=empty, cold_items=empty, val_users=np.array([0]), val_items=np.array([3]),
        train_times=np.array([1.0, 2.0]), val_times=np.array([3.0]),
    )  # fmt: skip
    queries, _ = sequence_vectors(LatestItem(), inputs)
    assert int(np.argmax(queries[0])) == 1  # item 1, not the validation item 3
    queries, _ = sequence_vectors(LatestItem(), merge_validation(inputs))
    assert int(np.argmax(queries[0])) == 3  # after the refit it is history


def test_time_gaps_are_bucketed_alike_in_training_and_in_the_served_graph():
    import tensorflow as tf

    from keras_rec.recommender.data.user_sequences import gap_bucket, time_gap_buckets
    from keras_rec.recommender.serving.next_items import served_gap_buckets

    edges = [2**p + d for p in range(31) for d in (-1, 0, 1)]
    gaps = np.array([0, -5, *edges, 2**40], np.int64)
    times = np.cumsum(np.concatenate([[10**9], np.maximum(gaps, 0)]))[None, :]
    valid = tf.ones(times.shape, tf.bool)
    served = served_gap_buckets(tf.constant(times, tf.int64), valid).numpy()[0]
    assert served[0] == 0  # the oldest item read has no gap
    np.testing.assert_array_equal(served[1:], gap_bucket(np.maximum(gaps, 0)))
    assert gap_bucket([0, 1, 2, 3, 4, 2**29, 2**40]).tolist() == [1, 2, 3, 3, 4, 31, 31]
    # Per user, in time order (ties by item), the first item without a gap.
    lists = time_gap_buckets([0, 0, 0, 1, 1], [3, 1, 2, 5, 6], [10, 10, 100, 7, 7.9], 2)
    assert [list(lists[0]), list(lists[1])] == [[0, 1, 8], [0, 1]]
    with pytest.raises(ValueError, match="timestamp"):
        time_gap_buckets([0, 1], [0, 1], None, 2)


def test_the_sequence_model_learns_what_a_time_gap_says():
    import keras

    from keras_rec.recommender.data.user_sequences import time_gap_buckets
    from keras_rec.recommender.stages.sequence import window_examples, window_gaps

    # After an item that came seconds after the one before, the next is item + 1;
    # after one that came a day later, item + 3. Only the gaps tell them apart.
    rng = np.random.default_rng(0)
    users, items, times = [], [], []
    for user in range(96):
        item, now = int(rng.integers(ITEMS)), 10**9
        for step in range(10):
            long_gap = step > 0 and bool(rng.integers(2))
            now += 86_400 if long_gap else 5
            users.append(user), items.append(item), times.append(now)
            item = (item + (3 if long_gap else 1)) % ITEMS
    sequences = time_ordered_items(users, items, times, 96)
    windows = training_windows(sequences, 4)
    gaps = window_gaps(training_windows(time_gap_buckets(users, items, times, 96), 4), windows)
    model = _next_item_model("softmax", time_gaps=True)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    examples = window_examples(windows, gaps)
    model.fit(examples.gather(np.arange(len(windows))), batch_size=16, epochs=40, verbose=0)
    short, long = 4, 18  # buckets of 5 s and of a day
    history = np.array([[2, 3, 4, 5], [2, 3, 4, 5]])
    queries = np.asarray(
        model(
            {
                "history": history,
                "gaps": np.array([[0, short, short, short], [0, short, short, long]]),
            }
        )
    )
    assert np.argmax(queries[:, -1] @ np.asarray(model.item_vectors()).T, axis=1).tolist() == [6, 8]


def test_next_items_reads_recent_timestamps_as_training_does(tmp_path):
    import tensorflow as tf

    from keras_rec.recommender.serving.next_items import NextItems

    model = _next_item_model("softmax", max_history=3, time_gaps=True)
    model.gap_embedding.embeddings.assign(
        np.random.default_rng(1).normal(size=model.gap_embedding.embeddings.shape)
    )
    item_vectors = np.asarray(model.item_vectors())
    served = NextItems(
        model.encoder, item_vectors, np.arange(ITEMS), [f"t{i}" for i in range(ITEMS)], k=4,
        popular_items=np.arange(ITEMS), popular_scores=np.ones(ITEMS),
        gap_table=model.gap_table(),
    )  # fmt: skip
    # An unknown id (99) between two known ones: the gap runs from the known one before.
    request = {
        "recent_item_ids": np.array([[1, 99, 2, 3], [5, 6, 7, 8]], np.int64),
        "recent_timestamps": np.array([[100, 150, 200, 10_000], [0, 1, 3, 3]], np.int64),
    }
    answer = served.serve(**{k: tf.constant(v) for k, v in request.items()})
    with pytest.raises(tf.errors.InvalidArgumentError, match="one time per id"):
        served.serve(tf.constant(request["recent_item_ids"]), tf.constant([[1, 2]], tf.int64))
    gaps = np.array([[0, 8, 15], [0, 3, 1]])  # 100 s, 9,800 s; 2 s, 0 s (the oldest: none)
    histories = np.array([[1, 2, 3], [6, 7, 8]])
    queries = np.asarray(model({"history": histories, "gaps": gaps}))[:, -1]
    expected = queries @ item_vectors.T
    expected[np.arange(2)[:, None], histories] = -np.inf
    assert answer["item_ids"].numpy().tolist() == np.argsort(-expected)[:, :4].tolist()
    result = export(
        served, tmp_path, "next_items", examples=request,
        signatures={"serving_default": served.serve}, chief=True,
    )  # fmt: skip
    answered = answer_in_fresh_process(
        result.path, {"request": ("serving_default", request)}, loaders=("session",)
    )
    assert not answered["errors"]["session"]
    got = answered["answers"]["session"]["request"]["item_ids"]
    np.testing.assert_array_equal(got, answer["item_ids"].numpy())
