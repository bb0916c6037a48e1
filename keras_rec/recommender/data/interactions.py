"""(user, item) interactions: validation and the evaluation splits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from keras_rec.data.errors import DataValidationError

TFRS_TRAIN_SIZE = 80_000
TFRS_TEST_SIZE = 20_000


@dataclasses.dataclass
class InteractionSplit:
    """Train and test rows of a ratings table, and the items kept out of training.

    Args:
        train: `pandas.DataFrame`, the training interactions.
        test: `pandas.DataFrame`, the held-out interactions.
        cold_item_ids: int array. Items with no training interaction at all
            (held out on purpose for a cold-start evaluation); empty otherwise.
        protocol: str. How the split was made.
        validation: `pandas.DataFrame` or None. Interactions carved out of
            training to choose epochs and hyperparameters (never the test).
        history: `pandas.DataFrame` or None. Interactions before the test
            that no model trains on and no metric scores: a time split's
            interactions with its cold items (`cold_start_split`). A served
            next-item model reads them as the user's recent items.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    cold_item_ids: np.ndarray
    protocol: str
    validation: pd.DataFrame | None = None
    history: pd.DataFrame | None = None

    def summary(self) -> dict[str, object]:
        return {
            "protocol": self.protocol,
            "train": len(self.train),
            "validation": 0 if self.validation is None else len(self.validation),
            "test": len(self.test),
            "cold_items": len(self.cold_item_ids),
            "history_only": 0 if self.history is None else len(self.history),
        }


def carve_validation(
    split: InteractionSplit, fraction: float, seed: int, by_time: bool = False
) -> InteractionSplit:
    """`split` with part of its training rows moved to `validation`.

    Args:
        split: the split.
        fraction: float. Share moved out (at random; with `by_time` and a
            temporal split, the latest `fraction` by time).
        seed: int. Seed of the random choice.
        by_time: bool. Follow the split's own kind: a leave-last-out split
            moves each user's last training row, a temporal one the latest
            `fraction` of rows.
    """
    from keras_rec.recommender.data.interaction_splits import holdout_mask

    train = split.train
    if not by_time:
        held = holdout_mask("random", np.zeros(len(train)), None, fraction, 1, seed)
        described = f"validation(fraction={fraction}, seed={seed})"
    else:
        kind = "leave-last-out" if split.protocol.startswith("leave-last-out") else "temporal"
        users, times = train["user_id"].to_numpy(), train["timestamp"].to_numpy()
        held = holdout_mask(kind, users, times, fraction, 1, seed)
        described = (
            "validation(last=1 per user)" if kind == "leave-last-out"
            else f"validation(latest fraction={fraction})"
        )  # fmt: skip
    return dataclasses.replace(
        split,
        train=train.loc[~held].reset_index(drop=True),
        validation=train.loc[held].reset_index(drop=True),
        protocol=f"{split.protocol}+{described}",
    )


def time_split(ratings: pd.DataFrame, kind: str, fraction: float, leave_last: int):
    """`InteractionSplit` by time: `"leave-last-out"` (per user) or `"temporal"` (global cutoff).

    Rows are first ordered by user, timestamp and item id, so ties in time
    are broken by item id (the later item id is the later interaction).
    """
    from keras_rec.recommender.data.interaction_splits import holdout_mask

    if "timestamp" not in ratings.columns:
        raise DataValidationError(
            f"`split={kind!r}` needs a `timestamp` column. Received: {list(ratings.columns)}"
        )
    rows = ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    rows = rows.reset_index(drop=True)
    users, times = rows["user_id"].to_numpy(), rows["timestamp"].to_numpy()
    held = holdout_mask(kind, users, times, fraction, leave_last, 0)
    protocol = (
        f"leave-last-out(last={leave_last} per user)" if kind == "leave-last-out"
        else f"temporal(fraction={fraction})"
    )  # fmt: skip
    return InteractionSplit(
        train=rows.loc[~held].reset_index(drop=True),
        test=rows.loc[held].reset_index(drop=True),
        cold_item_ids=np.zeros(0, np.int64),
        protocol=protocol,
    )


def check_interactions(ratings: pd.DataFrame, name: str = "ratings") -> None:
    """Raises `DataValidationError` on missing ids or duplicate (user, item) pairs.

    Duplicates would count one interaction twice in training and let a test
    pair also sit in the training split; the message names them.
    """
    for column in ("user_id", "item_id"):
        if column not in ratings.columns:
            raise DataValidationError(
                f"`{name}` must have a `{column}` column. Received columns: {list(ratings.columns)}"
            )
        missing = ratings[column].isna().to_numpy()
        if missing.any():
            rows = (np.flatnonzero(missing) + 1).tolist()
            raise DataValidationError(
                f"`{name}` has missing `{column}` values at rows {rows[:10]} "
                f"({int(missing.sum())} rows)."
            )
    duplicated = ratings.duplicated(["user_id", "item_id"], keep=False).to_numpy()
    if duplicated.any():
        pairs = ratings.loc[duplicated, ["user_id", "item_id"]].drop_duplicates()
        shown = [tuple(int(v) for v in pair) for pair in pairs.to_numpy()[:5]]
        rows = (np.flatnonzero(duplicated) + 1).tolist()
        raise DataValidationError(
            f"`{name}` has {len(pairs)} duplicate (user_id, item_id) pairs, e.g. {shown} "
            f"at rows {rows[:10]}. Keep one row per pair (e.g. the latest) before training."
        )


def tfrs_protocol_split(ratings: pd.DataFrame, seed: int = 42) -> InteractionSplit:
    """The split of TFRS's basic-retrieval tutorial, on `ratings` in file order.

    `tf.random.set_seed(seed)`, then a `tf.data` shuffle of all rows with
    `seed` and `reshuffle_each_iteration=False`; the first 80,000 rows train,
    the next 20,000 test (scaled to 80%/20% when there are not 100,000 rows).
    Candidates are all items, so nothing is held out. Rows are kept as they
    are (TFRS keeps a user's two ratings of a movie listed under two ids).
    """
    import tensorflow as tf

    count = len(ratings)
    tf.random.set_seed(seed)
    order = tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=False)
    # One batch of everything: the same order as iterating row by row, ~100x faster.
    order = next(iter(order.batch(max(count, 1)))).numpy().astype(np.int64)
    if count == TFRS_TRAIN_SIZE + TFRS_TEST_SIZE:
        train_size, test_size = TFRS_TRAIN_SIZE, TFRS_TEST_SIZE
    else:
        train_size = int(round(count * 0.8))
        test_size = count - train_size
    rows = ratings.reset_index(drop=True)
    return InteractionSplit(
        train=rows.iloc[order[:train_size]].reset_index(drop=True),
        test=rows.iloc[order[train_size : train_size + test_size]].reset_index(drop=True),
        cold_item_ids=np.zeros(0, np.int64),
        protocol=f"tfrs_basic_retrieval(seed={seed})",
    )


def cold_start_split(
    ratings: pd.DataFrame,
    item_ids: np.ndarray,
    fraction: float = 0.1,
    seed: int = 42,
    base: InteractionSplit | None = None,
) -> InteractionSplit:
    """Holds `fraction` of the items out of training entirely.

    Every interaction with a held-out item leaves the training rows. With
    a random split (TFRS's), the test rows are `base`'s test rows plus all
    interactions with held-out items. With a time split (leave-last-out,
    temporal) the test stays what came last: its held-out items are the
    cold targets, and their earlier interactions become `history` (what a
    user did before the test, with items no model was trained on). An
    ID-only model cannot score those items (their ids never trained); a
    text-based tower can, since their vectors come from text.

    Args:
        ratings: the interactions.
        item_ids: all item ids (the candidates).
        fraction: float in (0, 1). Share of items held out.
        seed: int. Choice of held-out items.
        base: the split to start from (default: `tfrs_protocol_split`).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"`fraction` must be in (0, 1). Received: fraction={fraction!r}")
    base = base if base is not None else tfrs_protocol_split(ratings, seed)
    item_ids = np.asarray(item_ids, dtype=np.int64)
    rng = np.random.default_rng(seed)
    cold = np.sort(
        rng.choice(item_ids, size=max(1, int(round(len(item_ids) * fraction))), replace=False)
    )
    in_train = base.train["item_id"].isin(cold)
    by_time = base.protocol.startswith(("leave-last-out", "temporal"))
    held = base.train.loc[in_train].reset_index(drop=True)
    return InteractionSplit(
        train=base.train.loc[~in_train].reset_index(drop=True),
        test=base.test if by_time else pd.concat([base.test, held], ignore_index=True),
        cold_item_ids=cold,
        protocol=f"{base.protocol}+cold_items(fraction={fraction}, seed={seed})",
        history=held if by_time else None,
    )
