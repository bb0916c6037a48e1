"""Builds natural-language texts for MovieLens items and users.

Sentence-transformers embed sentences best, so ids and fields become short,
readable texts: "Toy Story (1995). Animation, Children's, Comedy".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

_TRAILING_ARTICLE = re.compile(r"^(.+), (The|A|An)$")
_GENDERS = {"M": "man", "F": "woman"}
_OCCUPATIONS = {"none": "no occupation", "other": "other occupation"}


def item_text(title: str, year: Any = None, genres: Sequence[str] | None = None) -> str:
    """Returns a readable text for a movie.

    A trailing English article moves to the front ("Usual Suspects, The" ->
    "The Usual Suspects"; also ", A" and ", An"). A missing year adds no
    parentheses; no genres, or only "unknown", add no genre sentence.

    Args:
        title: str. Movie title without the year.
        year: int or `None` (NaN and `pandas.NA` count as missing).
        genres: list of str, or `None`.

    Returns:
        A str such as "Toy Story (1995). Animation, Children's, Comedy".

    Example:

    ```python
    keras_rec.data.item_text("Usual Suspects, The", 1995, ["Crime"])
    # "The Usual Suspects (1995). Crime"
    ```
    """
    text = _title_with_year(title, year)
    genres = [g for g in (genres if genres is not None else []) if g != "unknown"]
    return f"{text}. {', '.join(genres)}" if genres else text


def movielens_item_texts(items: pd.DataFrame) -> pd.Series:
    """Returns `item_text` for every row of a MovieLens `items` table.

    Args:
        items: `pandas.DataFrame` with columns `item_id`, `title`, `year`
            and `genres`, e.g. `keras_rec.data.movielens_100k().items`.

    Returns:
        A `pandas.Series` of str named "text", indexed by `item_id`.

    Example:

    ```python
    texts = keras_rec.data.movielens_item_texts(ml.items)
    texts.loc[1]  # "Toy Story (1995). Animation, Children's, Comedy"
    ```
    """
    _require(items, "items", ["item_id", "title", "year", "genres"])
    texts = [
        item_text(title, year, genres)
        for title, year, genres in zip(items["title"], items["year"], items["genres"])
    ]
    index = pd.Index(items["item_id"], name="item_id")
    return pd.Series(texts, index=index, name="text", dtype=str)


def movielens_item_titles(items: pd.DataFrame) -> pd.Series:
    """Returns "Title (Year)" for every row of a MovieLens `items` table.

    This is the item key of TFRS's MovieLens tutorials, with trailing
    articles moved to the front ("Usual Suspects, The" -> "The Usual
    Suspects (1995)").

    Args:
        items: `pandas.DataFrame` with columns `item_id`, `title` and `year`.

    Returns:
        A `pandas.Series` of str named "title", indexed by `item_id`.
    """
    _require(items, "items", ["item_id", "title", "year"])
    titles = [_title_with_year(t, y) for t, y in zip(items["title"], items["year"])]
    return pd.Series(
        titles, index=pd.Index(items["item_id"], name="item_id"), name="title", dtype=str
    )


def movielens_user_texts(
    ratings: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    min_rating: float = 4.0,
    max_titles: int = 20,
) -> pd.Series:
    """Returns a text per user: demographics, then movies they rated highly.

    E.g. "A 24-year-old man, technician. Liked: Toy Story (1995); Star Wars
    (1977)." Liked titles are the user's ratings >= `min_rating`, most
    recent first (ties in timestamp broken by ascending `item_id`), at most
    `max_titles`. A user with no such rating, or no rating at all, gets the
    demographic sentence only. Output is deterministic.

    Pass only the training ratings: a text built from test interactions
    leaks them into the user representation and inflates evaluation.

    Args:
        ratings: `pandas.DataFrame` with `user_id`, `item_id`, `rating`,
            `timestamp`.
        items: `pandas.DataFrame` with `item_id`, `title`, `year`.
        users: `pandas.DataFrame` with `user_id`, `age`, `gender`,
            `occupation`.
        min_rating: float. Smallest rating that counts as liked.
        max_titles: int. Most liked titles listed per user.

    Returns:
        A `pandas.Series` of str named "text", indexed by `user_id` in the
        order of `users`.

    Example:

    ```python
    ml = keras_rec.data.movielens_100k()
    texts = keras_rec.data.movielens_user_texts(train_ratings, ml.items, ml.users)
    ```
    """
    if not isinstance(max_titles, int) or isinstance(max_titles, bool) or max_titles < 1:
        raise ValueError(
            f"`max_titles` must be a positive integer. Received: max_titles={max_titles!r}"
        )
    _require(ratings, "ratings", ["user_id", "item_id", "rating", "timestamp"])
    _require(items, "items", ["item_id", "title", "year"])
    _require(users, "users", ["user_id", "age", "gender", "occupation"])
    for column, table in (("user_id", users), ("item_id", items)):
        unknown = ~ratings[column].isin(table[column])
        if unknown.any():
            raise ValueError(
                f"`ratings` references {column} values absent from the "
                f"{'users' if column == 'user_id' else 'items'} table: "
                f"{sorted(set(ratings.loc[unknown, column].tolist()))[:10]} "
                f"({int(unknown.sum())} rows)."
            )

    titles = pd.Series(
        [_title_with_year(t, y) for t, y in zip(items["title"], items["year"])],
        index=items["item_id"].to_numpy(),
    )
    liked = ratings.loc[ratings["rating"] >= min_rating, ["user_id", "item_id", "timestamp"]]
    liked = liked.sort_values(
        ["user_id", "timestamp", "item_id"], ascending=[True, False, True], kind="stable"
    )
    liked = liked.groupby("user_id", sort=False).head(max_titles)
    liked = liked.assign(title=titles.loc[liked["item_id"].to_numpy()].to_numpy())
    liked_text = liked.groupby("user_id", sort=False)["title"].agg("; ".join)

    texts = []
    for user_id, age, gender, occupation in zip(
        users["user_id"], users["age"], users["gender"], users["occupation"]
    ):
        text = _demographics(age, gender, occupation)
        if user_id in liked_text.index:
            text += f" Liked: {liked_text.loc[user_id]}."
        texts.append(text)
    index = pd.Index(users["user_id"], name="user_id")
    return pd.Series(texts, index=index, name="text", dtype=str)


def _title_with_year(title: str, year: Any) -> str:
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"`title` must be a non-empty string. Received: title={title!r}")
    title = title.strip()
    match = _TRAILING_ARTICLE.match(title)
    if match:
        title = f"{match.group(2)} {match.group(1)}"
    return title if _is_missing(year) else f"{title} ({int(year)})"


def _demographics(age: Any, gender: Any, occupation: Any) -> str:
    person = _GENDERS.get(gender, "person")
    age_part = "A" if _is_missing(age) else f"A {int(age)}-year-old"
    occupation = None if _is_missing(occupation) else str(occupation).strip()
    if occupation:
        return f"{age_part} {person}, {_OCCUPATIONS.get(occupation, occupation)}."
    return f"{age_part} {person}."


def _is_missing(value: Any) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _require(df: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"`{name}` must have columns {columns}. Missing: {missing}. "
            f"Received: columns={list(df.columns)}"
        )
