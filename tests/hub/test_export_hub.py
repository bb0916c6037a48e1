"""`keras-rec export-hub` end to end: parity, Keras 3 pattern, tf_keras, atomicity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from hub.parity_corpus import parity_corpus

from keras_rec.cli import main
from keras_rec.hub import HubLayer
from keras_rec.hub.export_hub import export_hub

TEXTS = ["a great movie", "", "terrible acting, fell asleep", "ＡＢＣ and 東京 😀", "ok"]


@pytest.fixture(scope="module")
def minilm_hub(keras_rec_home):
    """The embedded all-MiniLM-L6-v2 exported once, into the session's home.

    `hub_modules()` makes it with `export_hub` the first time; the notebooks'
    kernels (same home) find it there.
    """
    from keras_rec.hub.local_hub import hub_modules

    out_dir, _ = hub_modules()
    parts = {part: os.path.join(out_dir, part) for part in ("preprocess", "encoder")}
    return {"out_dir": out_dir, **parts}


def _embed(hub_dir, texts, batch_size=64):
    preprocess = tf.saved_model.load(os.path.join(hub_dir, "preprocess"))
    encoder = tf.saved_model.load(os.path.join(hub_dir, "encoder"))
    vectors = []
    for start in range(0, len(texts), batch_size):
        inputs = preprocess(tf.constant(texts[start : start + batch_size]))
        vectors.append(encoder(inputs, training=False)["sentence_embedding"].numpy())
    return np.concatenate(vectors)


def test_hub_layer_loads_the_preprocessor_in_a_fresh_process(minilm_hub):
    # The preprocessor needs TF Text's ops registered; HubLayer sees to it.
    script = textwrap.dedent(
        f"""
        from keras_rec.hub import HubLayer
        layer = HubLayer({minilm_hub["preprocess"]!r})
        ids = layer(__import__("tensorflow").constant(["hello world"]))["input_word_ids"]
        print("IDS", ids.numpy().tolist())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert "IDS [[101, 7592, 2088, 102]]" in result.stdout, result.stderr[-2000:]


def test_minilm_strings_to_embeddings_match_sentence_transformers(minilm_hub, minilm_encoder):
    texts = parity_corpus()
    assert len(texts) >= 500
    expected = minilm_encoder.model.encode(texts, batch_size=64, convert_to_numpy=True)
    actual = _embed(minilm_hub["out_dir"], texts)
    cosine = np.sum(actual * expected, axis=1) / (
        np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1)
    )
    assert cosine.min() >= 0.99999, cosine.min()
    assert np.abs(actual - expected).max() <= 1e-5


def test_export_layout_metadata_and_serving_ops(minilm_hub):
    out = minilm_hub["out_dir"]
    assert sorted(os.listdir(out)) == ["encoder", "keras_rec_hub.json", "preprocess"]
    metadata = json.load(open(os.path.join(out, "keras_rec_hub.json")))
    assert metadata["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert (metadata["max_seq_length"], metadata["embedding_dim"]) == (256, 384)
    assert metadata["sentence_embedding_key"] == "sentence_embedding"
    assert os.path.exists(os.path.join(out, "preprocess", "assets", "vocab.txt"))
    # The export answered both through TF Serving's loader (`export_hub`'s own check, in a
    # fresh process); here TF Serving 2.19 (no TF Text ops of its own) is checked to have
    # every op they use.
    for part in ("preprocess", "encoder"):
        command = ["check-serving", os.path.join(out, part), "--target", "tfserving-2.19"]
        assert main([*command, "--ops-only"]) == 0
    # No partial copy of this export is left (other workers may be writing their own there).
    name = os.path.basename(out)
    assert not [p for p in os.listdir(os.path.dirname(out)) if p.startswith(f".{name}.partial-")]


def _seeds_model(hub_dir, trainable):
    """The TF Hub pattern: strings -> preprocess -> encoder -> Dense."""
    text = keras.Input(shape=(), dtype="string", name="text")
    encoder_inputs = HubLayer(os.path.join(hub_dir, "preprocess"), name="preprocess")(text)
    outputs = HubLayer(os.path.join(hub_dir, "encoder"), trainable=trainable, name="encoder")(
        encoder_inputs
    )
    probabilities = keras.layers.Dense(2, activation="softmax")(outputs["sentence_embedding"])
    return keras.Model(text, probabilities)


@pytest.mark.parametrize("trainable", [False, True])
def test_keras3_pattern_trains_a_step(tiny_hub_dir, trainable):
    model = _seeds_model(tiny_hub_dir, trainable)
    encoder = model.get_layer("encoder")
    if trainable:
        assert len(encoder.trainable_weights) > 0
    else:
        assert encoder.trainable_weights == []
    before = [w.numpy().copy() for w in encoder.weights]
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="sparse_categorical_crossentropy")
    texts = np.array(TEXTS + ["fine", "bad", "good"], dtype=object)
    labels = np.array([1, 0, 0, 1, 1, 1, 0, 1])
    history = model.fit(texts, labels, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [w.numpy() for w in encoder.weights]
    changed = [not np.array_equal(a, b) for a, b in zip(before, after)]
    if trainable:
        assert sum(changed) > len(changed) // 2
    else:
        assert not any(changed)
    probabilities = model.predict(np.array(TEXTS, dtype=object), verbose=0)
    assert probabilities.shape == (len(TEXTS), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_modules_load_with_hub_keras_layer_under_tf_keras(tiny_hub_dir):
    """TF Hub's own user path: `hub.KerasLayer` under tf_keras, frozen and fine-tuned.

    Also holds the assertions of the former
    `test_encoder_export.py::test_tf_keras_hub_keras_layer` (the encoder module's
    weights all trainable, and nearly all moved by a step): one tf_keras process
    checks both.
    """
    preprocess, encoder = (os.path.join(tiny_hub_dir, part) for part in ("preprocess", "encoder"))
    script = textwrap.dedent(
        f"""
        import json, os
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import numpy as np, tensorflow as tf, tensorflow_hub as hub, tf_keras
        import tensorflow_text  # registers the preprocessor's TF Text ops, as TF Hub users do
        report = {{}}
        for trainable in (False, True):
            text = tf_keras.Input(shape=(), dtype=tf.string)
            inputs = hub.KerasLayer({preprocess!r})(text)
            encoder = hub.KerasLayer({encoder!r}, trainable=trainable)
            outputs = encoder(inputs)
            features = tf_keras.layers.Concatenate()(
                [outputs["pooled_output"], outputs["sentence_embedding"]]
            )
            logits = tf_keras.layers.Dense(2)(features)
            model = tf_keras.Model(text, logits)
            model.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            before = [w.numpy().copy() for w in encoder.weights]
            texts, labels = tf.constant(["good movie", "bad movie"]), tf.constant([1, 0])
            model.fit(texts, labels, epochs=1, verbose=0)
            changed = sum(not np.array_equal(a, w.numpy()) for a, w in zip(before, encoder.weights))
            report[str(trainable)] = {{
                "trainable_weights": len(encoder.trainable_weights),
                "weights": len(encoder.weights),
                "changed": int(changed),
            }}
        print("TF_KERAS", json.dumps(report))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("TF_KERAS ")]
    assert lines, result.stderr[-3000:]
    report = json.loads(lines[-1].split(" ", 1)[1])
    frozen, trainable = report["False"], report["True"]
    assert frozen["trainable_weights"] == 0 and frozen["changed"] == 0, frozen
    assert frozen["weights"] > 0, frozen
    assert trainable["trainable_weights"] == trainable["weights"] > 0, trainable
    assert trainable["changed"] > 0.9 * trainable["weights"], trainable


def test_export_hub_command_on_a_tiny_model(tiny_model_path, tiny_encoder, tmp_path, capsys):
    # An existing directory (here an older export's leftover) is never replaced by accident.
    out = tmp_path / "tiny_hub"
    out.mkdir()
    (out / "keras_rec_hub.json").write_text("{}")
    assert main(["export-hub", "--model", tiny_model_path, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert os.listdir(out) == ["keras_rec_hub.json"]

    # `--overwrite` replaces it with the export, whole.
    command = ["export-hub", "--model", tiny_model_path, "--out", str(out), "--overwrite"]
    assert main(command) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["embedding_dim"] == 32 and summary["max_seq_length"] == 48
    assert sorted(os.listdir(out)) == ["encoder", "keras_rec_hub.json", "preprocess"]
    assert json.loads((out / "keras_rec_hub.json").read_text())["embedding_dim"] == 32
    texts = ["the toy story", "", "star wars of the movie " * 20]
    np.testing.assert_allclose(_embed(str(out), texts), tiny_encoder.encode(texts), atol=1e-5)


def test_failed_export_leaves_nothing(tiny_model_path, tmp_path, monkeypatch):
    import keras_rec.hub.encoder_export as encoder_export

    def broken_save(model, export_dir, precision="float32"):
        os.makedirs(export_dir)
        open(os.path.join(export_dir, "saved_model.pb"), "wb").write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(encoder_export, "save_encoder", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export_hub(tiny_model_path, str(tmp_path / "hub"))
    assert os.listdir(tmp_path) == []


@pytest.mark.large
def test_bfloat16_export_is_close_servable_and_recorded(minilm_hub, minilm_encoder, tmp_path):
    from keras_rec.hub.local_hub import hub_modules

    out = tmp_path / "minilm_bf16"
    # The export itself checks both SavedModels' ops against TF Serving 2.19 and
    # answers them through the Session loader (TF Serving's path) in a fresh process.
    assert main(["export-hub", "--out", str(out), "--precision", "bfloat16"]) == 0
    metadata = json.load(open(out / "keras_rec_hub.json"))
    assert metadata["precision"] == "bfloat16"
    encoder_meta = json.load(open(out / "encoder" / "assets.extra" / "keras_rec_encoder.json"))
    assert encoder_meta["precision"] == "bfloat16"
    encoder = tf.saved_model.load(str(out / "encoder"))
    dtypes = {variable.name: variable.dtype for variable in encoder.variables}
    layer_kernels = {n: d for n, d in dtypes.items() if "layer_" in n and "kernel" in n}
    norms = {n: d for n, d in dtypes.items() if "layer_norm" in n}
    assert len(layer_kernels) == 4 * 6 and len(norms) == 2 * 2 * 6 + 2
    assert set(layer_kernels.values()) == {tf.bfloat16}
    assert set(norms.values()) == {tf.float32}

    texts = parity_corpus()
    expected = minilm_encoder.model.encode(texts, batch_size=64, convert_to_numpy=True)
    actual = _embed(str(out), texts)
    assert actual.dtype == np.float32
    cosine = np.sum(actual * expected, axis=1) / (
        np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1)
    )
    assert 0.999 <= cosine.min() < 0.99999, cosine.min()

    # A training script asking for one precision never silently gets the other.
    with pytest.raises(ValueError, match="holds a float32 encoder"):
        hub_modules(None, minilm_hub["out_dir"], "bfloat16")
    assert hub_modules(None, str(out), "bfloat16")[0] == str(out)
    with pytest.raises(ValueError, match="`precision` must be one of"):
        export_hub(None, str(tmp_path / "bad"), precision="float16")
    assert not (tmp_path / "bad").exists()


def test_unsupported_architecture_is_named(tmp_path):
    from conftest import TINY_VOCAB
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertTokenizer, DistilBertConfig, DistilBertModel

    base = tmp_path / "distilbert"
    base.mkdir()
    (base / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")
    DistilBertModel(
        DistilBertConfig(vocab_size=len(TINY_VOCAB), dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    ).save_pretrained(base)
    BertTokenizer(vocab=str(base / "vocab.txt")).save_pretrained(base)
    model = SentenceTransformer(modules=[Transformer(str(base)), Pooling(32, "mean")], device="cpu")
    with pytest.raises(ValueError, match="(?i)distilbert"):
        export_hub(model, str(tmp_path / "hub"))
    assert not (tmp_path / "hub").exists()


def test_a_local_model_by_a_relative_path_or_a_link_finds_its_export(
    tiny_model_path, tiny_hub_dir, tmp_path, monkeypatch
):
    """`--model` given relative, or through a symlink, reuses the home's export
    (`tiny_hub_dir`, made from the absolute path): no second export."""
    from keras_rec.hub.local_hub import hub_modules

    link = tmp_path / "model_link"
    link.symlink_to(tiny_model_path, target_is_directory=True)
    monkeypatch.chdir(os.path.dirname(tiny_model_path))
    relative = os.path.basename(tiny_model_path)
    for model in (relative, str(link)):
        assert hub_modules(model)[0] == tiny_hub_dir
