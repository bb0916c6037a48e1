"""RecBole 1.2.1's SASRec and GRU4Rec as peers: trains one on our split, writes top-N per user.

Run by the separate venv that `benchmarks/recbole_env.sh` creates (RecBole needs
numpy 1.x), never by keras_rec's: this script imports neither keras_rec nor
TensorFlow. The benchmark that calls it scores the files with its own metric
code, on exactly the split and users it gives here.

    python benchmarks/recbole_peers.py --model SASRec --train FIT.csv \\
        --users USERS.txt --epochs-at 5,10,20,40 --out-dir OUT

Inputs: FIT.csv (header `user_id,item_id,timestamp`, integers: the rows to fit
on) and USERS.txt (one user id a line: the users to score). Each user's
sequence is their FIT rows in (timestamp, item_id) order.

Training is RecBole's: its dataset machinery (atomic `.inter` file, token
remapping, the standard sequential augmentation where every prefix, cut to the
last `--max-len` items, predicts its next item), its `TrainDataLoader`, its
model classes with `loss_type='CE'` (softmax over the whole catalogue, no
negative sampling), and the step of `Trainer._train_epoch` (Adam as
`Trainer._build_optimizer` makes it). The loop is ours only because RecBole's
`Trainer.fit` insists on a validation split; there is none here.

After each epoch in `--epochs-at`, every user's last `--max-len` FIT items go
through `model.full_sort_predict`; the items the user has in FIT (and the
padding item) are masked, and the top `--top` raw item ids are written to
`OUT/top_epoch{E}.npz`: `users` int64 [U] (USERS order), `items` int64
[U, top] (-1 pads where fewer candidates remain, and fills the row of a user
with no FIT rows, whom an id model cannot score), `seconds` (training time so
far, scoring excluded). Items absent from FIT are never recommended.

Prints one line per epoch (epoch, mean batch loss, seconds) and ends with one
JSON line: settings, versions, seconds per epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

MODELS = ("SASRec", "GRU4Rec")
DATASET_NAME = "peers"  # No properties/dataset/<name>.yaml in RecBole: no preset applies.
SCORE_BATCH = 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the command line.

    Args:
        argv: Arguments without the program name; `sys.argv[1:]` when None.

    Returns:
        The parsed arguments, `epochs_at` as a sorted list of distinct ints.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--train", required=True, help="FIT.csv: user_id,item_id,timestamp")
    p.add_argument("--users", required=True, help="USERS.txt: one user_id a line")
    p.add_argument("--epochs-at", required=True, help="comma-separated epochs, e.g. 5,10,20")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--top", type=int, default=100)
    p.add_argument("--max-len", type=int, default=50)
    # None: RecBole's own default for the model (SASRec: 64, 2 layers, 2 heads,
    # dropout 0.5; GRU4Rec: 64-d items, 128-d GRU, 1 layer, dropout 0.3).
    p.add_argument("--hidden", type=int, default=None, help="SASRec hidden_size; GRU4Rec both")
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--heads", type=int, default=None, help="SASRec only")
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    epochs = sorted({int(e) for e in args.epochs_at.split(",") if e.strip()})
    if not epochs or epochs[0] < 1:
        p.error("--epochs-at needs positive epoch numbers")
    args.epochs_at = epochs
    return args


def model_settings(args: argparse.Namespace) -> dict:
    """Maps the size options onto the RecBole model's config keys.

    Args:
        args: Parsed arguments.

    Returns:
        Config entries for the options that were given (the others keep the
        model's RecBole defaults).
    """
    given = {}
    if args.model == "SASRec":
        if args.hidden is not None:
            # RecBole's default inner_size (256) is 4x its default hidden_size.
            given.update(hidden_size=args.hidden, inner_size=4 * args.hidden)
        if args.layers is not None:
            given["n_layers"] = args.layers
        if args.heads is not None:
            given["n_heads"] = args.heads
        if args.dropout is not None:
            given.update(hidden_dropout_prob=args.dropout, attn_dropout_prob=args.dropout)
    else:
        if args.hidden is not None:
            given.update(embedding_size=args.hidden, hidden_size=args.hidden)
        if args.layers is not None:
            given["num_layers"] = args.layers
        if args.dropout is not None:
            given["dropout_prob"] = args.dropout
    return given


def read_fit(path: str) -> pd.DataFrame:
    """Reads FIT.csv, sorted by (user_id, timestamp, item_id).

    Args:
        path: CSV with integer columns user_id, item_id, timestamp.

    Returns:
        The rows, sorted, with a fresh index.
    """
    df = pd.read_csv(path, usecols=["user_id", "item_id", "timestamp"], dtype=np.int64)
    return df.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)


def write_atomic(df: pd.DataFrame, data_dir: str) -> None:
    """Writes `data_dir/peers/peers.inter`, RecBole's atomic interaction file.

    The timestamp column holds each row's rank in its user's sorted sequence,
    not the raw time: RecBole keeps float fields as float32, which would merge
    nearby epoch-second timestamps and leave their order to the file. The rank
    is exact, and RecBole's stable sort by (user, time) then reproduces our
    (timestamp, item_id) order.

    Args:
        df: Rows from `read_fit` (already sorted).
        data_dir: RecBole's `data_path`.
    """
    folder = os.path.join(data_dir, DATASET_NAME)
    os.makedirs(folder, exist_ok=True)
    rank = df.groupby("user_id").cumcount()
    out = pd.DataFrame({"u": df["user_id"], "i": df["item_id"], "t": rank})
    with open(os.path.join(folder, f"{DATASET_NAME}.inter"), "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        out.to_csv(f, sep="\t", header=False, index=False)


def recbole_config(args: argparse.Namespace, data_dir: str):
    """RecBole's `Config` for training on everything, with no evaluation split.

    Args:
        args: Parsed arguments.
        data_dir: Folder holding `peers/peers.inter`.

    Returns:
        A `recbole.config.Config`.
    """
    from recbole.config import Config

    config_dict = {
        "data_path": data_dir,
        "checkpoint_dir": os.path.join(data_dir, "saved"),
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "loss_type": "CE",
        "train_neg_sample_args": None,  # required with CE: no negative sampling
        # One part holding every augmented row: `Dataset.build` needs a split.
        "eval_args": {"split": {"RS": [1.0]}, "order": "TO", "group_by": None, "mode": "full"},
        "train_batch_size": args.batch_size,
        "learner": "adam",
        "learning_rate": args.lr,
        "weight_decay": 0.0,
        "epochs": max(args.epochs_at),
        "seed": args.seed,
        "reproducibility": True,
        "gpu_id": "",  # CPU
        "use_gpu": False,
        "worker": 0,
        "shuffle": True,
        "show_progress": False,
        **model_settings(args),
    }
    # Config also reads `--key=value` from sys.argv (`--top=5` would become a
    # config key): hide ours from it.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        return Config(model=args.model, dataset=DATASET_NAME, config_dict=config_dict)
    finally:
        sys.argv = argv


def user_inputs(
    df: pd.DataFrame, users: np.ndarray, token_id: dict, max_len: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Builds each scored user's input sequence and seen items in RecBole's ids.

    Args:
        df: Rows from `read_fit` (sorted).
        users: Raw user ids to score.
        token_id: RecBole's item token -> internal id (tokens are str).
        max_len: Input length.

    Returns:
        `seq` int64 [U, max_len] (last max_len items, left-aligned, 0-padded as
        RecBole's augmentation lays them out), `length` int64 [U] (0 for users
        without FIT rows) and per user the internal ids of all their FIT items.
    """
    internal = df["item_id"].astype(str).map(token_id).to_numpy(np.int64)
    groups = pd.Series(internal).groupby(df["user_id"].to_numpy()).apply(np.asarray)
    seq = np.zeros((len(users), max_len), dtype=np.int64)
    length = np.zeros(len(users), dtype=np.int64)
    seen = []
    for row, user in enumerate(users):
        items = groups.get(user, np.zeros(0, dtype=np.int64))
        last = items[-max_len:]
        seq[row, : len(last)] = last
        length[row] = len(last)
        seen.append(items)
    return seq, length, seen


def top_items(model, config, seq, length, seen, raw_item, top: int) -> np.ndarray:
    """Scores every item for each user and keeps the top raw item ids.

    Args:
        model: A trained RecBole sequential model.
        config: Its `Config` (field names).
        seq: Input sequences from `user_inputs`.
        length: Their lengths (0: no history, row of -1).
        seen: Internal ids to mask, per user.
        raw_item: int64 array, internal id -> raw item id (-1 for padding).
        top: How many items to keep.

    Returns:
        int64 [U, top] raw item ids in score order, -1 padded.
    """
    import torch
    from recbole.data.interaction import Interaction

    item_seq = config["ITEM_ID_FIELD"] + config["LIST_SUFFIX"]
    item_len = config["ITEM_LIST_LENGTH_FIELD"]
    out = np.full((len(seq), top), -1, dtype=np.int64)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(seq), SCORE_BATCH):
            rows = np.arange(start, min(start + SCORE_BATCH, len(seq)))
            rows = rows[length[rows] > 0]
            if len(rows) == 0:
                continue
            inter = Interaction(
                {
                    item_seq: torch.from_numpy(seq[rows]),
                    item_len: torch.from_numpy(length[rows]),
                }
            ).to(config["device"])
            scores = model.full_sort_predict(inter).float()
            scores[:, 0] = -torch.inf  # RecBole's padding item
            for k, row in enumerate(rows):
                scores[k, torch.from_numpy(seen[row])] = -torch.inf
            k = min(top, scores.shape[1])
            values, index = torch.topk(scores, k, dim=1)
            ids = raw_item[index.cpu().numpy()]
            ids[~torch.isfinite(values).cpu().numpy()] = -1
            out[rows, :k] = ids
    return out


def main(argv: list[str] | None = None) -> None:
    """Trains the model and writes the top-N files; see the module docstring.

    Args:
        argv: Arguments without the program name; `sys.argv[1:]` when None.
    """
    args = parse_args(argv)
    import recbole
    import torch
    from recbole.data import create_dataset
    from recbole.data.dataloader import TrainDataLoader
    from recbole.model.sequential_recommender import GRU4Rec, SASRec
    from recbole.utils import init_seed

    # Importing recbole.model.sequential_recommender runs SINE's module-level
    # `torch.autograd.set_detect_anomaly(True)`, which NaN-checks every tensor of
    # every backward pass (half the CPU step time here; same losses). Turn it off.
    torch.autograd.set_detect_anomaly(False)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)
    started = time.perf_counter()
    df = read_fit(args.train)
    with open(args.users) as f:
        users = np.array([int(line) for line in f if line.strip()], dtype=np.int64)

    with tempfile.TemporaryDirectory(prefix="recbole_peers_") as tmp:
        write_atomic(df, tmp)
        config = recbole_config(args, tmp)
        # As RecBole's run_recbole: seed, dataset, seed again, model.
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        (train_set,) = dataset.build()  # the augmentation runs here
        train_data = TrainDataLoader(config, train_set, None, shuffle=config["shuffle"])
        init_seed(config["seed"], config["reproducibility"])
        model_class = {"SASRec": SASRec, "GRU4Rec": GRU4Rec}[args.model]
        model = model_class(config, train_set).to(config["device"])

    # RecBole's item ids: 0 is [PAD], then FIT's item tokens (strings of our ints).
    tokens = dataset.field2id_token["item_id"]
    raw_item = np.array([-1] + [int(t) for t in tokens[1:]], dtype=np.int64)
    seq, length, seen = user_inputs(df, users, dataset.field2token_id["item_id"], args.max_len)
    prep_seconds = time.perf_counter() - started

    # Trainer._build_optimizer's Adam; Trainer._train_epoch's step.
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"]
    )
    train_seconds, per_epoch, losses = 0.0, [], []
    for epoch in range(1, max(args.epochs_at) + 1):
        t0 = time.perf_counter()
        model.train()
        total, batches = 0.0, 0
        for interaction in train_data:
            interaction = interaction.to(config["device"])
            optimizer.zero_grad()
            loss = model.calculate_loss(interaction)
            if torch.isnan(loss):
                raise ValueError(f"training loss is nan at epoch {epoch}")
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        per_epoch.append(time.perf_counter() - t0)
        train_seconds += per_epoch[-1]
        losses.append(total / max(batches, 1))
        print(
            f"epoch {epoch} loss {losses[-1]:.4f} seconds {train_seconds:.1f}",
            flush=True,
        )
        if epoch in args.epochs_at:
            items = top_items(model, config, seq, length, seen, raw_item, args.top)
            np.savez(
                os.path.join(args.out_dir, f"top_epoch{epoch}.npz"),
                users=users,
                items=items,
                seconds=np.float64(train_seconds),
            )

    summary = {
        "model": args.model,
        "settings": {
            **{k: v for k, v in vars(args).items() if k not in ("train", "users", "out_dir")},
            **model_settings(args),
            "recbole_model_config": {
                k: config[k]
                for k in (
                    "hidden_size",
                    "inner_size",
                    "n_layers",
                    "n_heads",
                    "hidden_dropout_prob",
                    "attn_dropout_prob",
                    "embedding_size",
                    "num_layers",
                    "dropout_prob",
                )
                if config[k] is not None
            },
        },
        "versions": {
            "recbole": recbole.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "python": sys.version.split()[0],
        },
        "fit_rows": len(df),
        "fit_users": int(df["user_id"].nunique()),
        "fit_items": len(raw_item) - 1,
        "train_sequences": len(train_set),
        "scored_users": len(users),
        "users_without_history": int((length == 0).sum()),
        "prep_seconds": round(prep_seconds, 2),
        "seconds_per_epoch": [round(s, 2) for s in per_epoch],
        "mean_seconds_per_epoch": round(float(np.mean(per_epoch)), 2),
        "loss_per_epoch": [round(x, 4) for x in losses],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
