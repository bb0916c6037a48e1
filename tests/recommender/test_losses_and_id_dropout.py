"""The training losses against hand-computed values, and `IdDropout`."""

import math

import keras
import numpy as np
import pytest
from helpers import assert_config_round_trip

from keras_rec.recommender.layers.id_dropout import IdDropout
from keras_rec.recommender.layers.tower import build_tower
from keras_rec.recommender.layers.two_tower_retrieval import TwoTowerRetrieval


def _identity_towers():
    user = keras.Input(shape=(2,), name="embedding")
    item = keras.Input(shape=(2,), name="embedding")
    return (
        keras.Model({"embedding": user}, user, name="user_tower"),
        keras.Model({"embedding": item}, item, name="item_tower"),
    )


def _loss(model, user, item, **extra):
    x = {"user": {"embedding": user}, "item": {"embedding": item}, **extra}
    y_pred = model(x)
    return float(model.compute_loss(x=x, y_pred=y_pred))


def _log_sum_exp(values):
    return math.log(sum(math.exp(v) for v in values))


def test_in_batch_softmax_loss_equals_hand_computed_value():
    user = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], "float32")
    item = np.array([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]], "float32")
    model = TwoTowerRetrieval(*_identity_towers(), temperature=0.5)
    # Logits = user @ item.T / 0.5; row i's label is column i.
    logits = [[1.6, 0.0, 2.0], [1.92, 1.6, 1.2], [1.2, 2.0, 0.0]]
    expected = np.mean([_log_sum_exp(row) - row[i] for i, row in enumerate(logits)])
    assert _loss(model, user, item) == pytest.approx(expected, rel=1e-5)

    # log-Q subtracts log q of each column; item 2 repeats item 0 (accidental hit).
    log_q = np.log(np.array([0.5, 0.25, 0.5], "float32"))
    keys = np.array([10, 11, 10], "int64")
    corrected = [[v - lq for v, lq in zip(row, log_q)] for row in logits]
    rows = []
    for i, row in enumerate(corrected):
        kept = [v for j, v in enumerate(row) if j == i or keys[j] != keys[i]]
        rows.append(_log_sum_exp(kept) - row[i])
    assert _loss(model, user, item, item_log_q=log_q, item_key=keys) == pytest.approx(
        np.mean(rows), rel=1e-5
    )
    total = TwoTowerRetrieval(*_identity_towers(), temperature=0.5, loss_reduction="sum")
    assert _loss(total, user, item) == pytest.approx(3 * expected, rel=1e-5)


def test_sampled_bce_loss_equals_hand_computed_value():
    # With two rows, each row's only possible negative is the other column.
    user = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    item = np.array([[0.6, 0.8], [1.0, 0.0]], "float32")
    model = TwoTowerRetrieval(
        *_identity_towers(), temperature=1.0, loss="sampled_bce", num_negatives=3, seed=1
    )
    logits = [[0.6, 1.0], [0.8, 0.0]]

    def softplus(v):
        return math.log1p(math.exp(v))

    expected = np.mean(
        [
            softplus(-logits[0][0]) + softplus(logits[0][1]),
            softplus(-logits[1][1]) + softplus(logits[1][0]),
        ]
    )
    assert _loss(model, user, item) == pytest.approx(expected, rel=1e-5)
    # The same item twice: the negative is an accidental hit and drops out.
    keys = np.array([5, 5], "int64")
    assert _loss(model, user, item, item_key=keys) == pytest.approx(
        np.mean([softplus(-0.6), softplus(-0.0)]), rel=1e-5
    )
    assert assert_config_round_trip(model).loss_name == "sampled_bce"
    with pytest.raises(ValueError, match="`loss` must be one of"):
        TwoTowerRetrieval(*_identity_towers(), loss="hinge")


def test_sampled_bce_training_learns():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(16, 8)).astype("float32")
    item_ids = rng.integers(0, 16, size=512)
    users = items[item_ids] + 0.1 * rng.normal(size=(512, 8)).astype("float32")
    model = TwoTowerRetrieval(
        build_tower(8, "user_tower", output_dim=8, hidden_units=(16,)),
        build_tower(8, "item_tower", output_dim=8, hidden_units=(16,)),
        temperature=0.1,
        loss="sampled_bce",
        num_negatives=4,
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = {
        "user": {"embedding": users},
        "item": {"embedding": items[item_ids]},
        "item_key": item_ids.astype("int64"),
    }
    history = model.fit(x, epochs=6, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]


def test_id_dropout_maps_unknown_ids_and_drops_in_training_only():
    layer = IdDropout(0.5, num_ids=10, seed=3)
    ids = np.array([1, 9, 10, 12345, -3, 4], "int64")
    np.testing.assert_array_equal(layer(ids).numpy(), [1, 9, 0, 0, 0, 4])
    many = np.arange(1, 10_001, dtype="int64") % 9 + 1
    dropped = np.mean(IdDropout(0.3, seed=0)(many, training=True).numpy() == 0)
    assert 0.27 < dropped < 0.33
    assert (IdDropout(0.3, seed=0)(many, training=False).numpy() == many).all()
    assert assert_config_round_trip(layer).num_ids == 10
    with pytest.raises(ValueError, match=r"`rate` must be in \[0, 1\)"):
        IdDropout(1.0)
