import json
import os
import subprocess
import sys

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


# --- Facts of a local model, remembered: no load until a text must be encoded ---


@pytest.fixture
def model_copy(tiny_model_path, tmp_path, monkeypatch):
    """A copy of the tiny model (its own files and times) and a home of its own."""
    import shutil

    monkeypatch.setenv("KERAS_REC_HOME", str(tmp_path / "home"))
    return shutil.copytree(tiny_model_path, tmp_path / "model")


def test_an_encoder_of_files_seen_before_loads_the_model_only_to_encode(model_copy):
    first = SentenceEncoder(str(model_copy), device="cpu")
    again = SentenceEncoder(str(model_copy), device="cpu")
    assert first.model_loaded and not again.model_loaded
    assert again.identity() == first.identity() and not again.model_loaded
    texts = ["the movie", "star wars of the toy story"]
    np.testing.assert_array_equal(again.encode(texts), first.encode(texts))
    assert again.model_loaded
    # Another token limit is another model: its facts are its own.
    shorter = SentenceEncoder(str(model_copy), device="cpu", max_seq_length=8)
    assert shorter.model_loaded and shorter.identity()["max_seq_length"] == 8
    assert SentenceEncoder(str(model_copy), device="cpu", max_seq_length=8).identity() == (
        shorter.identity()
    )
    # A file written since (here: only its time) makes the next encoder look again.
    config = model_copy / "config_sentence_transformers.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))
    assert SentenceEncoder(str(model_copy), device="cpu").model_loaded


def test_facts_that_no_longer_match_the_files_stop_the_encoder(model_copy, tmp_path):
    SentenceEncoder(str(model_copy), device="cpu")
    (record,) = (tmp_path / "home" / "model_facts").iterdir()
    facts = json.loads(record.read_text())
    record.write_text(json.dumps({**facts, "fingerprint": "0" * 64}))
    stale = SentenceEncoder(str(model_copy), device="cpu")
    assert stale.fingerprint == "0" * 64  # what was recorded, until the model loads
    with pytest.raises(RuntimeError, match="changed after this encoder read"):
        stale.encode(["the movie"])
    assert not record.exists()
    assert SentenceEncoder(str(model_copy), device="cpu").fingerprint == facts["fingerprint"]


def test_a_run_with_every_text_cached_needs_no_torch(model_copy, tmp_path):
    """The second run of a cached job (`keras-rec embed`, a frozen classifier) starts
    without importing PyTorch or sentence-transformers."""
    from keras_rec.embeddings import CachedEncoder

    texts = ["the movie", "star wars", "of toy story"]
    cache = str(tmp_path / "cache")
    expected = CachedEncoder(SentenceEncoder(str(model_copy), device="cpu"), cache).encode(texts)
    script = (
        "import json, sys\n"
        "from keras_rec.embeddings import CachedEncoder, SentenceEncoder\n"
        f"encoder = CachedEncoder(SentenceEncoder({str(model_copy)!r}, device='cpu'), {cache!r})\n"
        f"vectors = encoder.encode({texts!r})\n"
        "imported = sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules)\n"
        "print(json.dumps({'vectors': vectors.tolist(), 'imported': imported,\n"
        "                  'encoded': encoder.last_report.num_encoded}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_REC_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["encoded"] == 0 and report["imported"] == []
    np.testing.assert_array_equal(np.array(report["vectors"], np.float32), expected)
