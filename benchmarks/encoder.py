"""Strings -> embeddings: exported TF Hub modules vs `SentenceTransformer.encode`.

One run, same texts, same model (the embedded all-MiniLM-L6-v2), same CPU:

- throughput: all texts in batches of 64, both sides sorting by length
  first (as `SentenceTransformer.encode` does internally);
- latency: one text per call, p50 and p99 over `--latency-calls` calls.

Texts are 10-60 words, cut from the sentiment tweets with a fixed seed.
Targets: throughput_ratio_vs_st >= 1.5, latency_p50_ratio_vs_st <= 1.0
(ours / theirs), min_cosine >= 0.99999. Ends with one JSON line.

    python benchmarks/encoder.py [--texts 1024] [--hub-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def mixed_length_texts(count: int, seed: int = 0) -> list[str]:
    from keras_rec.data import sentiment_tweets

    words = " ".join(sentiment_tweets()["text"].tolist()).split()
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        length = rng.randint(10, 60)
        start = rng.randrange(len(words) - length)
        texts.append(" ".join(words[start : start + length]))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latency-calls", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hub-dir", default=None, help="reuse an export-hub output")
    args = parser.parse_args()

    import tensorflow as tf

    from keras_rec.embeddings.sentence_encoder import load_sentence_transformer
    from keras_rec.hub.export_hub import export_hub

    texts = mixed_length_texts(args.texts)
    model = load_sentence_transformer(None, device="cpu")
    hub_dir = args.hub_dir
    if hub_dir is None:
        hub_dir = os.path.join(tempfile.mkdtemp(), "minilm")
        export_hub(model, hub_dir)
    preprocess = tf.saved_model.load(os.path.join(hub_dir, "preprocess"))
    encoder = tf.saved_model.load(os.path.join(hub_dir, "encoder"))

    # One graph for strings -> embeddings with a [None] input, as a Keras model
    # or TF Serving runs it. (Calling the loaded functions eagerly makes TF
    # re-optimize the encoder graph for every new input shape: ~0.5 s each.)
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed(batch):
        return encoder(preprocess(batch), training=False)["sentence_embedding"]

    def ours(batch: list[str]) -> np.ndarray:
        return embed(tf.constant(batch)).numpy()

    def ours_all(all_texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(text) for text in all_texts], kind="stable")
        vectors = np.zeros((len(all_texts), model.get_embedding_dimension()), np.float32)
        for start in range(0, len(order), args.batch_size):
            rows = order[start : start + args.batch_size]
            vectors[rows] = ours([all_texts[i] for i in rows])
        return vectors

    def theirs_all(all_texts: list[str]) -> np.ndarray:
        return model.encode(all_texts, batch_size=args.batch_size, show_progress_bar=False)

    # Warm up: tracing, thread pools, allocator.
    ours_all(texts[:256])
    theirs_all(texts[:256])

    ours_times, theirs_times = [], []
    for repeat in range(args.repeats):
        for name in ("ours", "theirs")[:: 1 if repeat % 2 == 0 else -1]:
            start = time.perf_counter()
            result = ours_all(texts) if name == "ours" else theirs_all(texts)
            (ours_times if name == "ours" else theirs_times).append(time.perf_counter() - start)
            if name == "ours":
                ours_vectors = result
            else:
                theirs_vectors = result
    cosine = np.sum(ours_vectors * theirs_vectors, axis=1) / (
        np.linalg.norm(ours_vectors, axis=1) * np.linalg.norm(theirs_vectors, axis=1)
    )

    single = texts[: args.latency_calls]
    ours_latency, theirs_latency = [], []
    for text in single:
        start = time.perf_counter()
        ours([text])
        ours_latency.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.encode([text], show_progress_bar=False)
        theirs_latency.append(time.perf_counter() - start)

    ours_s, theirs_s = float(np.median(ours_times)), float(np.median(theirs_times))
    result = {
        "benchmark": "encoder",
        "texts": len(texts),
        "batch_size": args.batch_size,
        "ours_texts_per_s": round(len(texts) / ours_s, 1),
        "st_texts_per_s": round(len(texts) / theirs_s, 1),
        "throughput_ratio_vs_st": round(theirs_s / ours_s, 3),
        "ours_latency_p50_ms": round(1000 * float(np.percentile(ours_latency, 50)), 2),
        "ours_latency_p99_ms": round(1000 * float(np.percentile(ours_latency, 99)), 2),
        "st_latency_p50_ms": round(1000 * float(np.percentile(theirs_latency, 50)), 2),
        "st_latency_p99_ms": round(1000 * float(np.percentile(theirs_latency, 99)), 2),
        "latency_p50_ratio_vs_st": round(
            float(np.percentile(ours_latency, 50) / np.percentile(theirs_latency, 50)), 3
        ),
        "min_cosine": round(float(cosine.min()), 7),
        "max_abs_diff": float(np.abs(ours_vectors - theirs_vectors).max()),
    }
    print(
        f"throughput: ours {result['ours_texts_per_s']}/s, sentence-transformers "
        f"{result['st_texts_per_s']}/s (x{result['throughput_ratio_vs_st']}); latency p50: "
        f"ours {result['ours_latency_p50_ms']} ms, sentence-transformers "
        f"{result['st_latency_p50_ms']} ms; min cosine {result['min_cosine']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
