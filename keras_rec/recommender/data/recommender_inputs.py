"""Everything the towers eat: id tables, text embeddings, histories, training pairs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from keras_rec.recommender.data.interactions import InteractionSplit
from keras_rec.recommender.data.user_item_lists import UserItemLists


@dataclasses.dataclass
class RecommenderInputs:
    """Users and items as rows of arrays, and interactions as row indices.

    Item row `i` has raw id `item_ids[i]`, text `item_texts[i]` and embedding
    `item_embeddings[i]`; its tower `id` input is `item_id_index[i]`: `i + 1`
    when the item has training interactions, 0 ("unknown") otherwise, so an
    item never seen in training is represented by its text alone. Users
    likewise, plus `user_history[u]`: the normalized mean embedding of the
    items in the user's training interactions (zeros without any). Without
    user texts (`user_text=False`) the user's text embedding *is* the
    history (`user_embeddings is user_history`) and the tower has no
    `features` input.

    Everything per user or item is a table (`[rows, ...]`); interactions are
    int row indices, so memory grows with users + items + pairs, never with
    pairs x embedding width. Ids may be integers or strings.

    Args:
        item_ids, item_titles, item_texts, item_embeddings, item_id_index:
            per item.
        user_ids, user_texts, user_embeddings, user_history, user_id_index:
            per user.
        train_users, train_items: int arrays, row indices of training pairs.
        test_users, test_items: int arrays, row indices of test pairs.
        val_users, val_items: int arrays, row indices of validation pairs
            (carved from training; empty without a validation split).
        user_text: bool. Whether users have their own text embeddings.
        cold_items: int array, row indices of items held out of training.
        train_ratings, test_ratings, val_ratings: float arrays, the ratings
            of the pairs
            (empty when the interactions have no `rating` column).
        train_times, val_times: numeric arrays, when each pair happened
            (e.g. Unix seconds; empty without timestamps: the pairs are
            then in file order). Sequence models read histories in this order.
    """

    item_ids: np.ndarray
    item_titles: list[str]
    item_texts: list[str]
    item_embeddings: np.ndarray
    item_id_index: np.ndarray
    user_ids: np.ndarray
    user_texts: list[str]
    user_embeddings: np.ndarray
    user_history: np.ndarray
    user_id_index: np.ndarray
    train_users: np.ndarray
    train_items: np.ndarray
    test_users: np.ndarray
    test_items: np.ndarray
    cold_items: np.ndarray
    train_ratings: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    test_ratings: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    val_users: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    val_items: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    user_text: bool = True
    val_ratings: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    train_times: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float64))
    val_times: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float64))

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def embedding_dim(self) -> int:
        return int(self.item_embeddings.shape[1])

    def user_tables(self) -> dict[str, np.ndarray]:
        """The user tower's inputs for every user row (the tables themselves, not copies)."""
        tables = {"embedding": self.user_embeddings, "id": self.user_id_index}
        if self.user_text:
            tables["features"] = self.user_history
        return tables

    def item_tables(self) -> dict[str, np.ndarray]:
        """The item tower's inputs for every item row (the tables themselves)."""
        return {"embedding": self.item_embeddings, "id": self.item_id_index}

    def user_features(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """User tower inputs for user rows."""
        return {name: table[rows] for name, table in self.user_tables().items()}

    def item_features(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Item tower inputs for item rows."""
        return {name: table[rows] for name, table in self.item_tables().items()}

    def known_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """`(users, items)` of every interaction known before the test: training + validation."""
        if not len(self.val_items):
            return self.train_users, self.train_items
        return (
            np.concatenate([self.train_users, self.val_users]),
            np.concatenate([self.train_items, self.val_items]),
        )

    def known_times(self) -> np.ndarray:
        """When each of `known_pairs()` happened (empty without timestamps)."""
        if not len(self.val_items) or not len(self.train_times):
            return self.train_times
        return np.concatenate([self.train_times, self.val_times])

    def item_log_q(self) -> np.ndarray:
        """log of each item's share of training pairs (its in-batch sampling probability)."""
        counts = np.bincount(self.train_items, minlength=self.num_items).astype(np.float64)
        return np.log(np.maximum(counts, 1.0) / max(counts.sum(), 1.0)).astype(np.float32)


def build_inputs(
    split: InteractionSplit,
    items: pd.DataFrame,
    users: pd.DataFrame,
    embed,
) -> RecommenderInputs:
    """Embeds user and item texts and indexes the interactions of `split`.

    Args:
        split: the train/test interactions (`user_id`, `item_id` columns).
        items: `pandas.DataFrame` with `item_id`, `title` and `text`; every
            item is a retrieval candidate.
        users: `pandas.DataFrame` with `user_id` and `text`. Build user texts
            from the *training* interactions only.
        embed: callable, list of str -> float32 `[N, D]` (e.g.
            `CachedEncoder.encode`).
    """
    for name, table, columns in (
        ("items", items, ["item_id", "title", "text"]),
        ("users", users, ["user_id", "text"]),
    ):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(
                f"`{name}` is missing columns {missing}. Received: {list(table.columns)}"
            )
    item_ids = items["item_id"].to_numpy(np.int64)
    user_ids = users["user_id"].to_numpy(np.int64)
    item_row = pd.Series(np.arange(len(item_ids)), index=item_ids)
    user_row = pd.Series(np.arange(len(user_ids)), index=user_ids)
    rows = {}
    validation = split.validation if split.validation is not None else split.train.iloc[:0]
    for part, frame in (("train", split.train), ("validation", validation), ("test", split.test)):
        for column, index, what in (("user_id", user_row, "users"), ("item_id", item_row, "items")):
            unknown = ~frame[column].isin(index.index)
            if unknown.any():
                raise ValueError(
                    f"The {part} interactions reference {column} values absent from `{what}`: "
                    f"{sorted(set(frame.loc[unknown, column].tolist()))[:10]} "
                    f"({int(unknown.sum())} rows)."
                )
            rows[(part, column)] = index.loc[frame[column].to_numpy()].to_numpy(np.int64)

    item_embeddings = np.asarray(embed(items["text"].tolist()), dtype=np.float32)
    user_embeddings = np.asarray(embed(users["text"].tolist()), dtype=np.float32)
    if item_embeddings.shape[1] != user_embeddings.shape[1]:
        raise ValueError(
            f"User and item embeddings differ in width: {user_embeddings.shape[1]} vs "
            f"{item_embeddings.shape[1]}."
        )
    train_users, train_items = rows[("train", "user_id")], rows[("train", "item_id")]
    seen_items = np.zeros(len(item_ids), bool)
    seen_items[train_items] = True
    seen_users = np.zeros(len(user_ids), bool)
    seen_users[train_users] = True
    cold = item_row.loc[np.asarray(split.cold_item_ids, np.int64)].to_numpy(np.int64)
    return RecommenderInputs(
        item_ids=item_ids,
        item_titles=[str(t) for t in items["title"]],
        item_texts=[str(t) for t in items["text"]],
        item_embeddings=item_embeddings,
        item_id_index=np.where(seen_items, np.arange(1, len(item_ids) + 1), 0).astype(np.int64),
        user_ids=user_ids,
        user_texts=[str(t) for t in users["text"]],
        user_embeddings=user_embeddings,
        user_history=history_embeddings(train_users, train_items, item_embeddings, len(user_ids)),
        user_id_index=np.where(seen_users, np.arange(1, len(user_ids) + 1), 0).astype(np.int64),
        train_users=train_users,
        train_items=train_items,
        test_users=rows[("test", "user_id")],
        test_items=rows[("test", "item_id")],
        cold_items=cold,
        train_ratings=_ratings(split.train),
        test_ratings=_ratings(split.test),
        val_users=rows[("validation", "user_id")],
        val_items=rows[("validation", "item_id")],
        val_ratings=_ratings(validation),
        train_times=_times(split.train),
        val_times=_times(validation),
    )


def _times(frame: pd.DataFrame) -> np.ndarray:
    if "timestamp" not in frame.columns:
        return np.zeros(0, np.float64)
    return frame["timestamp"].to_numpy(np.float64)


def _ratings(frame: pd.DataFrame) -> np.ndarray:
    if "rating" not in frame.columns:
        return np.zeros(0, np.float32)
    return frame["rating"].to_numpy(np.float32)


def history_embeddings(
    users: np.ndarray, items: np.ndarray, item_embeddings: np.ndarray, num_users: int
) -> np.ndarray:
    """Per user, the L2-normalized mean of the embeddings of their items (zeros if none).

    A sparse users x items count matrix times the item table: memory is the
    pairs as integers and the `[num_users, D]` result, never a dense users x
    items matrix or one embedding per pair.
    """
    from scipy import sparse

    counts = sparse.csr_matrix(
        (np.ones(len(users), np.float32), (np.asarray(users), np.asarray(items))),
        shape=(num_users, len(item_embeddings)),
    )
    sums = np.asarray(counts @ np.asarray(item_embeddings, np.float32), np.float32)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    sums /= np.maximum(norms, 1e-12)
    return sums


def movielens_tables(
    data, train_ratings: pd.DataFrame, min_rating: float = 4.0, max_titles: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`(items, users)` tables with texts for `build_inputs`, from MovieLens-100K.

    Item text: "Title (Year). Genres"; title: "Title (Year)". User text:
    demographics and the titles they liked in `train_ratings` (never the
    test interactions).
    """
    from keras_rec.data.text_builders import (
        movielens_item_texts,
        movielens_item_titles,
        movielens_user_texts,
    )

    items = pd.DataFrame(
        {
            "item_id": data.items["item_id"].to_numpy(np.int64),
            "title": movielens_item_titles(data.items).to_numpy(),
            "text": movielens_item_texts(data.items).to_numpy(),
        }
    )
    user_texts = movielens_user_texts(
        train_ratings, data.items, data.users, min_rating=min_rating, max_titles=max_titles
    )
    users = pd.DataFrame(
        {"user_id": user_texts.index.to_numpy(np.int64), "text": user_texts.to_numpy()}
    )
    return items, users


def merge_duplicate_titles(data):
    """MovieLens-100K keyed by "Title (Year)", as TFRS's tutorials key it.

    18 movies are listed twice under two ids; ratings of the second id move
    to the first and the second item row goes. Returns a new `MovieLens100K`.
    """
    from keras_rec.data.movielens import MovieLens100K
    from keras_rec.data.text_builders import movielens_item_titles

    titles = movielens_item_titles(data.items)
    canonical = titles.reset_index().groupby("title")["item_id"].transform("min")
    mapping = pd.Series(canonical.to_numpy(np.int64), index=titles.index.to_numpy(np.int64))
    ratings = data.ratings.assign(item_id=mapping.loc[data.ratings["item_id"]].to_numpy())
    items = data.items[data.items["item_id"].isin(set(mapping.to_numpy()))]
    return MovieLens100K(ratings=ratings, items=items.reset_index(drop=True), users=data.users)


def seen_items_by_user(inputs: RecommenderInputs) -> UserItemLists:
    """Item rows of each user's known interactions (training and validation)."""
    return UserItemLists(*inputs.known_pairs(), inputs.num_users)


def known_popularity(inputs: RecommenderInputs) -> tuple[np.ndarray, np.ndarray]:
    """`(known pairs per item, item rows by decreasing count)`: the unknown users' fallback."""
    counts = np.bincount(inputs.known_pairs()[1], minlength=inputs.num_items)
    return counts, np.argsort(-counts, kind="stable")


def popular_items(inputs: RecommenderInputs) -> dict[str, np.ndarray]:
    """`{"popular_items", "popular_scores"}` of the served models: item rows by decreasing
    known pairs, and each one's share of them."""
    counts, popular = known_popularity(inputs)
    return {"popular_items": popular, "popular_scores": counts[popular] / max(counts.sum(), 1)}


def validation_view(inputs: RecommenderInputs) -> RecommenderInputs:
    """`inputs` with the validation pairs as the test (for model selection; nothing merged)."""
    return dataclasses.replace(
        inputs,
        test_users=inputs.val_users,
        test_items=inputs.val_items,
        test_ratings=np.zeros(0, np.float32),
        val_users=np.zeros(0, np.int64),
        val_items=np.zeros(0, np.int64),
        val_ratings=np.zeros(0, np.float32),
        val_times=np.zeros(0, np.float64),
        cold_items=np.zeros(0, np.int64),
    )


def merge_validation(inputs: RecommenderInputs) -> RecommenderInputs:
    """`inputs` with the validation pairs moved into training (to refit on all known pairs).

    Histories, and the id inputs of users and items first seen in
    validation, are recomputed; cold items that validation reached are no
    longer cold. Texts (and their embeddings) stay as they were.
    """
    if not len(inputs.val_items):
        return inputs
    users, items = inputs.known_pairs()
    history = history_embeddings(users, items, inputs.item_embeddings, inputs.num_users)
    trained_items = np.zeros(inputs.num_items, bool)
    trained_items[items] = True
    trained_users = np.zeros(inputs.num_users, bool)
    trained_users[users] = True
    ratings = np.concatenate([inputs.train_ratings, inputs.val_ratings])
    return dataclasses.replace(
        inputs,
        train_users=users,
        train_items=items,
        val_users=np.zeros(0, np.int64),
        val_items=np.zeros(0, np.int64),
        val_ratings=np.zeros(0, np.float32),
        train_ratings=ratings if len(ratings) == len(users) else np.zeros(0, np.float32),
        train_times=inputs.known_times(),
        val_times=np.zeros(0, np.float64),
        user_history=history,
        user_embeddings=inputs.user_embeddings if inputs.user_text else history,
        item_id_index=np.where(trained_items, np.arange(1, inputs.num_items + 1), 0),
        user_id_index=np.where(trained_users, np.arange(1, inputs.num_users + 1), 0),
        cold_items=inputs.cold_items[~trained_items[inputs.cold_items]],
    )
