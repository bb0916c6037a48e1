"""`keras-rec embed --runner direct`: the Beam pipeline on the in-process FnApiRunner.

The runner is Beam's FnApiRunner (no download, unlike the Prism runner). Each
test goes through the command line a user types (`keras_rec.cli.main`).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from helpers import assert_cosine_close

import keras_rec.data
from keras_rec.cli import main
from keras_rec.embeddings import EmbeddingCache, SentenceEncoder
from keras_rec.embeddings.embed_table import read_embeddings_parquet


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _vectors_by_id(path, id_column="id") -> tuple[pd.DataFrame, np.ndarray]:
    frame, vectors = read_embeddings_parquet(str(path))
    order = np.argsort(frame[id_column].to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True), vectors[order]


def _embed(source, output, cache, *extra) -> list[str]:
    return [
        "embed",
        "--input",
        str(source),
        "--text-column",
        "body",
        "--id-column",
        "id",
        "--cache",
        str(cache),
        "--output",
        str(output),
        *extra,
    ]


@pytest.fixture(scope="module")
def tweet_file(tmp_path_factory):
    """500 real tweets (10 repeated under new ids) as Parquet: id, body."""
    texts = keras_rec.data.sentiment_tweets()["text"].head(490).tolist()
    texts += texts[:10]
    path = tmp_path_factory.mktemp("tweets") / "texts.parquet"
    pd.DataFrame({"id": np.arange(len(texts)) * 7, "body": texts}).to_parquet(path)
    return path


def test_beam_fills_the_cache_with_the_vectors_of_keras_rec_embed(tweet_file, tmp_path, capsys):
    assert main(_embed(tweet_file, tmp_path / "plain.parquet", tmp_path / "plain_cache")) == 0
    plain = _summary(capsys)
    beam_cache = tmp_path / "beam_cache"
    assert (
        main([*_embed(tweet_file, tmp_path / "beam.parquet", beam_cache), "--runner", "direct"])
        == 0
    )
    beam = _summary(capsys)

    assert beam["rows"] == beam["num_rows_written"] == 500
    assert beam["num_unique"] == beam["num_encoded"] == plain["num_unique"] == 490
    assert beam["num_cached"] == 0
    expected_frame, expected = _vectors_by_id(tmp_path / "plain.parquet")
    frame, vectors = _vectors_by_id(tmp_path / "beam.parquet")
    assert list(frame.columns) == ["id", "text"]
    assert frame["id"].dtype == expected_frame["id"].dtype == np.int64
    pd.testing.assert_frame_equal(frame, expected_frame)
    assert_cosine_close(vectors, expected, 0.99999)
    # Repeated texts get one vector.
    np.testing.assert_array_equal(vectors[-10:], vectors[:10])

    # Same cache layout and namespace as keras-rec embed: each fills it for the other.
    plain_namespaces = EmbeddingCache(tmp_path / "plain_cache").namespaces()
    assert EmbeddingCache(beam_cache).namespaces() == plain_namespaces
    assert main(_embed(tweet_file, tmp_path / "again.parquet", beam_cache)) == 0
    assert _summary(capsys)["num_encoded"] == 0

    # A second pipeline run encodes nothing and writes the same output.
    assert (
        main([*_embed(tweet_file, tmp_path / "beam2.parquet", beam_cache), "--runner", "direct"])
        == 0
    )
    second = _summary(capsys)
    assert (second["num_encoded"], second["num_cached"]) == (0, 490)
    _, again = _vectors_by_id(tmp_path / "beam2.parquet")
    np.testing.assert_array_equal(again, vectors)
    store = EmbeddingCache(beam_cache).namespace(plain_namespaces[0])
    assert store.verify() == []
    assert len(store) == 490


def _small_texts(tmp_path, count=120) -> tuple[str, list[str]]:
    texts = [f"the movie {i} of star wars {'a' * (i % 50)}" for i in range(count)]
    path = tmp_path / "texts.parquet"
    pd.DataFrame({"id": [f"t{i}" for i in range(count)], "body": texts}).to_parquet(path)
    return str(path), texts


def _fail_when_encoding(monkeypatch, text: str, failures: int | None) -> dict:
    """Makes `SentenceEncoder.encode` raise on a batch holding `text` (`failures` times)."""
    calls = {"failed": 0}
    encode = SentenceEncoder.encode

    def flaky_encode(self, texts):
        if text in texts and (failures is None or calls["failed"] < failures):
            calls["failed"] += 1
            raise RuntimeError("injected encoder failure")
        return encode(self, texts)

    monkeypatch.setattr(SentenceEncoder, "encode", flaky_encode)
    return calls


def test_a_failing_batch_is_retried_and_the_output_is_complete(
    tiny_model_path, tiny_encoder, tmp_path, monkeypatch, capsys
):
    source, texts = _small_texts(tmp_path)
    calls = _fail_when_encoding(monkeypatch, texts[37], failures=1)
    output = tmp_path / "out.parquet"
    args = [*_embed(source, output, tmp_path / "cache"), "--model", tiny_model_path]
    assert main([*args, "--runner", "direct"]) == 0
    assert calls["failed"] == 1
    summary = _summary(capsys)
    assert summary["num_encoded"] == summary["num_rows_written"] == len(texts)
    frame, vectors = read_embeddings_parquet(str(output))
    order = np.argsort([int(i[1:]) for i in frame["id"]])
    assert frame["text"].iloc[order].tolist() == texts
    assert_cosine_close(vectors[order], tiny_encoder.encode(texts), 0.99999)


def test_a_batch_that_always_fails_fails_the_run_leaving_no_output_nor_partial_shard(
    tiny_model_path, tmp_path, monkeypatch, capsys
):
    source, texts = _small_texts(tmp_path)
    cache = tmp_path / "cache"
    output = tmp_path / "out.parquet"
    args = [*_embed(source, output, cache), "--model", tiny_model_path, "--runner", "direct"]
    calls = _fail_when_encoding(monkeypatch, texts[5], failures=None)
    with pytest.raises(Exception, match="injected encoder failure"):
        main(args)
    assert calls["failed"] >= 3  # Every try of the handler.
    assert not output.exists()
    for namespace in EmbeddingCache(cache).namespaces():
        store = EmbeddingCache(cache).namespace(namespace)
        assert store.verify() == []  # Whatever was committed is whole.
        assert texts[5] not in {key for key in store._index}
    monkeypatch.undo()
    capsys.readouterr()
    assert main(args) == 0
    summary = _summary(capsys)
    assert summary["num_cached"] + summary["num_encoded"] == len(texts)
    assert summary["num_encoded"] >= 1
    assert len(read_embeddings_parquet(str(output))[0]) == len(texts)


def test_the_tf_hub_modules_encode_the_same_vectors(
    tiny_model_path, tiny_hub_dir, tiny_encoder, tmp_path, capsys
):
    source, texts = _small_texts(tmp_path, count=40)
    output = tmp_path / "hub.parquet"
    args = [*_embed(source, output, tmp_path / "cache"), "--hub-dir", tiny_hub_dir]
    assert main([*args, "--runner", "direct"]) == 0
    assert _summary(capsys)["num_encoded"] == 40
    frame, vectors = read_embeddings_parquet(str(output))
    order = np.argsort([int(i[1:]) for i in frame["id"]])
    expected = tiny_encoder.encode(texts)
    assert_cosine_close(vectors[order], expected, 0.99999)
    np.testing.assert_allclose(vectors[order], expected, atol=1e-5)
    # The hub vectors have their own namespace, filled for `keras-rec embed --hub-dir` too.
    (identity,) = EmbeddingCache(tmp_path / "cache").namespaces()
    assert identity["backend"] == "tf-hub"
    assert main(args) == 0
    assert _summary(capsys)["num_encoded"] == 0
    assert main([*args, "--model", tiny_model_path]) == 2
    assert "`hub_dir` fixes the model" in capsys.readouterr().err


def test_globbed_csv_and_json_lines_inputs_and_their_errors(tiny_model_path, tmp_path, capsys):
    parts = tmp_path / "parts"
    parts.mkdir()
    pd.DataFrame({"id": ["007", "8"], "body": ["the story", "star wars"]}).to_csv(
        parts / "a.csv", index=False
    )
    pd.DataFrame({"id": ["9"], "body": ["toy story"]}).to_csv(parts / "b.csv", index=False)
    common = ["--model", tiny_model_path, "--runner", "direct"]
    output = tmp_path / "out.parquet"
    assert main([*_embed(parts / "*.csv", output, tmp_path / "cache"), *common]) == 0
    frame, _ = read_embeddings_parquet(str(output))
    assert sorted(frame["id"]) == ["007", "8", "9"]  # CSV ids stay strings.

    lines = tmp_path / "texts.jsonl"
    lines.write_text('{"id": 1, "body": "the movie"}\n{"id": 2, "body": null}\n')
    bad_output = tmp_path / "bad.parquet"
    assert main([*_embed(lines, bad_output, tmp_path / "cache"), *common]) == 2
    error = capsys.readouterr().err
    assert "texts.jsonl" in error and "row" in error and ": 2" in error
    assert not bad_output.exists()
    empty = ["--missing-text", "empty"]
    assert main([*_embed(lines, bad_output, tmp_path / "cache"), *common, *empty]) == 0
    frame, _ = read_embeddings_parquet(str(bad_output))
    assert sorted(frame["text"]) == ["", "the movie"]

    pd.DataFrame({"id": ["8"], "body": ["again"]}).to_csv(parts / "c.csv", index=False)
    repeated = tmp_path / "repeated.parquet"
    assert main([*_embed(parts / "*.csv", repeated, tmp_path / "cache"), *common]) == 2
    assert "'8' (2 rows)" in capsys.readouterr().err
    assert not repeated.exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith("beam-temp")]


def test_command_line_errors(tmp_path, capsys):
    common = _embed(tmp_path / "texts.parquet", tmp_path / "out.parquet", tmp_path / "cache")
    with pytest.raises(SystemExit, match="--shard and --runner"):
        main([*common, "--runner", "direct", "--shard", "0/2"])
    with pytest.raises(SystemExit, match="--direct_num_workers=2"):
        main([*common, "--direct_num_workers=2"])
    assert main([*common, "--runner", "direct", "--no_such_option=1"]) == 2
    assert "['no_such_option']" in capsys.readouterr().err
    assert main([*common, "--runner", "direct"]) == 2
    error = capsys.readouterr().err
    assert "No file matches" in error and "Loading weights" not in error  # Before the model.
    pd.DataFrame({"id": [1], "text": ["a"]}).to_parquet(tmp_path / "texts.parquet")
    assert main([*common, "--runner", "direct"]) == 2
    error = capsys.readouterr().err
    assert "no column(s) ['body']" in error and "Loading weights" not in error
    assert main([*common, "--runner", "dataflow", "--project", "p"]) == 2
    error = capsys.readouterr().err
    assert "URLs they reach" in error and "'cache'" in error and "'input'" in error
