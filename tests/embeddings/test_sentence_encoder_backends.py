"""`SentenceEncoder(backend=..., precision=...)`: OpenVINO, ONNX and torch bfloat16."""

import importlib.util
import json
import os

import pandas as pd
import pytest
from helpers import assert_cosine_close

from keras_rec.cli import main
from keras_rec.embeddings import SentenceEncoder, converted_models
from keras_rec.embeddings.embed_table import read_embeddings_parquet
from keras_rec.embeddings.embedding_cache import namespace_key

TEXTS = [
    "Toy Story (1995). Animation, Children's, Comedy",
    "GoldenEye (1995). Action, Adventure, Thriller",
    "Four Rooms (1995). Thriller",
    "Get Shorty (1995). Action, Comedy, Drama",
    "Copycat (1995). Crime, Drama, Thriller",
    "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995). Drama",
    "Twelve Monkeys (1995). Drama, Sci-Fi",
    "Babe (1995). Children's, Comedy, Drama",
    "Dead Man Walking (1995). Drama",
    "Richard III (1995). Drama, War",
    "Star Wars (1977). Action, Adventure, Romance, Sci-Fi, War",
    "User, 24, technician. Liked: Star Wars (1977); Return of the Jedi (1983); "
    "Raiders of the Lost Ark (1981); The Empire Strikes Back (1980); Fargo (1996)",
    "the movie",
    "the toy story of star wars",
    "a",
    "",
    "   ",
    "Café crème, naïve façade: ünïcödé text ✓",
    "1234567890 " * 40,
    "What is the best science-fiction film ever made?",
]


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    """A `KERAS_REC_HOME` of this module's own: conversions don't reach the real one."""
    home = tmp_path_factory.mktemp("keras_rec_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_REC_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def tiny_openvino(module_home, tiny_model_path):
    return SentenceEncoder(tiny_model_path, device="cpu", batch_size=8, backend="openvino")


def test_openvino_float32_matches_torch(minilm_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_REC_HOME", str(tmp_path))
    encoder = SentenceEncoder(backend="openvino", precision="float32")
    assert encoder.effective_precision == "float32"
    assert encoder.fingerprint == minilm_encoder.fingerprint  # The torch weights' identity.
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == "float32"
    assert_cosine_close(vectors, minilm_encoder.encode(TEXTS), min_cosine=0.99999)


def test_torch_bfloat16_is_close_to_float32(minilm_encoder):
    encoder = SentenceEncoder(minilm_encoder.model, precision="bfloat16")
    vectors = encoder.encode(TEXTS)
    assert vectors.dtype == "float32"
    assert_cosine_close(vectors, minilm_encoder.encode(TEXTS), min_cosine=0.999)
    assert encoder.identity()["precision"] == "bfloat16"
    # Autocast is scoped to `encode`: the shared model keeps its float32 weights.
    assert str(next(minilm_encoder.model.parameters()).dtype) == "torch.float32"


def test_torch_float32_identity_keeps_its_namespace(tiny_encoder, tiny_openvino):
    identity = tiny_encoder.identity()
    # The keys every cache namespace was written under before backends existed.
    assert sorted(identity) == [
        "dtype",
        "embedding_dim",
        "max_seq_length",
        "model_fingerprint",
        "model_name",
        "normalize",
    ]
    converted = tiny_openvino.identity()
    assert converted == {**identity, "backend": "openvino"}
    assert namespace_key(converted) != namespace_key(identity)


def test_second_encoder_loads_the_converted_ir(
    tiny_model_path, tiny_encoder, tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_REC_HOME", str(tmp_path))
    first = SentenceEncoder(tiny_model_path, device="cpu", backend="openvino")
    converted = tmp_path / "converted" / f"{tiny_encoder.fingerprint[:16]}-openvino"
    with open(converted / converted_models.METADATA_FILE) as file:
        assert json.load(file)["model_fingerprint"] == tiny_encoder.fingerprint
    ir_file = converted / "openvino" / "openvino_model.xml"
    written = ir_file.stat().st_mtime_ns
    assert [name for name in os.listdir(converted.parent) if name.startswith(".tmp-")] == []

    def no_conversion(*args, **kwargs):
        raise AssertionError("the converted model should have been loaded, not converted again")

    monkeypatch.setattr(converted_models, "convert", no_conversion)
    second = SentenceEncoder(tiny_model_path, device="cpu", backend="openvino")
    assert ir_file.stat().st_mtime_ns == written
    assert second.identity() == first.identity()
    assert_cosine_close(second.encode(TEXTS), first.encode(TEXTS), min_cosine=0.999999)


def test_bad_backend_and_precision_are_rejected(tiny_model_path, tiny_openvino):
    with pytest.raises(ValueError, match=r"`backend` must be one of .*Received: backend='tf'"):
        SentenceEncoder(tiny_model_path, backend="tf")
    with pytest.raises(ValueError, match=r"`precision` must be one of .*precision='float16'"):
        SentenceEncoder(tiny_model_path, precision="float16")
    with pytest.raises(ValueError, match="with backend='onnx'"):
        SentenceEncoder(tiny_model_path, backend="onnx", precision="bfloat16")
    with pytest.raises(ValueError, match="with backend='openvino'.*device='cuda'"):
        SentenceEncoder(tiny_model_path, backend="openvino", device="cuda")
    with pytest.raises(ValueError, match="must use the torch backend"):
        SentenceEncoder(tiny_openvino.model)


@pytest.mark.skipif(
    importlib.util.find_spec("optimum.onnxruntime") is not None,
    reason="optimum-onnx is installed: backend='onnx' can run",
)
def test_onnx_without_optimum_onnx_says_what_is_missing(tiny_model_path, tmp_path, capsys):
    with pytest.raises(ImportError, match="optimum-onnx.*backend='openvino'"):
        SentenceEncoder(tiny_model_path, backend="onnx")
    source = tmp_path / "docs.csv"
    pd.DataFrame({"body": ["the movie"]}).to_csv(source, index=False)
    args = ["embed", "--input", str(source), "--text-column", "body", "--backend", "onnx"]
    assert main([*args, "--output", str(tmp_path / "out.parquet")]) == 2
    assert "optimum-onnx" in capsys.readouterr().err


def test_cli_embed_with_openvino(tiny_model_path, tiny_encoder, tiny_openvino, tmp_path, capsys):
    source = tmp_path / "docs.csv"
    rows = [(f"d{i}", text) for i, text in enumerate(TEXTS)]
    pd.DataFrame(rows, columns=["doc_id", "body"]).to_csv(source, index=False)
    common = ["embed", "--input", str(source), "--text-column", "body", "--id-column", "doc_id",
              "--missing-text", "empty", "--cache", str(tmp_path / "cache"),
              "--model", tiny_model_path]  # fmt: skip
    output = tmp_path / "openvino.parquet"
    assert main([*common, "--output", str(output), "--backend", "openvino"]) == 0
    frame, vectors = read_embeddings_parquet(output)
    assert frame["doc_id"].tolist() == [doc_id for doc_id, _ in rows]
    assert_cosine_close(vectors, tiny_encoder.encode(frame["text"].tolist()), min_cosine=0.99999)

    # Torch vectors live in another namespace of the same cache: all encoded again.
    assert main([*common, "--output", str(tmp_path / "torch.parquet")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["num_encoded"] == len(set(TEXTS))
