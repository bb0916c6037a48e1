"""One-request latency of `next_items` (50 recent item ids) against `retrieval` (a user id).

Both SavedModels are built as `train-recommender` builds them on
MovieLens-100K's sizes (1,682 items, 943 users, 384-d text embeddings,
128-d vectors, the exact index, K = 10; the sequence model at its default
settings: 2 blocks, 2 heads, `--max-history 50`; each user's ~100 training
items excluded by `retrieval`), exported by `keras_rec.serving.export`,
then each loaded through TF Serving's Session loader
(`tf.compat.v1.saved_model.loader.load`) in this process and called
through `Session.make_callable`, alternating, one request at a time.
Latency does not depend on the weights, so the models are untrained.

Target (issue 34): `next_items` p50 within 2x of `retrieval`'s. Ends with
one JSON line.

    python benchmarks/next_items_latency.py [--calls 500]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ITEMS, USERS, TEXT_DIM, HISTORY, K = 1682, 943, 384, 50, 10


def cpu_name() -> str:
    """The CPU as `lscpu` names it, with its family and model numbers."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    name = fields.get("Model name", platform.processor()).strip()
    family, model = fields.get("CPU family", "?").strip(), fields.get("Model", "?").strip()
    return f"{name} (family {family}, model {model})"


def build_models(seed: int = 0):
    """`(next_items module, retrieval module, next_items request, retrieval request)`."""
    import keras

    from keras_rec.recommender.data.user_item_lists import UserItemLists
    from keras_rec.recommender.layers.next_item_model import NextItemModel
    from keras_rec.recommender.layers.tower import build_tower
    from keras_rec.recommender.serving.next_items import NextItems
    from keras_rec.recommender.serving.retrieval_serving import UserRetrieval

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    tower = build_tower(TEXT_DIM, "item_tower", id_vocabulary_size=ITEMS + 1)
    model = NextItemModel(tower, ITEMS, TEXT_DIM, max_history=HISTORY)
    model.set_items(rng.normal(size=(ITEMS, TEXT_DIM)), np.arange(1, ITEMS + 1))
    model({"history": np.zeros((1, HISTORY), np.int64)})
    items = np.asarray(model.item_vectors(), np.float32)
    item_ids = np.arange(1, ITEMS + 1)
    titles = [f"item {i}" for i in item_ids]
    popular = np.arange(ITEMS)
    next_items = NextItems(model.encoder, items, item_ids, titles, K, popular, np.ones(ITEMS))
    users = rng.normal(size=(USERS, items.shape[1])).astype(np.float32)
    pairs = rng.integers(0, ITEMS, (USERS, 100))
    seen = UserItemLists(np.repeat(np.arange(USERS), 100), pairs.ravel(), USERS)
    retrieval = UserRetrieval(
        users, np.arange(1, USERS + 1), items, item_ids, titles, K, popular, np.ones(ITEMS),
        seen_items=seen,
    )  # fmt: skip
    recent = {"recent_item_ids": item_ids[rng.integers(0, ITEMS, (1, HISTORY))]}
    return next_items, retrieval, recent, {"user_id": np.array([7], np.int64)}


def session_caller(path: str, request: dict):
    """A no-argument callable answering `request` through TF Serving's Session loader."""
    import tensorflow as tf

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    signature = meta.signature_def["serving_default"]
    names = sorted(request)
    run = session.make_callable(
        [signature.outputs[k].name for k in sorted(signature.outputs)],
        [signature.inputs[n].name for n in names],
    )
    values = [request[n] for n in names]
    return lambda: run(*values)


def percentiles(seconds) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def _twice(request: dict) -> dict:
    """The request's row twice (the export is checked at two batch sizes)."""
    return {name: np.concatenate([value, value]) for name, value in request.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()

    from keras_rec.serving import export

    next_items, retrieval, recent, user = build_models()
    with tempfile.TemporaryDirectory() as base:
        paths = {
            "next_items": export(next_items, base, "next_items", examples=_twice(recent),
                                 signatures={"serving_default": next_items.serve}).path,
            "retrieval": export(retrieval, base, "retrieval", examples=_twice(user),
                                signatures={"serving_default": retrieval.serve}).path,
        }  # fmt: skip
        callers = {
            "next_items": session_caller(paths["next_items"], recent),
            "retrieval": session_caller(paths["retrieval"], user),
        }
        times = {name: [] for name in callers}
        for _ in range(20):  # warm up
            for call in callers.values():
                call()
        for _ in range(args.calls):
            for name, call in callers.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    figures = {name: percentiles(t) for name, t in times.items()}
    ratio = figures["next_items"]["p50_ms"] / figures["retrieval"]["p50_ms"]
    from encoder import cpu_flags

    summary = {
        "cpu": cpu_name(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "calls": args.calls,
        "items": ITEMS,
        "recent_items": HISTORY,
        **figures,
        "p50_ratio_next_items_vs_retrieval": round(ratio, 2),
        "target_met": ratio <= 2.0,
    }
    print(f"next_items p50 {figures['next_items']['p50_ms']} ms, retrieval p50 "
          f"{figures['retrieval']['p50_ms']} ms: {ratio:.2f}x (target <= 2x)")  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
