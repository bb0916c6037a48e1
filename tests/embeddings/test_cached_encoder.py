import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from keras_rec.embeddings import CachedEncoder, EmbeddingCache, SentenceEncoder, parse_shard

WORKER = str(Path(__file__).with_name("fill_worker.py"))

TEXTS = [f"the movie {i} of star wars" if i % 3 else f"toy story {i}" for i in range(60)]


def _shards(root):
    return sorted(Path(root).glob("*/shards/*.npy"))


def _manifest_entries(root):
    return sorted(Path(root).glob("*/manifest/*.json"))


def test_rerun_encodes_nothing_and_new_texts_only(tiny_encoder, tmp_path):
    encoder = CachedEncoder(tiny_encoder, cache=str(tmp_path))
    first = encoder.encode(TEXTS)
    assert encoder.last_report.num_encoded == len(TEXTS)
    np.testing.assert_allclose(first, tiny_encoder.encode(TEXTS), atol=1e-5)

    # A fresh process-like reader (new objects) finds everything.
    again = CachedEncoder(tiny_encoder, cache=str(tmp_path))
    second = again.encode(TEXTS)
    assert again.last_report.num_encoded == 0
    assert again.last_report.num_cached == len(TEXTS)
    np.testing.assert_array_equal(first, second)

    new_texts = [f"a new text {i}" for i in range(10)]
    again.encode(TEXTS + new_texts)
    assert again.last_report.num_encoded == 10
    assert again.last_report.num_cached == len(TEXTS)


def test_duplicates_are_encoded_once_and_returned_in_order(tiny_encoder, tmp_path):
    encoder = CachedEncoder(tiny_encoder, cache=str(tmp_path))
    vectors = encoder.encode(["b", "a", "b", "", "a"])
    report = encoder.last_report
    assert (report.num_texts, report.num_unique, report.num_encoded) == (5, 3, 3)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[1], vectors[4])
    assert not np.allclose(vectors[0], vectors[1])
    np.testing.assert_allclose(vectors[3], tiny_encoder.encode([""])[0], atol=1e-5)


def test_each_encoder_identity_has_its_own_namespace(tiny_model_path, tmp_path):
    plain = CachedEncoder(SentenceEncoder(tiny_model_path, device="cpu"), cache=str(tmp_path))
    normalized = CachedEncoder(
        SentenceEncoder(tiny_model_path, device="cpu", normalize=True), cache=str(tmp_path)
    )
    short = CachedEncoder(
        SentenceEncoder(tiny_model_path, device="cpu", max_seq_length=4), cache=str(tmp_path)
    )
    plain.encode(TEXTS)
    normalized.encode(TEXTS)
    short.encode(TEXTS)
    assert normalized.last_report.num_encoded == len(TEXTS)
    assert short.last_report.num_encoded == len(TEXTS)
    assert len({plain.store.name, normalized.store.name, short.store.name}) == 3
    identities = EmbeddingCache(str(tmp_path)).namespaces()
    assert sorted(i["max_seq_length"] for i in identities) == [4, 48, 48]


def test_chunks_are_committed_as_separate_shards(tiny_encoder, tmp_path):
    encoder = CachedEncoder(tiny_encoder, cache=str(tmp_path), chunk_size=25)
    encoder.encode(TEXTS)
    # 60 texts in chunks of 25 -> 25 + 25 + 10.
    assert len(_shards(tmp_path)) == 3
    counts = sorted(json.loads(p.read_text())["count"] for p in _manifest_entries(tmp_path))
    assert counts == [10, 25, 25]


def test_corrupt_shard_is_detected_and_recomputed(tiny_encoder, tmp_path, caplog):
    encoder = CachedEncoder(tiny_encoder, cache=str(tmp_path), chunk_size=25)
    reference = encoder.encode(TEXTS)
    victim = _shards(tmp_path)[0]
    victim_count = np.load(victim).shape[0]
    raw = bytearray(victim.read_bytes())
    raw[-7] ^= 0xFF  # Flip bits inside the vector data: still a loadable .npy.
    victim.write_bytes(bytes(raw))

    reader = CachedEncoder(tiny_encoder, cache=str(tmp_path), chunk_size=25)
    with caplog.at_level(logging.WARNING, logger="keras_rec.embeddings.embedding_cache"):
        vectors = reader.encode(TEXTS)
    assert "is corrupt" in caplog.text and victim.name in caplog.text
    assert reader.last_report.num_encoded == victim_count
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    assert not victim.exists()
    # Now healthy: a third reader verifies every shard and encodes nothing.
    third = CachedEncoder(tiny_encoder, cache=str(tmp_path))
    assert third.store.verify() == []
    third.encode(TEXTS)
    assert third.last_report.num_encoded == 0


def test_missing_shard_and_garbage_manifest_entry(tiny_encoder, tmp_path, caplog):
    encoder = CachedEncoder(tiny_encoder, cache=str(tmp_path), chunk_size=25)
    encoder.encode(TEXTS)
    shards = _shards(tmp_path)
    missing_count = np.load(shards[0]).shape[0]
    shards[0].unlink()
    garbage = shards[1].parent.parent / "manifest" / "garbage.json"
    garbage.write_text('{"keys": [')

    reader = CachedEncoder(tiny_encoder, cache=str(tmp_path), chunk_size=25)
    with caplog.at_level(logging.WARNING):
        reader.encode(TEXTS)
    assert reader.last_report.num_encoded == missing_count
    assert "garbage.json" in caplog.text


def test_verify_reports_corrupt_shards(tiny_encoder, tmp_path):
    encoder = CachedEncoder(tiny_encoder, cache=str(tmp_path), chunk_size=25)
    encoder.encode(TEXTS)
    victim = _shards(tmp_path)[1]
    victim.write_bytes(victim.read_bytes()[:100])  # Truncated.
    fresh = CachedEncoder(tiny_encoder, cache=str(tmp_path))
    assert fresh.store.verify() == [victim.stem]


def _run_worker(model_path, root, texts, chunk_size, *extra):
    texts_path = Path(root).parent / f"texts-{uuid.uuid4().hex}.json"
    texts_path.write_text(json.dumps(texts))
    return subprocess.Popen(
        [sys.executable, WORKER, model_path, str(root), str(texts_path), str(chunk_size), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "die_on_write, committed_shards",
    [
        (1, 0),  # namespace.json, half written.
        (2, 0),  # first shard, half written.
        (3, 0),  # first manifest entry, half written: its shard is an orphan.
        (5, 1),  # second manifest entry, half written.
    ],
)
def test_kill_during_cache_write_leaves_no_corrupt_state_and_resumes(
    tiny_model_path, tiny_encoder, tmp_path, die_on_write, committed_shards
):
    root = tmp_path / "cache"
    process = _run_worker(tiny_model_path, root, TEXTS, 25, "--die-on-write", str(die_on_write))
    process.communicate(timeout=300)
    assert process.returncode == -9  # SIGKILL'd itself mid-write.

    # Half-written files exist only under temporary names.
    leftovers = [p.name for p in root.rglob(".tmp-*")]
    assert len(leftovers) == 1
    assert len(_manifest_entries(root)) == committed_shards
    for entry in _manifest_entries(root):
        json.loads(entry.read_text())

    resumed = CachedEncoder(tiny_encoder, cache=str(root), chunk_size=25)
    assert resumed.store.verify() == []
    vectors = resumed.encode(TEXTS)
    assert resumed.last_report.num_cached == 25 * committed_shards
    assert resumed.last_report.num_encoded == len(TEXTS) - 25 * committed_shards
    np.testing.assert_allclose(vectors, tiny_encoder.encode(TEXTS), atol=1e-5)


def test_two_processes_fill_one_cache_at_once(tiny_model_path, tiny_encoder, tmp_path):
    root = tmp_path / "cache"
    texts_a = [f"the movie {i}" for i in range(0, 300)]
    texts_b = [f"the movie {i}" for i in range(150, 450)]  # Overlaps texts_a.
    first = _run_worker(tiny_model_path, root, texts_a, 7)
    second = _run_worker(tiny_model_path, root, texts_b, 7)
    for process in (first, second):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err

    all_texts = sorted(set(texts_a) | set(texts_b))
    reader = CachedEncoder(tiny_encoder, cache=str(root))
    assert reader.store.verify() == []
    vectors = reader.encode(all_texts)
    assert reader.last_report.num_encoded == 0
    np.testing.assert_allclose(vectors, tiny_encoder.encode(all_texts), atol=1e-5)


def test_sharded_workers_partition_the_texts(tiny_encoder, tmp_path):
    reports = []
    for index in range(3):
        worker = CachedEncoder(tiny_encoder, cache=str(tmp_path))
        reports.append(worker.fill(TEXTS, shard=f"{index}/3"))
    assert sum(r.num_encoded for r in reports) == len(TEXTS)
    assert all(0 < r.num_selected < len(TEXTS) for r in reports)
    # Re-running a worker finds its part cached.
    assert (
        CachedEncoder(tiny_encoder, cache=str(tmp_path)).fill(TEXTS, shard="1/3").num_encoded == 0
    )
    final = CachedEncoder(tiny_encoder, cache=str(tmp_path))
    final.encode(TEXTS)
    assert final.last_report.num_encoded == 0


@pytest.mark.parametrize("bad", ["3/3", "1", "a/b", "-1/2", "1/0", (2, 1)])
def test_parse_shard_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(bad)


def test_parse_shard():
    assert parse_shard("0/4") == (0, 4)
    assert parse_shard((3, 4)) == (3, 4)
    assert parse_shard(None) is None


def test_store_rejects_mismatched_vectors(tiny_encoder, tmp_path):
    store = CachedEncoder(tiny_encoder, cache=str(tmp_path)).store
    with pytest.raises(ValueError, match=r"shape \(len\(keys\), 32\)"):
        store.add(["k1", "k2"], np.zeros((2, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        store.add(["k1"], np.full((1, 32), np.nan, dtype=np.float32))
    assert not list(tmp_path.rglob("*.npy"))
