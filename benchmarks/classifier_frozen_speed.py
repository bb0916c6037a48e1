"""Frozen-encoder training: head on cached embeddings vs the encoder run every epoch.

With the encoder frozen its outputs never change, so `train-classifier`
computes the embeddings once (through the cache) and trains only the head.
This compares, on the same tweets, the same head, the same seed and epochs:

- cached: `head.fit(embeddings)`, embeddings read from the warm cache;
- full: `model.fit(texts)` on text -> preprocess -> frozen encoder -> head,
  the encoder running in every epoch.

Targets: `epoch_speedup` (full epoch time / cached epoch time) >= 10, and
test accuracy equal within noise (`accuracy_difference` within ~0.02).
Ends with one JSON line.

    python benchmarks/classifier_frozen_speed.py [--examples 3000] [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _EpochTimer:
    def __init__(self):
        import keras

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(inner, epoch, logs=None):
                inner.start = time.perf_counter()

            def on_epoch_end(inner, epoch, logs=None):
                self.times.append(time.perf_counter() - inner.start)

        self.times: list[float] = []
        self.callback = Timer()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from keras_rec.classifier import build_classifier_head, build_text_classifier, labeled_texts
    from keras_rec.data import sentiment_tweets
    from keras_rec.embeddings import CachedEncoder, SentenceEncoder
    from keras_rec.hub.export_hub import export_hub

    splits = labeled_texts.prepare_splits(
        sentiment_tweets()[["text", "label"]],
        "Dataset 'sentiment_tweets'",
        validation_fraction=0.05,
        test_fraction=0.2,
        seed=args.seed,
        max_examples=args.examples,
    )
    vocabulary, train, test = splits.vocabulary, splits.train, splits.test

    sentence_encoder = SentenceEncoder(device="cpu")
    cached = CachedEncoder(sentence_encoder)
    cached.encode(train.texts)  # warm the cache: what a second training run sees
    hub_dir = os.path.join(tempfile.mkdtemp(), "hub")
    export_hub(sentence_encoder.model, hub_dir)

    def head_model():
        keras.utils.set_random_seed(args.seed)
        return build_classifier_head(sentence_encoder.embedding_dim, len(vocabulary), (128,), 0.2)

    def compile_(model):
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    # Cached: embeddings read back from the cache each run, then the head trains.
    start = time.perf_counter()
    train_x = cached.encode(train.texts)
    read_seconds = time.perf_counter() - start
    head = head_model()
    compile_(head)
    cached_timer = _EpochTimer()
    head.fit(
        train_x,
        train.labels,
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        verbose=0,
        callbacks=[cached_timer.callback],
    )
    cached_model = build_text_classifier(
        os.path.join(hub_dir, "preprocess"),
        os.path.join(hub_dir, "encoder"),
        len(vocabulary),
        head=head,
    )

    # Full: the frozen encoder runs inside every epoch.
    full_model = build_text_classifier(
        os.path.join(hub_dir, "preprocess"),
        os.path.join(hub_dir, "encoder"),
        len(vocabulary),
        head=head_model(),
    )
    compile_(full_model)
    dataset = (
        tf.data.Dataset.from_tensor_slices((train.texts, train.labels))
        .shuffle(len(train), seed=args.seed)
        .batch(args.batch_size)
    )
    full_timer = _EpochTimer()
    full_model.fit(dataset, epochs=args.epochs, verbose=0, callbacks=[full_timer.callback])

    def accuracy(model):
        probabilities = model.predict(tf.constant(test.texts), batch_size=64, verbose=0)
        return float(np.mean(np.argmax(probabilities, axis=1) == test.labels))

    # Epoch 1 includes tracing on both sides: compare the later epochs.
    cached_epoch = float(np.median(cached_timer.times[1:] or cached_timer.times))
    full_epoch = float(np.median(full_timer.times[1:] or full_timer.times))
    cached_accuracy, full_accuracy = accuracy(cached_model), accuracy(full_model)
    result = {
        "benchmark": "classifier_frozen_speed",
        "train_examples": len(train),
        "test_examples": len(test),
        "epochs": args.epochs,
        "cached_epoch_seconds": round(cached_epoch, 3),
        "cache_read_seconds": round(read_seconds, 3),
        "full_epoch_seconds": round(full_epoch, 2),
        "epoch_speedup": round(full_epoch / cached_epoch, 1),
        "cached_accuracy": round(cached_accuracy, 4),
        "full_accuracy": round(full_accuracy, 4),
        "accuracy_difference": round(cached_accuracy - full_accuracy, 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
