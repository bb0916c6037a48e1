import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_keras_round_trip

from keras_rec.classifier import (
    build_classifier_head,
    build_text_classifier,
    build_token_id_classifier,
)
from keras_rec.hub import HubLayer

TEXTS = tf.constant(["the movie", "toy star wars", "", "of 1 2 3 " * 100])


def _dirs(hub_dir):
    return os.path.join(hub_dir, "preprocess"), os.path.join(hub_dir, "encoder")


def test_frozen_classifier_has_no_trainable_encoder_weights(tiny_hub_dir):
    model = build_text_classifier(*_dirs(tiny_hub_dir), num_classes=3, hidden_units=(16,))
    assert [layer.name for layer in model.layers[:3]] == ["text", "preprocessor", "encoder"]
    assert model.get_layer("encoder").trainable_weights == []
    # Only the head trains: Dense(32->16) + Dense(16->3), kernels and biases.
    assert len(model.trainable_weights) == 4
    probabilities = model(TEXTS).numpy()
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_frozen_encoder_weights_do_not_move_and_run_in_inference_mode(tiny_hub_dir):
    model = build_text_classifier(*_dirs(tiny_hub_dir), num_classes=2, hidden_units=())
    encoder = model.get_layer("encoder")
    before = [np.array(w) for w in encoder.weights]
    model.compile(optimizer="adamw", loss="sparse_categorical_crossentropy")
    model.fit(TEXTS, np.array([0, 1, 0, 1]), epochs=2, verbose=0)
    for old, new in zip(before, encoder.weights):
        np.testing.assert_array_equal(old, np.array(new))
    # training=True through the model still gives the inference-mode embedding.
    tokens = model.get_layer("preprocessor")(TEXTS)
    np.testing.assert_array_equal(encoder(tokens, training=True), encoder(tokens, training=False))


def test_fine_tuned_classifier_trains_the_encoder(tiny_hub_dir):
    model = build_text_classifier(*_dirs(tiny_hub_dir), num_classes=2, trainable=True)
    encoder = model.get_layer("encoder")
    assert len(encoder.trainable_weights) > 0
    before = [np.array(w) for w in encoder.trainable_weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(TEXTS, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert any(
        not np.array_equal(a, np.array(b)) for a, b in zip(before, encoder.trainable_weights)
    )


def test_multi_label_head_uses_sigmoid(tiny_hub_dir):
    model = build_text_classifier(*_dirs(tiny_hub_dir), num_classes=4, multi_label=True)
    probabilities = model(TEXTS).numpy()
    assert probabilities.shape == (4, 4)
    assert not np.allclose(probabilities.sum(axis=1), 1.0)


def test_token_id_classifier_matches_the_text_classifier(tiny_hub_dir):
    preprocess_dir, encoder_dir = _dirs(tiny_hub_dir)
    text_model = build_text_classifier(preprocess_dir, encoder_dir, num_classes=3)
    head = text_model.layers[-1]
    token_model = build_token_id_classifier(encoder_dir, num_classes=3, head=head)
    assert sorted(t.name for t in token_model.inputs) == [
        "input_mask",
        "input_type_ids",
        "input_word_ids",
    ]
    tokens = tf.saved_model.load(preprocess_dir)(TEXTS)  # ids made outside the model
    np.testing.assert_allclose(token_model(tokens), text_model(TEXTS), atol=1e-6)


def test_classifier_survives_keras_round_trip(tiny_hub_dir, tmp_path):
    model = build_text_classifier(*_dirs(tiny_hub_dir), num_classes=3, trainable=True)
    reloaded = assert_keras_round_trip(model, TEXTS, tmp_path, safe_mode=False)
    assert reloaded.get_layer("encoder").trainable


def test_head_reuse_checks_sizes(tiny_hub_dir):
    head = build_classifier_head(16, 3)
    with pytest.raises(ValueError, match="`head` maps 16 -> 3, but the encoder gives 32"):
        build_text_classifier(*_dirs(tiny_hub_dir), num_classes=3, head=head)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 1}, "`num_classes` must be an integer >= 2"),
        ({"num_classes": 3, "hidden_units": (0,)}, "`hidden_units` must be positive"),
        ({"num_classes": 3, "dropout": 1.0}, "`dropout` must be in"),
    ],
)
def test_head_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_classifier_head(8, **kwargs)


def test_handles_must_be_strings_or_hub_layers(tiny_hub_dir):
    with pytest.raises(TypeError, match="TF Hub handle"):
        build_text_classifier(42, os.path.join(tiny_hub_dir, "encoder"), num_classes=2)
    layer = HubLayer(os.path.join(tiny_hub_dir, "encoder"), output_key="sentence_embedding")
    model = build_text_classifier(
        os.path.join(tiny_hub_dir, "preprocess"), layer, num_classes=2, trainable=True
    )
    assert model.get_layer(layer.name).trainable
