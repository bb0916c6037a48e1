"""The cache on S3, through s3fs, against moto's S3 server on 127.0.0.1."""

import socket

import numpy as np
import pytest

from keras_rec.embeddings import CachedEncoder, EmbeddingCache

TEXTS = [f"star wars {i}" for i in range(40)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_cache_root(s3_endpoint, monkeypatch, request):
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"cache-{request.node.name.replace('_', '-')[:40].lower()}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return f"s3://{bucket}/team/vectors", {"client_kwargs": {"endpoint_url": s3_endpoint}}


def _s3_cache(root_and_options):
    root, options = root_and_options
    # skip_instance_cache: every cache object talks to the server afresh.
    return EmbeddingCache(root, storage_options={**options, "skip_instance_cache": True})


def test_s3_round_trip(tiny_encoder, s3_cache_root):
    writer = CachedEncoder(tiny_encoder, cache=_s3_cache(s3_cache_root), chunk_size=16)
    written = writer.encode(TEXTS)
    assert writer.last_report.num_encoded == len(TEXTS)

    cache = _s3_cache(s3_cache_root)
    keys = cache.fs.find(cache._root_path)
    assert sum(k.endswith(".npy") for k in keys) == 3  # 16 + 16 + 8
    assert sum("/manifest/" in k for k in keys) == 3
    assert not [k for k in keys if ".tmp-" in k]

    reader = CachedEncoder(tiny_encoder, cache=cache)
    read_back = reader.encode(TEXTS + ["one more"])
    assert reader.last_report.num_cached == len(TEXTS)
    assert reader.last_report.num_encoded == 1
    np.testing.assert_array_equal(read_back[: len(TEXTS)], written)
    assert cache.namespaces()[0]["model_fingerprint"] == tiny_encoder.fingerprint


def test_s3_corrupt_shard_is_recomputed(tiny_encoder, s3_cache_root):
    writer = CachedEncoder(tiny_encoder, cache=_s3_cache(s3_cache_root), chunk_size=16)
    reference = writer.encode(TEXTS)
    cache = _s3_cache(s3_cache_root)
    shard = sorted(k for k in cache.fs.find(cache._root_path) if k.endswith(".npy"))[0]
    data = bytearray(cache.fs.cat_file(shard))
    data[-3] ^= 0x55
    cache.fs.pipe_file(shard, bytes(data))

    reader = CachedEncoder(tiny_encoder, cache=_s3_cache(s3_cache_root), chunk_size=16)
    vectors = reader.encode(TEXTS)
    assert reader.last_report.num_encoded in (8, 16)
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
