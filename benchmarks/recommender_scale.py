"""How `keras-rec train-recommender` scales with the user's own data: 100k to 10M interactions.

Synthetic power-law data at each size, written as files and trained through
the CLI a user types (one process per size, nothing shared):

- items = interactions / 10, users = interactions / 20 (1M items and 500k
  users at 10M interactions);
- item popularity Zipf-like (p ~ 1 / (rank + 10) ** 0.9); users with 5-500
  interactions (truncated Pareto); random timestamps;
- random unit item and user embeddings (`--dim`, default 384, the width of
  all-MiniLM-L6-v2) given as `--item-embeddings` / `--user-embeddings`
  Parquet files, so no encoder runs;
- `--split leave-last-out`, one epoch, evaluation on a seeded sample of
  `--eval-users` test users against every item, the ranker not trained
  (`--ranker-epochs 0`: its test pairs are still scored), every export
  written and checked (TF Serving's Session loader, warmup).

Figures per size: peak RSS of the training process (whole run, and at the
end of training), training examples/s, evaluation and export seconds, and
how each grows from size to size. The peer is the smallest size in the same
run. Targets: at 10M, the run's peak RSS <= 6 GB (`TARGET_PEAK_GB`) and
throughput >= the smallest size's; time per interaction roughly constant.

    python benchmarks/recommender_scale.py [--sizes 100000,1000000,10000000] [--dim 384]

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

TARGET_PEAK_GB = 6.0


def write_dataset(directory: str, interactions: int, dim: int, seed: int = 0) -> dict:
    """Writes `interactions.parquet`, `item_vectors.parquet`, `user_vectors.parquet`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from keras_rec.embeddings.embed_table import embedding_row_group_rows

    rng = np.random.default_rng(seed)
    num_items, num_users = interactions // 10, interactions // 20
    counts = np.minimum(5 * (1 - rng.random(num_users)) ** (-1 / 1.2), 500)
    counts = np.clip(np.round(counts * interactions / counts.sum()), 5, 500).astype(np.int64)
    while counts.sum() != interactions:  # exact size, bounds kept
        gap = interactions - counts.sum()
        pick = rng.integers(0, num_users, abs(gap))
        np.add.at(counts, pick, np.sign(gap))
        counts = np.clip(counts, 5, 500)
    users = np.repeat(np.arange(num_users, dtype=np.int64), counts)
    popularity = 1.0 / (np.arange(num_items) + 10.0) ** 0.9
    items = rng.choice(num_items, size=interactions, p=popularity / popularity.sum())
    items = rng.permutation(num_items)[items].astype(np.int64)  # popular ids scattered
    table = pa.table(
        {
            "user_id": users,
            "item_id": items,
            "ts": rng.integers(0, 10**9, interactions),
        }
    )
    pq.write_table(table, os.path.join(directory, "interactions.parquet"))
    del table, users, items
    for name, count in (("item", num_items), ("user", num_users)):
        vectors = rng.standard_normal((count, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)
        pq.write_table(
            pa.table({f"{name}_id": np.arange(count, dtype=np.int64), "embedding": column}),
            os.path.join(directory, f"{name}_vectors.parquet"),
            row_group_size=embedding_row_group_rows(dim),  # as `keras-rec embed` writes
        )
        del vectors, column
    return {"interactions": interactions, "items": num_items, "users": num_users}


def train(directory: str, args) -> dict:
    """Runs the CLI on the files; its summary plus the process's peak RSS."""
    command = [
        sys.executable, "-m", "keras_rec.cli", "train-recommender",
        "--interactions", os.path.join(directory, "interactions.parquet"),
        "--item-embeddings", os.path.join(directory, "item_vectors.parquet"),
        "--user-embeddings", os.path.join(directory, "user_vectors.parquet"),
        "--timestamp-column", "ts",
        "--split", "leave-last-out",
        "--epochs", str(args.epochs),
        "--ranker-epochs", "0",
        # As measured before the validation default: one training, no re-ranker.
        "--validation-fraction", "0",
        "--recommend-candidates", "0",
        "--eval-users", str(args.eval_users),
        "--output-dir", os.path.join(directory, "saved_models"),
        "--cache", os.path.join(directory, "cache"),
    ]  # fmt: skip
    env = {**os.environ, "KERAS_REC_HOME": os.path.join(directory, "home")}
    started = time.perf_counter()
    with (
        open(os.path.join(directory, "stdout.txt"), "w") as out,
        open(os.path.join(directory, "stderr.txt"), "w") as err,
    ):
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        with open(os.path.join(directory, "stderr.txt")) as err:
            raise RuntimeError(f"train-recommender failed:\n{err.read()[-3000:]}")
    with open(os.path.join(directory, "stdout.txt")) as out:
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1])
    summary["peak_rss_gb"] = round(usage.ru_maxrss / 1024**2, 2)
    summary["wall_seconds"] = round(wall, 1)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--eval-users", type=int, default=10_000)
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="keras_rec_scale_", dir=args.work_dir) as root:
        for size in sizes:
            directory = os.path.join(root, str(size))
            os.makedirs(directory)
            shape = write_dataset(directory, size, args.dim)
            summary = train(directory, args)
            row = {
                **shape,
                "train_pairs": summary["train_pairs"],
                "peak_rss_gb": summary["peak_rss_gb"],
                "peak_rss_after_training_gb": round(summary["peak_rss_mb"]["training"] / 1024, 2),
                "train_examples_per_second": summary["train_examples_per_second"],
                "train_seconds": summary["train_seconds"],
                "evaluation_seconds": summary["evaluation_seconds"],
                "export_seconds": summary["export_seconds"],
                "embed_seconds": summary["embed_seconds"],
                "wall_seconds": summary["wall_seconds"],
                "user_recall_at_100": summary["user_recall_at_100"],
            }
            rows.append(row)
            print(json.dumps({"size": size, **row}), flush=True)
            import shutil

            shutil.rmtree(directory, ignore_errors=True)
    first, last = rows[0], rows[-1]
    scale = last["interactions"] / first["interactions"]
    result = {
        "benchmark": "recommender_scale",
        "dim": args.dim,
        "epochs": args.epochs,
        "eval_users": args.eval_users,
        "rows": rows,
        "throughput_ratio_largest_vs_smallest": round(
            last["train_examples_per_second"] / first["train_examples_per_second"], 2
        ),
        "train_time_growth_vs_size_growth": round(
            (last["train_seconds"] / first["train_seconds"]) / scale, 2
        ),
        "peak_rss_gb_largest": last["peak_rss_gb"],
    }
    result["targets_met"] = {
        "peak_rss_le_6gb": last["peak_rss_gb"] <= TARGET_PEAK_GB,
        "throughput_no_degradation": result["throughput_ratio_largest_vs_smallest"] >= 1.0,
    }
    print(
        "\n| interactions | items | users | peak RSS GB (end of training) | train ex/s | "
        "train s | eval s | export s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['interactions']:,} | {row['items']:,} | {row['users']:,} | "
            f"{row['peak_rss_gb']} ({row['peak_rss_after_training_gb']}) | "
            f"{row['train_examples_per_second']:,.0f} | {row['train_seconds']} | "
            f"{row['evaluation_seconds']} | {row['export_seconds']} |"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
