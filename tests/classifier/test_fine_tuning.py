import keras
import numpy as np
import pytest
from helpers import assert_config_round_trip

from keras_rec.classifier import ScaledAdamW, WarmupLinearDecay, fine_tuning_optimizer


def test_schedule_warms_up_then_decays_linearly():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=110)
    # step 5: 5/10 of the peak; step 60: (110-60)/(110-10) of it; past the end: 0.
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(values, [0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0], atol=1e-9)
    assert_config_round_trip(schedule)
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupLinearDecay(1e-3, 10, 10)


def _two_layer_model():
    inputs = keras.Input(shape=(4,))
    hidden = keras.layers.Dense(4, use_bias=False, name="encoder")(inputs)
    outputs = keras.layers.Dense(1, use_bias=False, name="head")(hidden)
    return keras.Model(inputs, outputs)


def test_encoder_weights_move_at_their_scaled_rate():
    model = _two_layer_model()
    optimizer = ScaledAdamW(
        learning_rate=1e-2, weight_decay=0.0, learning_rate_multipliers={"encoder/": 0.1}
    )
    before = {w.path: np.array(w) for w in model.trainable_weights}
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.train_on_batch(x, np.ones((8, 1), "float32"))
    # Adam's first step moves every weight by ~lr (sign of the gradient).
    moves = {w.path: np.abs(np.array(w) - before[w.path]).max() for w in model.trainable_weights}
    np.testing.assert_allclose(moves["head/kernel"], 1e-2, rtol=1e-3)
    np.testing.assert_allclose(moves["encoder/kernel"], 1e-3, rtol=1e-3)


def test_weight_decay_follows_each_weights_rate():
    model = _two_layer_model()
    optimizer = ScaledAdamW(
        learning_rate=0.1, weight_decay=0.5, learning_rate_multipliers={"encoder/": 0.1}
    )
    model.compile(optimizer=optimizer, loss="mse")
    weights = {w.path: w for w in model.trainable_weights}
    optimizer.build(model.trainable_weights)
    for w in model.trainable_weights:
        w.assign(np.ones(w.shape, "float32"))
    # Zero gradients: only the decay acts, w *= 1 - wd * lr * multiplier.
    optimizer.apply(
        [np.zeros(w.shape, "float32") for w in model.trainable_weights], model.trainable_weights
    )
    np.testing.assert_allclose(np.array(weights["head/kernel"]), 1 - 0.5 * 0.1, rtol=1e-6)
    np.testing.assert_allclose(np.array(weights["encoder/kernel"]), 1 - 0.5 * 0.01, rtol=1e-6)


def test_fine_tuning_optimizer_settings_and_config():
    optimizer = fine_tuning_optimizer(total_steps=100)
    assert optimizer.global_clipnorm == 1.0 and optimizer.weight_decay == 0.01
    assert optimizer.multiplier_for("encoder/layer_0_kernel") == pytest.approx(0.02)
    assert optimizer.multiplier_for("classifier_head/head_dense_0/kernel") == 1.0
    assert float(optimizer.learning_rate) == 0.0  # warmup starts at 0
    clone = ScaledAdamW.from_config(optimizer.get_config())
    assert clone.learning_rate_multipliers == {"encoder/": pytest.approx(0.02)}
    with pytest.raises(ValueError, match="positive floats"):
        ScaledAdamW(learning_rate_multipliers={"encoder/": 0})
