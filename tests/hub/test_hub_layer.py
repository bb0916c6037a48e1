"""Tests for `keras_rec.hub.HubLayer` and `keras_rec.hub.handle.resolve_handle`.

The subjects are small SavedModels built here with core TF ops, shaped like
TF Hub's BERT modules: a string "preprocessor" returning the three int32
encoder inputs, and an "encoder" (embeddings + dense kernel + dropout + an L2
regularization loss) whose `__call__(inputs, training)` returns a dict.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    assert_config_round_trip,
    assert_keras_round_trip,
    assert_saved_model_round_trip,
)

from keras_rec.hub.handle import resolve_handle
from keras_rec.hub.hub_layer import HubLayer

VOCAB, DIM, SEQ = 64, 8, 6
ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
REGULARIZATION = 0.01
TEXTS = np.array(["the movie was great", "A bad story", "toy story star wars", "x", "of stars"])
# TF refuses other characters in a name scope (optimizers open one per slot).
VALID_SCOPE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/>]*")


# === Test subjects ===


def _build_encoder(path, dropout=0.5):
    """A BERT-encoder look-alike, exported with the TF Hub attributes."""
    spec = {n: tf.TensorSpec([None, None], tf.int32, name=n) for n in ENCODER_INPUTS}
    module = tf.Module()
    module.embeddings = tf.Variable(
        tf.random.stateless_normal([VOCAB, DIM], seed=[1, 2]), name="embeddings"
    )
    module.kernel = tf.Variable(
        tf.random.stateless_normal([DIM, DIM], seed=[3, 4]), name="dense/kernel"
    )
    module.bias = tf.Variable(tf.fill([DIM], 0.1), name="dense/bias")
    module.scale = tf.Variable(1.5, trainable=False, name="scale")

    def encode(inputs, training):
        x = tf.gather(module.embeddings, inputs["input_word_ids"])
        x += 0.5 * tf.cast(inputs["input_type_ids"], tf.float32)[..., None]
        if training:
            x = tf.nn.dropout(x, dropout)
        x = tf.einsum("bld,de->ble", x, module.kernel) + module.bias
        sequence = tf.tanh(x * module.scale)
        mask = tf.cast(inputs["input_mask"], tf.float32)[..., None]
        pooled = tf.reduce_sum(sequence * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)
        return {"pooled_output": pooled, "sequence_output": sequence, "default": pooled}

    @tf.function
    def call(inputs, training=False):
        return encode(inputs, training)

    for training in (True, False):
        call.get_concrete_function(spec, training=training)

    @tf.function(input_signature=list(spec.values()))
    def serve(input_word_ids, input_mask, input_type_ids):
        inputs = dict(
            input_word_ids=input_word_ids,
            input_mask=input_mask,
            input_type_ids=input_type_ids,
        )
        return encode(inputs, False)

    @tf.function(input_signature=list(spec.values()))
    def pooled(input_word_ids, input_mask, input_type_ids):
        outputs = serve(input_word_ids, input_mask, input_type_ids)
        return {"pooled_output": outputs["pooled_output"]}

    root = tf.train.Checkpoint(module=module)
    root.__call__ = call
    root.variables = list(module.variables)
    root.trainable_variables = list(module.trainable_variables)
    root.regularization_losses = [
        tf.function(
            lambda: REGULARIZATION * tf.reduce_sum(tf.square(module.kernel)),
            input_signature=[],
        )
    ]
    tf.saved_model.save(root, path, signatures={"serving_default": serve, "pooled": pooled})
    return path


WORDS = ["the", "movie", "story", "toy", "star", "wars"]


class _Preprocessor(tf.Module):
    """A BERT-preprocessor look-alike: strings -> padded token ids, from a
    vocabulary file (a SavedModel asset, as in TF Hub) plus hashed OOV buckets."""

    def __init__(self, vocab_file):
        super().__init__()
        initializer = tf.lookup.TextFileInitializer(
            vocab_file,
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self.table = tf.lookup.StaticVocabularyTable(initializer, VOCAB - 2 - len(WORDS))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text):
        tokens = tf.strings.split(tf.strings.lower(text))
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens) + 2
        cls = tf.RaggedTensor.from_tensor(tf.ones([tf.shape(text)[0], 1], tf.int64))
        word_ids = tf.concat([cls, ids], axis=1).to_tensor(0, shape=[None, SEQ])
        word_ids = tf.cast(word_ids, tf.int32)
        return {
            "input_word_ids": word_ids,
            "input_mask": tf.cast(word_ids > 0, tf.int32),
            "input_type_ids": tf.zeros_like(word_ids),
        }


class _Scaler(tf.Module):
    """`x * factor + offset`: a plain tf.Module (no TF Hub attributes once loaded)
    with a Python argument, and outputs of unknown static shape."""

    def __init__(self):
        super().__init__()
        self.offset = tf.Variable([1.0, 2.0], name="offset")

    @tf.function
    def __call__(self, x, factor=2.0):
        y = x * factor + self.offset
        return tf.reshape(y, [tf.shape(y)[0], -1])  # Static shape: (None, None).


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub_subjects")
    scaler = _Scaler()
    for factor in (2.0, 3.0):
        scaler.__call__.get_concrete_function(tf.TensorSpec([None, None], tf.float32), factor)
    tf.saved_model.save(scaler, str(root / "scaler"))
    vocab_file = root / "vocab.txt"
    vocab_file.write_text("\n".join(WORDS) + "\n")
    tf.saved_model.save(_Preprocessor(str(vocab_file)), str(root / "preprocessor"))
    vocab_file.unlink()  # The SavedModel must carry its own copy (an asset).
    return {
        "encoder": _build_encoder(str(root / "encoder")),
        "preprocessor": str(root / "preprocessor"),
        "scaler": str(root / "scaler"),
    }


def _encoder_inputs(batch_size=4, seed=0):
    rng = np.random.default_rng(seed)
    word_ids = rng.integers(1, VOCAB, size=(batch_size, SEQ)).astype("int32")
    mask = np.ones((batch_size, SEQ), "int32")
    mask[:, -2:] = 0
    type_ids = np.zeros((batch_size, SEQ), "int32")
    type_ids[:, SEQ // 2 :] = 1
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


def _classifier(encoder_path, trainable):
    # === Layers ===
    encoder = HubLayer(encoder_path, trainable=trainable, name="encoder")
    head = keras.layers.Dense(1, name="head")
    # === Functional Model ===
    inputs = {n: keras.Input(shape=(SEQ,), dtype="int32", name=n) for n in ENCODER_INPUTS}
    outputs = head(encoder(inputs)["pooled_output"])
    return keras.Model(inputs, outputs), encoder


def _text_classifier(paths):
    text = keras.Input(shape=(), dtype="string", name="text")
    encoder_inputs = HubLayer(paths["preprocessor"], name="preprocessor")(text)
    encoder = HubLayer(paths["encoder"], trainable=True, name="encoder")
    pooled = encoder(encoder_inputs)["pooled_output"]
    logits = keras.layers.Dense(2, name="head")(pooled)
    return keras.Model(text, logits)


def _module_values(layer):
    return {w.name: w.numpy().copy() for w in layer.weights}


# === Weights ===


def test_frozen_layer_has_no_trainable_weights(paths):
    layer = HubLayer(paths["encoder"])
    assert len(layer.trainable_weights) == 0
    assert sorted(w.name for w in layer.non_trainable_weights) == [
        "dense_bias",
        "dense_kernel",
        "embeddings",
        "scale",
    ]
    assert not any(w.trainable for w in layer.weights)


def test_trainable_layer_exposes_module_variables_without_copies(paths):
    layer = HubLayer(paths["encoder"], trainable=True)
    assert sorted(w.name for w in layer.trainable_weights) == [
        "dense_bias",
        "dense_kernel",
        "embeddings",
    ]
    assert [w.name for w in layer.non_trainable_weights] == ["scale"]
    # The Keras weights are the module's variables, not copies.
    module_ids = {id(v) for v in layer.resolved_object.variables}
    assert {id(w.value) for w in layer.weights} == module_ids


def test_weight_names_are_valid_scope_names(paths):
    layer = HubLayer(paths["encoder"], trainable=True, name="bert")
    module_names = sorted(v.name for v in layer.resolved_object.variables)
    assert "dense/kernel:0" in module_names  # What the `:0` fuss is about.
    for weight in layer.weights:
        assert ":" not in weight.name and "/" not in weight.name
        assert VALID_SCOPE_NAME.fullmatch(weight.path), weight.path
        assert weight.path == f"bert/{weight.name}"


def test_trainable_toggle_after_construction(paths):
    layer = HubLayer(paths["encoder"])
    layer.trainable = True
    assert len(layer.trainable_weights) == 3
    layer.trainable = False
    assert len(layer.trainable_weights) == 0


def test_variables_found_without_hub_attributes(paths):
    # A plain tf.Module loses `.variables` in a SavedModel: walk its object graph.
    layer = HubLayer(paths["scaler"], trainable=True)
    assert [w.name for w in layer.trainable_weights] == ["offset"]


@pytest.mark.parametrize(
    "optimizer",
    [
        keras.optimizers.SGD(0.1, momentum=0.9),
        keras.optimizers.Adam(0.01),
        keras.optimizers.AdamW(0.01),
        keras.optimizers.Adafactor(0.01),
        keras.optimizers.RMSprop(0.01),
        keras.optimizers.Adagrad(0.1),
        keras.optimizers.Lion(0.01),
        keras.optimizers.Nadam(0.01),
    ],
    ids=lambda o: type(o).__name__,
)
def test_every_optimizer_trains_module_weights(paths, optimizer):
    model, encoder = _classifier(paths["encoder"], trainable=True)
    model.compile(optimizer=optimizer, loss="mse")
    before = _module_values(encoder)
    inputs = _encoder_inputs()
    model.fit(inputs, np.ones((4, 1), "float32"), batch_size=4, epochs=2, verbose=0)
    after = _module_values(encoder)
    for name in ("dense_kernel", "dense_bias", "embeddings"):
        assert not np.array_equal(before[name], after[name]), name
    np.testing.assert_array_equal(before["scale"], after["scale"])


# === Training behaviour ===


def test_frozen_weights_bit_identical_after_fit(paths):
    model, encoder = _classifier(paths["encoder"], trainable=False)
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    before = _module_values(encoder)
    head_before = model.get_layer("head").kernel.numpy().copy()
    model.fit(_encoder_inputs(), np.ones((4, 1), "float32"), epochs=2, verbose=0)
    after = _module_values(encoder)
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
    # The head did train, so the fit did run.
    assert not np.array_equal(head_before, model.get_layer("head").kernel.numpy())


@pytest.mark.parametrize("trainable", [False, True])
def test_training_flag_reaches_module_only_when_trainable(paths, trainable):
    """Dropout (rate 0.5) in the module: `fit` (training=True) and `evaluate`
    (training=False) losses agree iff the module ran in inference mode. With
    learning rate 0 both see the same weights."""
    model, _ = _classifier(paths["encoder"], trainable=trainable)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    inputs, targets = _encoder_inputs(8), np.ones((8, 1), "float32")
    fit_loss = model.fit(inputs, targets, batch_size=8, verbose=0).history["loss"][0]
    eval_loss = model.evaluate(inputs, targets, batch_size=8, verbose=0)
    if trainable:
        assert abs(fit_loss - eval_loss) > 1e-4
    else:
        assert fit_loss == pytest.approx(eval_loss, abs=1e-6)
    # `predict` runs the module in inference mode, deterministically.
    predicted = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(predicted, model.predict(inputs, verbose=0), atol=1e-7)
    np.testing.assert_allclose(predicted, model(inputs, training=False), atol=1e-6)


def test_training_argument_forms(paths):
    inputs = _encoder_inputs()
    frozen = HubLayer(paths["encoder"], output_key="pooled_output")
    reference = frozen.resolved_object(inputs, training=False)["pooled_output"]
    for _ in range(2):
        np.testing.assert_array_equal(frozen(inputs, training=True), reference)
    # A tensor flag picks the module's branch at run time.
    trainable = HubLayer(paths["encoder"], trainable=True, output_key="pooled_output")
    np.testing.assert_array_equal(trainable(inputs, training=tf.constant(False)), reference)
    assert not np.allclose(trainable(inputs, training=tf.constant(True)), reference)


def test_regularization_losses_only_when_trainable(paths):
    inputs = _encoder_inputs()
    frozen = HubLayer(paths["encoder"])
    frozen(inputs)
    assert frozen.losses == []

    trainable = HubLayer(paths["encoder"], trainable=True)
    trainable(inputs)
    kernel = {w.name: w for w in trainable.weights}["dense_kernel"].numpy()
    # The module's loss: 0.01 * sum(kernel ** 2).
    expected = REGULARIZATION * np.sum(kernel.astype("float64") ** 2)
    assert len(trainable.losses) == 1
    assert float(trainable.losses[0]) == pytest.approx(expected, rel=1e-5)


# === Functional models and outputs ===


def test_string_pipeline_in_functional_model(paths):
    text = keras.Input(shape=(), dtype="string")
    encoder_inputs = HubLayer(paths["preprocessor"])(text)
    assert {k: tuple(v.shape) for k, v in encoder_inputs.items()} == {
        n: (None, SEQ) for n in ENCODER_INPUTS
    }
    assert all(v.dtype == "int32" for v in encoder_inputs.values())
    encoder_outputs = HubLayer(paths["encoder"])(encoder_inputs)
    assert tuple(encoder_outputs["sequence_output"].shape) == (None, SEQ, DIM)
    assert tuple(encoder_outputs["pooled_output"].shape) == (None, DIM)

    model = _text_classifier(paths)

    # Same numbers as calling the modules by hand.
    preprocessor = tf.saved_model.load(paths["preprocessor"])
    encoder = tf.saved_model.load(paths["encoder"])
    pooled = encoder(preprocessor(tf.constant(TEXTS)), training=False)["pooled_output"]
    head = model.get_layer("head")
    expected = pooled.numpy() @ head.kernel.numpy() + head.bias.numpy()
    np.testing.assert_allclose(model.predict(tf.constant(TEXTS), verbose=0), expected, atol=1e-5)


def test_signature_with_dict_inputs(paths):
    inputs = _encoder_inputs()
    expected = tf.saved_model.load(paths["encoder"])(inputs, training=False)

    as_dict = HubLayer(
        paths["encoder"], signature="serving_default", signature_outputs_as_dict=True
    )
    outputs = as_dict(inputs)
    assert sorted(outputs) == ["default", "pooled_output", "sequence_output"]
    for key in outputs:
        np.testing.assert_allclose(outputs[key], expected[key], atol=1e-6)

    by_key = HubLayer(paths["encoder"], signature="serving_default", output_key="sequence_output")
    np.testing.assert_allclose(by_key(inputs), expected["sequence_output"], atol=1e-6)

    # One output: returned as it is, without `output_key`.
    single = HubLayer(paths["encoder"], signature="pooled")
    keras_inputs = {n: keras.Input(shape=(SEQ,), dtype="int32", name=n) for n in ENCODER_INPUTS}
    symbolic = single(keras_inputs)
    assert tuple(symbolic.shape) == (None, DIM)
    model = keras.Model(keras_inputs, symbolic)
    np.testing.assert_allclose(model(inputs), expected["pooled_output"], atol=1e-6)


def test_signature_errors(paths):
    with pytest.raises(ValueError, match=r"Unknown signature 'nope'.*pooled"):
        HubLayer(paths["encoder"], signature="nope")
    with pytest.raises(ValueError, match="several outputs.*output_key"):
        HubLayer(paths["encoder"], signature="serving_default")
    with pytest.raises(ValueError, match="output_key.*Received: output_key='nope'"):
        HubLayer(paths["encoder"], signature="serving_default", output_key="nope")
    layer = HubLayer(paths["encoder"], signature="pooled")
    with pytest.raises(ValueError, match="pass them as a dict"):
        layer(_encoder_inputs()["input_word_ids"])


def test_wrong_inputs_name_what_the_module_accepts(paths):
    wrong = {k: v.astype("int64") for k, v in _encoder_inputs().items()}
    with pytest.raises(ValueError, match=r"does not accept these inputs.*int64.*exported for"):
        HubLayer(paths["encoder"])(wrong)


def test_output_key_on_call_outputs(paths):
    layer = HubLayer(paths["encoder"], output_key="pooled_output")
    assert tuple(layer(_encoder_inputs()).shape) == (4, DIM)
    with pytest.raises(ValueError, match="one of the module outputs"):
        HubLayer(paths["encoder"], output_key="nope")(_encoder_inputs())


def test_arguments_and_output_shape(paths):
    x = np.array([[1.0, 1.0], [2.0, 0.0]], "float32")
    # The default factor is 2; `arguments` passes 3: [1, 1] * 3 + [1, 2].
    np.testing.assert_allclose(HubLayer(paths["scaler"])(x), [[3.0, 4.0], [5.0, 2.0]])
    layer = HubLayer(paths["scaler"], arguments={"factor": 3.0})
    np.testing.assert_allclose(layer(x), [[4.0, 5.0], [7.0, 2.0]])

    # The module's output shape is unknown; `output_shape` fills it in.
    inputs = keras.Input(shape=(2,))
    assert tuple(HubLayer(paths["scaler"])(inputs).shape) == (None, None)
    assert tuple(HubLayer(paths["scaler"], output_shape=[2])(inputs).shape) == (None, 2)


def test_mixed_precision_policy_leaves_module_in_float32(paths):
    # The module's dtypes are fixed: a float16 input would not match its signature.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        inputs = keras.Input(shape=(2,))
        layer = HubLayer(paths["scaler"], output_shape=[2])
        outputs = keras.layers.Dense(1)(layer(inputs))
        model = keras.Model(inputs, outputs)
        assert layer.compute_dtype == "float32"
        assert model(np.ones((2, 2), "float32")).dtype == "float16"
    finally:
        keras.config.set_dtype_policy(previous)


def test_loaded_object_handle_works_but_has_no_config(paths):
    loaded = tf.saved_model.load(paths["encoder"])
    layer = HubLayer(loaded, trainable=True)
    assert len(layer.trainable_weights) == 3
    layer(_encoder_inputs())
    with pytest.raises(NotImplementedError, match="string `handle`"):
        layer.get_config()

    in_memory = _Scaler()  # Not saved at all.
    layer = HubLayer(in_memory, trainable=True)
    np.testing.assert_allclose(layer(np.zeros((1, 2), "float32")), [[1.0, 2.0]])
    assert layer.trainable_weights[0].value is in_memory.offset


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"handle": ""}, "must not be empty"),
        ({"handle": 3}, "`handle` must be a string"),
        ({"arguments": [1]}, "`arguments` must be a dict"),
        ({"signature_outputs_as_dict": True}, "needs a `signature`"),
        ({"output_shape": "big"}, "`output_shape` must be a shape"),
        ({"load_options": 1}, "`load_options` must be"),
    ],
)
def test_invalid_arguments(paths, kwargs, message):
    kwargs = {"handle": paths["encoder"], **kwargs}
    with pytest.raises(ValueError, match=message):
        HubLayer(**kwargs)


# === Serialization ===


def test_config_round_trip(paths):
    layer = HubLayer(
        paths["encoder"],
        trainable=True,
        signature="serving_default",
        output_key="pooled_output",
        output_shape=(DIM,),
        load_options={"allow_partial_checkpoint": True},
        name="bert",
    )
    clone = assert_config_round_trip(layer)
    assert clone.trainable and clone.name == "bert"
    assert clone.get_config()["output_shape"] == [DIM]

    options = tf.saved_model.LoadOptions(experimental_io_device="/job:localhost")
    layer = HubLayer(paths["scaler"], arguments={"factor": 3.0}, load_options=options)
    config = layer.get_config()
    assert config["load_options"]["experimental_io_device"] == "/job:localhost"
    assert config["arguments"] == {"factor": 3.0} and config["trainable"] is False
    assert_config_round_trip(HubLayer.from_config(config))


def test_keras_round_trip_keeps_fine_tuned_weights(paths, tmp_path):
    model, encoder = _classifier(paths["encoder"], trainable=True)
    model.compile(optimizer=keras.optimizers.AdamW(0.05), loss="mse")
    inputs = _encoder_inputs()
    model.fit(inputs, np.ones((4, 1), "float32"), epochs=2, verbose=0)
    tuned = _module_values(encoder)
    original = _module_values(HubLayer(paths["encoder"]))
    assert not np.array_equal(tuned["dense_kernel"], original["dense_kernel"])

    reloaded = assert_keras_round_trip(model, inputs, tmp_path, safe_mode=False)
    reloaded_encoder = reloaded.get_layer("encoder")
    assert isinstance(reloaded_encoder, HubLayer) and reloaded_encoder.trainable
    for name, value in _module_values(reloaded_encoder).items():
        np.testing.assert_array_equal(value, tuned[name])


def test_loading_a_keras_file_with_a_hub_layer_needs_unsafe_mode(paths, tmp_path):
    model, _ = _classifier(paths["encoder"], trainable=False)
    path = str(tmp_path / "model.keras")
    model.save(path)
    # The .keras file names a SavedModel path: loading it runs that graph.
    with pytest.raises(ValueError, match=r"(?s)`HubLayer`.*safe_mode=False"):
        keras.saving.load_model(path)
    reloaded = keras.saving.load_model(path, safe_mode=False)
    inputs = _encoder_inputs()
    np.testing.assert_allclose(reloaded(inputs), model(inputs), atol=1e-6)
    # Outside a deserialization, a config is the caller's own and is trusted.
    assert isinstance(HubLayer.from_config(model.get_layer("encoder").get_config()), HubLayer)


@pytest.mark.parametrize("method", ["export", "serving_root"])
def test_saved_model_round_trip_in_fresh_process(paths, tmp_path, method):
    model = _text_classifier(paths)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(tf.constant(TEXTS), np.ones((5, 2), "float32"), verbose=0)  # Fine-tune.
    export_dir = assert_saved_model_round_trip(
        model, TEXTS, tmp_path, batch_sizes=(1, 3), method=method
    )
    # The preprocessor's vocabulary travelled with the export.
    assert tf.io.gfile.exists(os.path.join(export_dir, "assets", "vocab.txt"))


def test_saved_model_round_trip_of_a_plain_module(tmp_path):
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(WORDS) + "\n")
    module = _Preprocessor(str(vocab_file))
    assert_saved_model_round_trip(
        module, TEXTS, tmp_path, signatures={"serving_default": module.__call__}
    )


# === Handles ===


def test_resolve_local_path_unchanged(paths, tmp_path):
    assert resolve_handle(paths["encoder"]) == paths["encoder"]
    with pytest.raises(FileNotFoundError, match="neither an existing path"):
        resolve_handle(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="non-empty string"):
        resolve_handle(None)


def test_resolve_maps_kaggle_handles_to_urls(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tensorflow_hub imports pkg_resources.
        import tensorflow_hub as hub

    seen = []
    monkeypatch.setattr(hub, "resolve", lambda url: seen.append(url) or "/cached")
    handle = "google/bert/tensorFlow2/en-uncased-l-12-h-768-a-12/3"
    url = "https://www.kaggle.com/models/" + handle
    page = (
        "https://www.kaggle.com/models/google/bert/frameworks/tensorFlow2/"
        "variations/en-uncased-l-12-h-768-a-12/versions/3"
    )
    tfhub = "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"
    assert [resolve_handle(h) for h in (handle, url, page, tfhub)] == ["/cached"] * 4
    assert seen == [url, url, url, tfhub]


def test_resolve_reads_tfhub_cache_offline(paths, tmp_path, monkeypatch):
    # tensorflow_hub caches a URL under $TFHUB_CACHE_DIR/sha1(URL).
    url = "https://www.kaggle.com/models/keras-rec/tiny/tensorFlow2/encoder/1"
    cached = tmp_path / hashlib.sha1(url.encode("utf8")).hexdigest()
    shutil.copytree(paths["encoder"], cached)
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    assert resolve_handle("keras-rec/tiny/tensorFlow2/encoder/1") == str(cached)
    layer = HubLayer("keras-rec/tiny/tensorFlow2/encoder/1")
    assert layer.get_config()["handle"] == "keras-rec/tiny/tensorFlow2/encoder/1"
    assert len(layer.weights) == 4


def test_resolve_unreachable_url_raises_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    with pytest.raises(OSError, match=r"Could not resolve the TF Hub handle.*TFHUB_CACHE_DIR"):
        resolve_handle("http://127.0.0.1:9/model.tar.gz")
    with pytest.raises(OSError, match="Could not resolve"):
        HubLayer("http://127.0.0.1:9/model.tar.gz")
