"""The TF Hub encoder converted from sentence-transformers: parity, SavedModel, TF Hub API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")

from keras_rec.hub import transformer_blocks  # noqa: E402
from keras_rec.hub.encoder_export import build_encoder  # noqa: E402
from keras_rec.hub.mpnet_encoder import relative_position_buckets  # noqa: E402

# Varied lengths (one empty text) so every batch has padding.
TEXTS = [
    "the movie",
    "star wars is a great space film of the night",
    "",
    "toy story",
    "love and war, day and night: the man's story is good!",
    "a bad film",
    "space space space star star star wars wars wars toy toy toy story story",
    "it's 1995",
    "the man",
    "great",
]
# A long row (> 16 tokens apart: MPNet's log-spaced buckets) and an
# uneven count of rows (length groups of different sizes).
LONG_TEXT = " ".join(["the star wars story of a toy"] * 9)
PARITY_TEXTS = TEXTS + [LONG_TEXT]

ATOL = 1e-5
MIN_COSINE = 0.99999


def encoder_inputs(model, texts: list[str]) -> dict[str, tf.Tensor]:
    """The model's own tokenization of `texts` as TF Hub encoder inputs."""
    features = model.preprocess(texts)
    ids = features["input_ids"]
    type_ids = features.get("token_type_ids", torch.zeros_like(ids))
    return {
        "input_word_ids": tf.constant(ids.numpy(), tf.int32),
        "input_mask": tf.constant(features["attention_mask"].numpy(), tf.int32),
        "input_type_ids": tf.constant(type_ids.numpy(), tf.int32),
    }


def reference_outputs(model, inputs: dict[str, tf.Tensor]):
    """Hugging Face outputs on exactly the same token ids."""
    kwargs = {
        "input_ids": torch.tensor(inputs["input_word_ids"].numpy(), dtype=torch.long),
        "attention_mask": torch.tensor(inputs["input_mask"].numpy(), dtype=torch.long),
        "output_hidden_states": True,
    }
    if model[0].auto_model.config.model_type == "bert":
        kwargs["token_type_ids"] = torch.tensor(inputs["input_type_ids"].numpy(), dtype=torch.long)
    with torch.inference_mode():
        return model[0].auto_model(**kwargs)


def assert_embeddings_close(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    max_diff = float(np.abs(actual - expected).max())
    cosine = (actual * expected).sum(-1) / (
        np.linalg.norm(actual, axis=-1) * np.linalg.norm(expected, axis=-1) + 1e-30
    )
    min_cosine = float(cosine.min())
    assert max_diff <= ATOL, f"max abs diff {max_diff:.2e} > {ATOL}"
    assert min_cosine >= MIN_COSINE, f"min cosine {min_cosine:.7f} < {MIN_COSINE}"
    return max_diff, min_cosine


def assert_matches_pytorch(model, encoder, texts: list[str]) -> None:
    """Every output of `encoder` against sentence-transformers / Hugging Face."""
    inputs = encoder_inputs(model, texts)
    outputs = encoder(inputs, training=False)
    reference = reference_outputs(model, inputs)
    expected = model.encode(texts, batch_size=4, convert_to_numpy=True)
    assert_embeddings_close(outputs["sentence_embedding"].numpy(), expected)

    mask = inputs["input_mask"].numpy().astype(bool)
    sequence = outputs["sequence_output"].numpy()
    np.testing.assert_allclose(
        sequence[mask], reference.last_hidden_state.numpy()[mask], atol=ATOL, rtol=0
    )
    assert not sequence[~mask].any(), "padding positions must be zeros"
    layers = outputs["encoder_outputs"]
    assert len(layers) == model[0].auto_model.config.num_hidden_layers
    for layer, hidden in zip(layers, reference.hidden_states[1:]):
        np.testing.assert_allclose(layer.numpy()[mask], hidden.numpy()[mask], atol=ATOL, rtol=0)
    np.testing.assert_array_equal(layers[-1].numpy(), sequence)
    np.testing.assert_allclose(
        outputs["pooled_output"].numpy(), reference.pooler_output.numpy(), atol=ATOL, rtol=0
    )
    np.testing.assert_array_equal(outputs["default"].numpy(), outputs["pooled_output"].numpy())


# (architecture, pooling_mode, normalize, dense_features)
CONFIGS = [
    ("bert", "mean", True, None),
    ("bert", "cls", False, None),
    ("bert", "max", False, None),
    ("bert", ("mean", "max", "cls", "weightedmean", "lasttoken", "mean_sqrt_len_tokens"), True, 8),
    ("mpnet", "mean", True, None),
    ("mpnet", "cls", False, None),
    ("mpnet", "max", True, 8),
]


def _config_id(config) -> str:
    architecture, mode, normalize, dense = config
    mode = "+".join(mode) if isinstance(mode, tuple) else mode
    return f"{architecture}-{mode}-normalize{normalize}-dense{dense}"


@pytest.fixture(scope="module", params=CONFIGS, ids=_config_id)
def tiny_pair(request, tmp_path_factory, build_tiny_hub_model_fn):
    """`(sentence_transformer, encoder)` for one tiny configuration."""
    architecture, mode, normalize, dense = request.param
    model, _ = build_tiny_hub_model_fn(
        str(tmp_path_factory.mktemp(architecture)), architecture, mode, normalize, dense
    )
    return model, build_encoder(model)


@pytest.mark.parametrize("batch", [PARITY_TEXTS, PARITY_TEXTS[:3], PARITY_TEXTS[-1:]])
def test_tiny_models_match_pytorch(tiny_pair, batch):
    model, encoder = tiny_pair
    assert_matches_pytorch(model, encoder, batch)


def test_padding_never_changes_real_tokens(tiny_bert_model):
    model, _ = tiny_bert_model
    encoder = build_encoder(model)
    alone = encoder(encoder_inputs(model, [TEXTS[1]]), training=False)
    padded = encoder_inputs(model, [TEXTS[1]])
    extra = 37  # pad to a length no batch of the suite has
    padded = {key: tf.pad(value, [[0, 0], [0, extra]]) for key, value in padded.items()}
    padded_out = encoder(padded, training=False)
    np.testing.assert_allclose(
        padded_out["sentence_embedding"].numpy(), alone["sentence_embedding"].numpy(), atol=1e-6
    )
    length = alone["sequence_output"].shape[1]
    np.testing.assert_allclose(
        padded_out["sequence_output"].numpy()[:, :length],
        alone["sequence_output"].numpy(),
        atol=1e-6,
    )


def test_all_padding_row_is_finite(tiny_bert_model):
    model, _ = tiny_bert_model
    encoder = build_encoder(model)
    inputs = encoder_inputs(model, TEXTS[:2])
    inputs["input_mask"] = tf.tensor_scatter_nd_update(
        inputs["input_mask"], [[1]], tf.zeros([1, inputs["input_mask"].shape[1]], tf.int32)
    )
    outputs = encoder(inputs, training=False)
    for key in ("sentence_embedding", "pooled_output", "sequence_output"):
        assert np.isfinite(outputs[key].numpy()).all(), key
    # Row 0 does not notice that row 1 lost its tokens.
    reference = encoder(encoder_inputs(model, TEXTS[:1]), training=False)
    np.testing.assert_allclose(
        outputs["sentence_embedding"].numpy()[0],
        reference["sentence_embedding"].numpy()[0],
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "shape, message", [((1, 81), "max_position_embeddings=80"), ((2, 0), "at least one column")]
)
def test_bad_lengths_fail_clearly(tiny_bert_model, shape, message):
    model, _ = tiny_bert_model
    encoder = build_encoder(model)
    ids = tf.ones(shape, tf.int32)  # the tiny model has 80 positions
    inputs = {"input_word_ids": ids, "input_mask": ids, "input_type_ids": 0 * ids}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        encoder(inputs, training=False)


def test_empty_batch(tiny_bert_model):
    model, _ = tiny_bert_model
    ids = tf.zeros([0, 5], tf.int32)
    inputs = {"input_word_ids": ids, "input_mask": ids, "input_type_ids": ids}
    outputs = build_encoder(model)(inputs, training=False)
    assert outputs["sentence_embedding"].shape == (0, 32)
    assert outputs["sequence_output"].shape == (0, 5, 32)


def test_relative_position_buckets_match_transformers():
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

    distances = np.arange(-1100, 1101)
    expected = MPNetEncoder.relative_position_bucket(torch.tensor(distances)).numpy()
    np.testing.assert_array_equal(relative_position_buckets(distances), expected)


def test_variables_are_named_and_trainable(tiny_bert_model):
    model, _ = tiny_bert_model
    encoder = build_encoder(model)
    names = [v.name for v in encoder.variables]
    assert len(names) == len(set(names))
    assert len(encoder.trainable_variables) == len(encoder.variables)
    assert all(v.trainable for v in encoder.variables)
    assert "encoder/layer_0/attention/query_key_value/kernel:0" in names
    assert "embeddings/word_embeddings/embeddings:0" in names
    assert "pooler/kernel:0" in names
    torch_count = sum(p.numel() for p in model[0].auto_model.parameters())
    assert sum(int(np.prod(v.shape)) for v in encoder.variables) == torch_count
    assert encoder.regularization_losses == []


def test_unsupported_architecture_is_named():
    class RobertaModel:
        config = types.SimpleNamespace(model_type="roberta")

    class Transformer:
        auto_model = RobertaModel()

    with pytest.raises(ValueError, match="RobertaModel.*roberta.*BertModel.*MPNetModel"):
        build_encoder([Transformer()])


def test_unsupported_module_is_named(tiny_bert_model):
    from sentence_transformers.sentence_transformer.modules import LayerNorm

    model, _ = tiny_bert_model
    modules = list(model)
    with pytest.raises(ValueError, match="LayerNorm.*Pooling, Dense, Normalize"):
        build_encoder(modules[:2] + [LayerNorm(32)])
    with pytest.raises(ValueError, match="Pooling"):
        build_encoder(modules[:1])


def test_checkpoint_without_pooler_uses_first_token(tiny_bert_model):
    from keras_rec.hub.bert_encoder import BertEncoder

    model, _ = tiny_bert_model
    backbone = BertEncoder.from_transformers(model[0].auto_model, has_pooler=False)
    assert not backbone.has_pooler
    inputs = encoder_inputs(model, TEXTS[:3])
    outputs = backbone(inputs["input_word_ids"], inputs["input_mask"], inputs["input_type_ids"])
    reference = reference_outputs(model, inputs)
    np.testing.assert_allclose(
        outputs.pooled_output.numpy(), reference.last_hidden_state.numpy()[:, 0], atol=ATOL
    )


def test_checkpoint_saved_without_pooler(tmp_path):
    """Hugging Face gives such a model a random pooler; the export does not copy it."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghij")
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    BertTokenizer(vocab=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    model = SentenceTransformer(
        modules=[Transformer(str(tmp_path)), Pooling(16, "mean")], device="cpu"
    )
    encoder = build_encoder(model)
    assert json.loads(encoder.metadata_json)["has_pooler"] is False
    inputs = encoder_inputs(model, ["a b c", "d"])
    outputs = encoder(inputs, training=False)
    np.testing.assert_allclose(
        outputs["pooled_output"].numpy(), outputs["sequence_output"].numpy()[:, 0], atol=1e-6
    )
    assert_embeddings_close(outputs["sentence_embedding"].numpy(), model.encode(["a b c", "d"]))


def test_length_groups_agree(tiny_bert_model, monkeypatch):
    """Any number of attention length groups gives the same numbers."""
    model, _ = tiny_bert_model
    inputs = encoder_inputs(model, PARITY_TEXTS)
    results = []
    for groups in (1, 3, 16):
        monkeypatch.setattr(transformer_blocks, "ATTENTION_GROUPS", groups)
        results.append(build_encoder(model)(inputs, training=False)["sentence_embedding"].numpy())
    for result in results[1:]:
        np.testing.assert_allclose(result, results[0], atol=1e-6)


# === SavedModel ===


@pytest.fixture(scope="module")
def saved_bert(tiny_bert_model, tiny_bert_encoder_dir):
    model, _ = tiny_bert_model
    return model, build_encoder(model), tf.saved_model.load(tiny_bert_encoder_dir)


def test_saved_model_round_trip(saved_bert):
    model, in_memory, loaded = saved_bert
    for texts in (TEXTS, TEXTS[:3]):
        inputs = encoder_inputs(model, texts)
        expected = in_memory(inputs, training=False)
        for outputs in (loaded(inputs, training=False), loaded(inputs)):
            for key in ("sentence_embedding", "pooled_output", "sequence_output", "default"):
                np.testing.assert_allclose(outputs[key].numpy(), expected[key].numpy(), atol=1e-6)
            assert len(outputs["encoder_outputs"]) == 2
        served = loaded.signatures["serving_default"](**inputs)
        assert set(served) == {"sentence_embedding", "pooled_output", "sequence_output", "default"}
        np.testing.assert_allclose(
            served["sentence_embedding"].numpy(), expected["sentence_embedding"].numpy(), atol=1e-6
        )
        assert_embeddings_close(served["sentence_embedding"].numpy(), model.encode(texts))


def test_saved_model_has_reusable_api(saved_bert, tiny_bert_encoder_dir):
    _, in_memory, loaded = saved_bert
    assert len(loaded.variables) == len(in_memory.variables)
    assert len(loaded.trainable_variables) == len(loaded.variables)
    assert list(loaded.regularization_losses) == []
    with open(os.path.join(tiny_bert_encoder_dir, "assets.extra", "keras_rec_encoder.json")) as f:
        metadata = json.load(f)
    assert metadata["architecture"] == "BertModel"
    assert metadata["embedding_dim"] == 32


def test_dropout_only_in_training(saved_bert):
    model, _, loaded = saved_bert
    inputs = encoder_inputs(model, TEXTS)
    first = loaded(inputs, training=False)["sentence_embedding"].numpy()
    second = loaded(inputs, training=False)["sentence_embedding"].numpy()
    np.testing.assert_array_equal(first, second)
    trained = loaded(inputs, training=True)["sentence_embedding"].numpy()
    assert np.abs(trained - first).max() > 1e-3


def test_gradients_reach_every_variable(saved_bert):
    import keras

    model, _, loaded = saved_bert
    inputs = encoder_inputs(model, TEXTS)
    with tf.GradientTape() as tape:
        outputs = loaded(inputs, training=True)
        loss = tf.reduce_sum(outputs["sentence_embedding"][:, 0]) + tf.reduce_sum(
            outputs["pooled_output"]
        )
    grads = tape.gradient(loss, loaded.trainable_variables)
    assert all(g is not None for g in grads)
    optimizer = keras.optimizers.Adam(1e-3)
    before = loaded.trainable_variables[5].numpy().copy()
    optimizer.apply_gradients(zip(grads, loaded.trainable_variables))
    assert np.abs(loaded.trainable_variables[5].numpy() - before).max() > 0


def test_saved_model_fits_tf_serving_op_set(tiny_bert_encoder_dir):
    op_check = pytest.importorskip("keras_rec.serving.op_check")
    op_check.assert_servable(tiny_bert_encoder_dir, "tfserving-2.19")


def _run_script(script: str, tmp_path) -> str:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_fresh_process_with_only_tensorflow(saved_bert, tiny_bert_encoder_dir, tmp_path):
    model, in_memory, _ = saved_bert
    batches = {"small": TEXTS[:3], "large": TEXTS}
    arrays = {}
    for name, texts in batches.items():
        for key, value in encoder_inputs(model, texts).items():
            arrays[f"{name}/{key}"] = value.numpy()
    np.savez(tmp_path / "inputs.npz", **arrays)
    _run_script(
        f"""
        import sys
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({tiny_bert_encoder_dir!r})
        arrays = np.load({str(tmp_path / "inputs.npz")!r})
        out = {{}}
        for name in ("small", "large"):
            inputs = {{k: tf.constant(arrays[name + "/" + k])
                      for k in ("input_word_ids", "input_mask", "input_type_ids")}}
            served = loaded.signatures["serving_default"](**inputs)
            called = loaded(inputs, training=False)
            for key in ("sentence_embedding", "pooled_output", "sequence_output"):
                out["served/" + name + "/" + key] = served[key].numpy()
                out["called/" + name + "/" + key] = called[key].numpy()
        np.savez({str(tmp_path / "outputs.npz")!r}, **out)
        assert not any(m.startswith(("keras_rec", "torch", "transformers", "sentence_transformers"))
                       for m in sys.modules)
        """,
        tmp_path,
    )
    outputs = np.load(tmp_path / "outputs.npz")
    for name, texts in batches.items():
        expected = in_memory(encoder_inputs(model, texts), training=False)
        for how in ("served", "called"):
            for key in ("sentence_embedding", "pooled_output", "sequence_output"):
                np.testing.assert_allclose(
                    outputs[f"{how}/{name}/{key}"], expected[key].numpy(), atol=1e-6
                )


# === The real all-MiniLM-L6-v2 ===


def _varied_texts(count: int) -> list[str]:
    words = (
        "the a movie film story about space war love friendship toy robot cowboy "
        "astronaut galaxy ship captain crew planet journey home family music night "
        "city dream ocean mountain 1995 2001 sci-fi rom-com it's don't can't well-known "
        "naïve café über résumé 東京 北京 😀 #hashtag @user https://example.com/a?b=c"
    ).split()
    rng = np.random.default_rng(7)
    texts = ["", "a", "Hello!", "Toy Story (1995)", "   spaces   everywhere   "]
    while len(texts) < count:
        length = int(rng.choice([3, 8, 20, 45, 120, 400]))
        texts.append(" ".join(rng.choice(words, size=length)))
    return texts


@pytest.fixture(scope="module")
def minilm():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from keras_rec.embeddings.sentence_encoder import embedded_model_path, load_sentence_transformer

    model = load_sentence_transformer(embedded_model_path(), device="cpu")
    return model, build_encoder(model)


def test_real_minilm_matches_sentence_transformers(minilm):
    model, encoder = minilm
    texts = _varied_texts(100)
    lengths = model.preprocess(texts)["attention_mask"].sum(1)
    assert int(lengths.max()) == model.max_seq_length == 256  # long texts are truncated
    expected = model.encode(texts, batch_size=32, convert_to_numpy=True)
    actual = []
    for start in range(0, len(texts), 32):
        inputs = encoder_inputs(model, texts[start : start + 32])
        actual.append(encoder(inputs, training=False)["sentence_embedding"].numpy())
    assert_embeddings_close(np.concatenate(actual), expected)
    # Hidden states and pooler on one ragged batch.
    inputs = encoder_inputs(model, texts[:16])
    outputs = encoder.serve(**inputs)
    reference = reference_outputs(model, inputs)
    mask = inputs["input_mask"].numpy().astype(bool)
    np.testing.assert_allclose(
        outputs["sequence_output"].numpy()[mask],
        reference.last_hidden_state.numpy()[mask],
        atol=1e-4,
        rtol=0,
    )
    np.testing.assert_allclose(
        outputs["pooled_output"].numpy(), reference.pooler_output.numpy(), atol=ATOL, rtol=0
    )
