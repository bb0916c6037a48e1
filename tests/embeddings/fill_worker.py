"""Subprocess used by the cache tests: fills a cache, optionally dying mid-write.

    python fill_worker.py MODEL_PATH CACHE_ROOT TEXTS_JSON CHUNK_SIZE [--die-on-write N]

With `--die-on-write N`, the N-th file write (1-based) writes half of its
bytes and then the process kills itself with SIGKILL: a crash in the middle of
writing a shard or a manifest entry.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def main(argv):
    model_path, cache_root, texts_path, chunk_size = argv[:4]
    die_on_write = int(argv[5]) if len(argv) > 5 and argv[4] == "--die-on-write" else None

    from keras_rec import atomic_io
    from keras_rec.embeddings import CachedEncoder, SentenceEncoder, embedding_cache

    if die_on_write is not None:
        calls = {"count": 0}
        real_write = atomic_io.write_bytes_atomic

        def dying_write(fs, path, data):
            calls["count"] += 1
            if calls["count"] == die_on_write:
                with atomic_io.open_atomic(fs, path) as file:
                    file.write(data[: len(data) // 2])
                    file.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_write(fs, path, data)

        embedding_cache.write_bytes_atomic = dying_write

    with open(texts_path) as file:
        texts = json.load(file)
    encoder = CachedEncoder(
        SentenceEncoder(model_path, device="cpu", batch_size=8),
        cache=cache_root,
        chunk_size=int(chunk_size),
    )
    encoder.fill(texts)
    print(json.dumps(encoder.last_report.as_dict()))


if __name__ == "__main__":
    main(sys.argv[1:])
