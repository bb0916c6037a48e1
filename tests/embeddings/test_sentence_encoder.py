import numpy as np
import pytest

from keras_rec.embeddings import SentenceEncoder


def test_default_model_matches_sentence_transformers(minilm_encoder):
    texts = ["Toy Story (1995). Animation, Children's, Comedy", "", "  ", "Star Wars (1977)"]
    expected = minilm_encoder.model.encode(texts, convert_to_numpy=True)
    actual = minilm_encoder.encode(texts)
    assert actual.shape == (4, 384)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, atol=1e-6)


def test_identity_names_everything_that_changes_vectors(tiny_model_path, tiny_encoder):
    same = SentenceEncoder(tiny_model_path, device="cpu")
    assert same.fingerprint == tiny_encoder.fingerprint
    assert len(tiny_encoder.fingerprint) == 64
    identity = tiny_encoder.identity()
    assert identity["embedding_dim"] == 32
    assert identity["max_seq_length"] == 48
    assert identity["normalize"] is False

    shorter = SentenceEncoder(tiny_model_path, device="cpu", max_seq_length=8)
    assert shorter.identity()["max_seq_length"] == 8
    normalized = SentenceEncoder(tiny_model_path, device="cpu", normalize=True)
    assert normalized.identity() != identity
    assert np.allclose(np.linalg.norm(normalized.encode(["the movie"]), axis=1), 1.0)


def test_fingerprint_changes_when_one_weight_changes(tiny_model_path):
    import torch

    encoder = SentenceEncoder(tiny_model_path, device="cpu")
    before = encoder.fingerprint
    changed = SentenceEncoder(tiny_model_path, device="cpu")
    with torch.no_grad():
        next(changed.model.parameters()).view(-1)[0] += 1e-3
    assert changed.fingerprint != before


def test_encode_rejects_non_strings(tiny_encoder):
    with pytest.raises(TypeError, match=r"positions 1 \(None\), 3 \(nan\)"):
        tiny_encoder.encode(["a", None, "b", float("nan")])
    with pytest.raises(TypeError, match="not a single string"):
        tiny_encoder.encode("a text")
    assert tiny_encoder.encode([]).shape == (0, 32)


def test_constructor_validates_arguments(tiny_model_path):
    with pytest.raises(ValueError, match="batch_size"):
        SentenceEncoder(tiny_model_path, batch_size=0)
    with pytest.raises(ValueError, match="max_seq_length"):
        SentenceEncoder(tiny_model_path, max_seq_length=-1)
    with pytest.raises(OSError, match="Could not load the sentence-transformer"):
        SentenceEncoder("/nonexistent/model-dir")
