from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import keras_rec.data
from keras_rec.data import item_text


def test_item_text_full():
    assert item_text("Toy Story", 1995, ["Animation", "Children's", "Comedy"]) == (
        "Toy Story (1995). Animation, Children's, Comedy"
    )


@pytest.mark.parametrize(
    "title, expected",
    [
        ("Usual Suspects, The", "The Usual Suspects"),
        ("Time to Kill, A", "A Time to Kill"),
        ("American in Paris, An", "An American in Paris"),
        ("Misérables, Les", "Misérables, Les"),  # only English articles move
        ("Postino, Il", "Postino, Il"),
        ("Contempt (Mépris, Le)", "Contempt (Mépris, Le)"),
        ("Theater", "Theater"),
    ],
)
def test_item_text_articles(title, expected):
    assert item_text(title) == expected


@pytest.mark.parametrize("year", [None, np.nan, pd.NA])
def test_item_text_missing_year_and_genres(year):
    assert item_text("unknown", year, ["unknown"]) == "unknown"
    assert item_text("Heat", year, []) == "Heat"
    assert item_text("Heat", year, None) == "Heat"
    assert item_text("Heat", year, ["unknown", "Crime"]) == "Heat. Crime"


def test_item_text_rejects_empty_title():
    with pytest.raises(ValueError, match="`title` must be a non-empty string. Received: title=''"):
        item_text("", 1995)


def _toy():
    items = pd.DataFrame(
        {
            "item_id": [10, 20, 30, 40],
            "title": ["Usual Suspects, The", "Toy Story", "Heat", "unknown"],
            "year": pd.array([1995, 1995, None, None], dtype="Int64"),
            "genres": [["Crime"], ["Animation"], [], ["unknown"]],
        }
    )
    users = pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "age": [24, 53, 30],
            "gender": ["M", "F", "F"],
            "occupation": ["technician", "other", "none"],
        }
    )
    ratings = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2],
            "item_id": [10, 20, 30, 40, 10],
            "rating": [4.0, 5.0, 5.0, 3.0, 2.0],
            # Items 20 and 30 tie at t=200: broken by item_id (20 first).
            "timestamp": [100, 200, 200, 300, 100],
        }
    )
    return ratings, items, users


def test_movielens_item_texts():
    _, items, _ = _toy()
    texts = keras_rec.data.movielens_item_texts(items)
    assert texts.index.name == "item_id" and texts.name == "text"
    assert texts.to_dict() == {
        10: "The Usual Suspects (1995). Crime",
        20: "Toy Story (1995). Animation",
        30: "Heat",
        40: "unknown",
    }


def test_movielens_user_texts():
    ratings, items, users = _toy()
    texts = keras_rec.data.movielens_user_texts(ratings, items, users)
    assert texts.index.tolist() == [1, 2, 3]
    # User 1 liked (>= 4) items 10 (t=100), 20 and 30 (t=200); most recent
    # first, the tie ordered by item_id; item 40 (rating 3) is left out.
    assert texts[1] == (
        "A 24-year-old man, technician. Liked: Toy Story (1995); Heat; The Usual Suspects (1995)."
    )
    assert texts[2] == "A 53-year-old woman, other occupation."  # no rating >= 4
    assert texts[3] == "A 30-year-old woman, no occupation."  # no ratings at all


def test_movielens_user_texts_limits_and_determinism():
    ratings, items, users = _toy()
    texts = keras_rec.data.movielens_user_texts(ratings, items, users, min_rating=5, max_titles=1)
    assert texts[1] == "A 24-year-old man, technician. Liked: Toy Story (1995)."
    shuffled = ratings.sample(frac=1.0, random_state=0)
    again = keras_rec.data.movielens_user_texts(shuffled, items, users, min_rating=5, max_titles=1)
    pd.testing.assert_series_equal(texts, again)


def test_movielens_user_texts_errors():
    ratings, items, users = _toy()
    with pytest.raises(
        ValueError, match="`max_titles` must be a positive integer. Received: max_titles=0"
    ):
        keras_rec.data.movielens_user_texts(ratings, items, users, max_titles=0)
    bad = pd.concat(
        [
            ratings,
            pd.DataFrame({"user_id": [1], "item_id": [99], "rating": [5.0], "timestamp": [1]}),
        ]
    )
    with pytest.raises(ValueError, match=r"item_id values absent from the items table: \[99\]"):
        keras_rec.data.movielens_user_texts(bad, items, users)
    with pytest.raises(
        ValueError, match=r"`ratings` must have columns .* Missing: \['timestamp'\]"
    ):
        keras_rec.data.movielens_user_texts(ratings.drop(columns="timestamp"), items, users)


def test_real_texts(movielens):
    item_texts = keras_rec.data.movielens_item_texts(movielens.items)
    assert len(item_texts) == 1682
    assert item_texts[1] == "Toy Story (1995). Animation, Children's, Comedy"
    assert item_texts[12] == "The Usual Suspects (1995). Crime, Thriller"
    assert item_texts[267] == "unknown"
    user_texts = keras_rec.data.movielens_user_texts(
        movielens.ratings, movielens.items, movielens.users
    )
    assert len(user_texts) == 943
    assert user_texts[1].startswith("A 24-year-old man, technician. Liked: ")
    assert all(text.count(";") <= 19 for text in user_texts)  # max_titles=20
