"""Embedding cache overhead and payoff on the MovieLens item and user texts.

Measured in one run, on the same texts and the same loaded model:

- `st`:   plain `SentenceTransformer.encode(texts, batch_size=64)`;
- `cold`: `CachedEncoder.encode` on an empty cache (hash, look up, encode,
          write shards + manifest);
- `warm`: `CachedEncoder.encode` on the filled cache, through a new
          `CachedEncoder` (manifest and shards read back from disk).

Targets: cold_ratio_vs_st = st / cold >= 0.95 (the cache adds no real
overhead) and warm_speedup = cold / warm >= 100.

In the same run, `cold` again for each backend and precision of
`SentenceEncoder` (torch float32 is the `cold` above): texts/s, the ratio to
torch float32 and the smallest cosine to its vectors. OpenVINO converts the
model once into `$KERAS_REC_HOME/converted/` (its first run includes that in
`load_seconds`); ONNX is reported unavailable, with the reason, when
`optimum-onnx` is not installed. Ends with one JSON line.

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

# (backend, precision) pairs measured against torch float32, the `cold` run.
BACKEND_RUNS = (
    ("torch", "bfloat16"),
    ("openvino", "float32"),
    ("openvino", "bfloat16"),
    ("onnx", "float32"),
)
BASELINE = "torch-float32"


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

    encoders, unavailable, load_seconds = {}, {}, {}
    for backend, precision in BACKEND_RUNS:
        name = f"{backend}-{precision}"
        start = time.perf_counter()
        try:
            if backend == "torch":  # The same loaded model, under autocast.
                other = SentenceEncoder(
                    model, batch_size=args.batch_size, show_progress_bar=False, precision=precision
                )
            else:
                other = SentenceEncoder(
                    device="cpu",
                    batch_size=args.batch_size,
                    show_progress_bar=False,
                    backend=backend,
                    precision=precision,
                )
        except ImportError as error:
            unavailable[name] = str(error)
            continue
        load_seconds[name] = time.perf_counter() - start
        other.encode(texts[:64])  # Warm up (OpenVINO allocates on its first requests).
        encoders[name] = other

    def time_st():
        start = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, show_progress_bar=False)
        st_times.append(time.perf_counter() - start)

    def time_cold_and_warm():
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            cold = CachedEncoder(encoder, cache=EmbeddingCache(root))
            vectors = cold.encode(texts)
            cold_times.append(time.perf_counter() - start)
            assert cold.last_report.num_encoded == len(texts)
            backend_vectors.setdefault(BASELINE, vectors)

            start = time.perf_counter()
            warm = CachedEncoder(encoder, cache=EmbeddingCache(root))
            warm.encode(texts)
            warm_times.append(time.perf_counter() - start)
            assert warm.last_report.num_encoded == 0

    def time_backend(name):
        def run():
            with tempfile.TemporaryDirectory() as root:
                start = time.perf_counter()
                cold = CachedEncoder(encoders[name], cache=EmbeddingCache(root))
                vectors = cold.encode(texts)
                backend_times[name].append(time.perf_counter() - start)
                assert cold.last_report.num_encoded == len(texts)
            backend_vectors.setdefault(name, vectors)

        return run

    st_times, cold_times, warm_times = [], [], []
    backend_times = {name: [] for name in encoders}
    backend_vectors = {}
    runs = [time_st, time_cold_and_warm, *(time_backend(name) for name in encoders)]
    for repeat in range(args.repeats):
        # Alternate the order so that drift (other load, heat) hits all sides.
        for run in runs[:: 1 if repeat % 2 == 0 else -1]:
            run()
    print(f"sentence-transformers runs: {[round(t, 2) for t in st_times]}")
    print(f"cold cache runs: {[round(t, 2) for t in cold_times]}")
    for name, times in backend_times.items():
        print(f"{name} cold cache runs: {[round(t, 2) for t in times]}")

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
        "backends": _backend_figures(
            len(texts), cold_s, backend_times, backend_vectors, encoders, load_seconds
        ),
        "backends_unavailable": unavailable,
    }
    print(
        f"{len(texts)} texts: sentence-transformers {st:.2f}s, cold cache {cold_s:.2f}s "
        f"(ratio {st / cold_s:.3f}), warm cache {warm_s * 1000:.1f}ms "
        f"(speed-up {cold_s / warm_s:.0f}x)"
    )
    for name, figures in result["backends"].items():
        print(
            f"{name}: {figures['texts_per_second']:.1f} texts/s cold "
            f"({figures['ratio_vs_torch_float32']:.2f}x torch float32), min cosine "
            f"{figures['min_cosine_vs_torch_float32']:.6f}, computed in "
            f"{figures['effective_precision']}"
        )
    for name, reason in unavailable.items():
        print(f"{name}: unavailable: {reason}")
    print(json.dumps(result))


def _backend_figures(num_texts, torch_cold, times, vectors, encoders, load_seconds) -> dict:
    """Per backend: cold texts/s, ratio to torch float32, min cosine to its vectors."""
    import numpy as np

    reference = vectors[BASELINE]
    figures = {
        BASELINE: {
            "texts_per_second": round(num_texts / torch_cold, 1),
            "ratio_vs_torch_float32": 1.0,
            "min_cosine_vs_torch_float32": 1.0,
            "effective_precision": "float32",
        }
    }
    for name, runs in times.items():
        seconds = statistics.median(runs)
        found = vectors[name]
        cosine = np.sum(found * reference, axis=1) / np.maximum(
            np.linalg.norm(found, axis=1) * np.linalg.norm(reference, axis=1), 1e-12
        )
        figures[name] = {
            "texts_per_second": round(num_texts / seconds, 1),
            "ratio_vs_torch_float32": round(torch_cold / seconds, 3),
            "min_cosine_vs_torch_float32": round(float(cosine.min()), 7),
            "effective_precision": encoders[name].effective_precision,
            "load_seconds": round(load_seconds[name], 2),
        }
    return figures


if __name__ == "__main__":
    main()
