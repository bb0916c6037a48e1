"""Embedding cache overhead and payoff on the MovieLens item and user texts.

Measured in one run, on the same texts and the same loaded model:

- `st`:   plain `SentenceTransformer.encode(texts, batch_size=64)`;
- `cold`: `CachedEncoder.encode` on an empty cache (hash, look up, encode,
          write shards + manifest);
- `warm`: `CachedEncoder.encode` on the filled cache, through a new
          `CachedEncoder` (manifest and shards read back from disk).

Targets: cold_ratio_vs_st = st / cold >= 0.95 (the cache adds no real
overhead) and warm_speedup = cold / warm >= 100. Ends with one JSON line.

    python benchmarks/embed_cache.py [--repeats 4] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N texts")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from keras_rec.data import movielens_100k, movielens_item_texts, movielens_user_texts
    from keras_rec.embeddings import CachedEncoder, EmbeddingCache, SentenceEncoder

    data = movielens_100k()
    texts = (
        movielens_item_texts(data.items).tolist()
        + movielens_user_texts(data.ratings, data.items, data.users).tolist()
    )
    texts = list(dict.fromkeys(texts))[: args.limit]  # Distinct texts: each is encoded once.
    encoder = SentenceEncoder(device="cpu", batch_size=args.batch_size, show_progress_bar=False)
    model = encoder.model

    start = time.perf_counter()
    fingerprint = encoder.fingerprint
    fingerprint_seconds = time.perf_counter() - start

    model.encode(texts[:256], batch_size=args.batch_size)  # Warm up threads and allocator.

    def time_st():
        start = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, show_progress_bar=False)
        st_times.append(time.perf_counter() - start)

    def time_cold_and_warm():
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            cold = CachedEncoder(encoder, cache=EmbeddingCache(root))
            cold.encode(texts)
            cold_times.append(time.perf_counter() - start)
            assert cold.last_report.num_encoded == len(texts)

            start = time.perf_counter()
            warm = CachedEncoder(encoder, cache=EmbeddingCache(root))
            warm.encode(texts)
            warm_times.append(time.perf_counter() - start)
            assert warm.last_report.num_encoded == 0

    st_times, cold_times, warm_times = [], [], []
    for repeat in range(args.repeats):
        # Alternate the order so that drift (other load, heat) hits both sides.
        for run in (time_st, time_cold_and_warm)[:: 1 if repeat % 2 == 0 else -1]:
            run()
    print(f"sentence-transformers runs: {[round(t, 2) for t in st_times]}")
    print(f"cold cache runs: {[round(t, 2) for t in cold_times]}")

    st, cold_s, warm_s = (statistics.median(t) for t in (st_times, cold_times, warm_times))
    result = {
        "benchmark": "embed_cache",
        "model": encoder.model_name,
        "model_fingerprint": fingerprint[:16],
        "texts": len(texts),
        "repeats": args.repeats,
        "st_seconds": round(st, 3),
        "cold_seconds": round(cold_s, 3),
        "warm_seconds": round(warm_s, 4),
        "fingerprint_seconds": round(fingerprint_seconds, 3),
        "cold_ratio_vs_st": round(st / cold_s, 3),
        "warm_speedup": round(cold_s / warm_s, 1),
    }
    print(
        f"{len(texts)} texts: sentence-transformers {st:.2f}s, cold cache {cold_s:.2f}s "
        f"(ratio {st / cold_s:.3f}), warm cache {warm_s * 1000:.1f}ms "
        f"(speed-up {cold_s / warm_s:.0f}x)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
