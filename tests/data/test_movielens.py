from __future__ import annotations

import shutil

import pandas as pd
import pytest

import keras_rec.data
from keras_rec.data.errors import DataValidationError

GENRE_ORDER = 19  # unknown, Action, ..., Western


def _flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(GENRE_ORDER))


def _write_grouplens(directory, data=None, items=None, users=None):
    """Writes a tiny MovieLens-100K in the GroupLens layout."""
    directory.mkdir(exist_ok=True)
    data = data or [
        "1\t1\t5\t881250949",
        "1\t2\t3\t881250950",
        "2\t3\t4\t881250951",
        "2\t1\t1\t881250952",
    ]
    items = items or [
        # Animation=3, Children's=4, Comedy=5; Crime=6, Thriller=16.
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags(3, 4, 5)}",
        f"2|Usual Suspects, The (1995)|14-Aug-1995||http://x|{_flags(6, 16)}",
        f"3|Misérables, Les (1995)|01-Jan-1995||http://x|{_flags(8)}",
        f"4|unknown||||{_flags(0)}",
        f"5|No Year In Title|01-Jan-1999||http://x|{_flags()}",
        f"6|Land Before Time III: The Time of the Great Giving (1995) (V)|||x|{_flags(3)}",
    ]
    users = users or ["1|24|M|technician|85711", "2|53|F|other|T8H1N", "3|33|F|none|00501"]
    (directory / "u.data").write_text("\n".join(data) + "\n")
    (directory / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (directory / "u.user").write_text("\n".join(users) + "\n")
    return directory


# --- Real files (fetched from the recbole wheel) ----------------------------


def test_real_shapes_and_dtypes(movielens):
    assert len(movielens.ratings) == 100_000
    assert len(movielens.items) == 1682
    assert len(movielens.users) == 943
    assert movielens.ratings.dtypes.astype(str).to_dict() == {
        "user_id": "int64", "item_id": "int64", "rating": "float32", "timestamp": "int64",
    }  # fmt: skip
    assert movielens.items["item_id"].dtype == "int64"
    assert movielens.items["year"].dtype == "Int64"
    assert pd.api.types.is_string_dtype(movielens.items["title"])
    assert all(isinstance(g, list) for g in movielens.items["genres"])
    assert movielens.users["user_id"].dtype == "int64"
    assert movielens.users["age"].dtype == "int64"
    for column in ("gender", "occupation", "zip_code"):
        assert pd.api.types.is_string_dtype(movielens.users[column]), column
    assert set(movielens.users["gender"]) == {"M", "F"}
    assert set(movielens.ratings["rating"]) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_real_sorted_and_consistent(movielens):
    assert movielens.items["item_id"].tolist() == list(range(1, 1683))
    assert movielens.users["user_id"].tolist() == list(range(1, 944))
    assert movielens.ratings["user_id"].isin(movielens.users["user_id"]).all()
    assert movielens.ratings["item_id"].isin(movielens.items["item_id"]).all()
    assert not movielens.ratings.duplicated(["user_id", "item_id"]).any()


def test_real_titles_and_quirks(movielens):
    items = movielens.items.set_index("item_id")
    assert items.loc[1, "title"] == "Toy Story"
    assert items.loc[1, "year"] == 1995
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc[12, "title"] == "Usual Suspects, The"
    # Item 267: "unkonwn" (sic) title and year in the source.
    assert items.loc[267, "title"] == "unknown"
    assert items.loc[267, "year"] is pd.NA
    assert items.loc[267, "genres"] == ["unknown"]
    # Item 1412: year field "V", year inside the title.
    assert items.loc[1412, "title"] == "Land Before Time III: The Time of the Great Giving"
    assert items.loc[1412, "year"] == 1995
    assert items["year"].isna().sum() == 1  # only item 267
    assert (items["title"] == "Misérables, Les").sum() == 1  # UTF-8 decoded


def test_real_zip_codes_stay_strings(movielens):
    users = movielens.users.set_index("user_id")
    assert users.loc[74, "zip_code"] == "T8H1N"  # Canadian postcode
    assert users.loc[1, "zip_code"] == "85711"


def test_repr_is_short(movielens):
    assert repr(movielens) == "MovieLens100K(ratings=100000 rows, items=1682 rows, users=943 rows)"


def test_path_with_recbole_files_matches_default(movielens, tmp_path):
    from keras_rec.home import datasets_dir

    for name in ("ml-100k.inter", "ml-100k.item", "ml-100k.user"):
        shutil.copy(datasets_dir() / "ml-100k" / name, tmp_path / name)
    local = keras_rec.data.movielens_100k(path=tmp_path)
    pd.testing.assert_frame_equal(local.ratings, movielens.ratings)
    pd.testing.assert_frame_equal(local.items, movielens.items)
    pd.testing.assert_frame_equal(local.users, movielens.users)


# --- GroupLens layout (tiny fixture) -----------------------------------------


def test_grouplens_layout(tmp_path):
    ml = keras_rec.data.movielens_100k(path=_write_grouplens(tmp_path / "ml"))
    assert ml.ratings["rating"].tolist() == [5.0, 3.0, 4.0, 1.0]
    assert ml.ratings["rating"].dtype == "float32"
    assert ml.ratings["timestamp"].dtype == "int64"
    items = ml.items.set_index("item_id")
    assert items["title"].tolist() == [
        "Toy Story", "Usual Suspects, The", "Misérables, Les", "unknown", "No Year In Title",
        "Land Before Time III: The Time of the Great Giving",
    ]  # fmt: skip
    # Years from the title, else from the release date, else <NA>.
    assert items["year"].tolist() == [1995, 1995, 1995, pd.NA, 1999, 1995]
    assert items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc[2, "genres"] == ["Crime", "Thriller"]
    assert items.loc[4, "genres"] == ["unknown"]
    assert items.loc[5, "genres"] == []
    users = ml.users.set_index("user_id")
    assert users["zip_code"].tolist() == ["85711", "T8H1N", "00501"]  # "00501" keeps its zero
    assert users["age"].dtype == "int64"


def test_unknown_item_in_ratings(tmp_path):
    directory = _write_grouplens(tmp_path / "ml", data=["1\t1\t5\t1", "1\t99\t3\t2", "2\t98\t3\t3"])
    with pytest.raises(DataValidationError) as e:
        keras_rec.data.movielens_100k(path=directory)
    message = str(e.value)
    assert "u.data" in message and "`item_id`" in message
    assert "2 rows: 2, 3" in message and "[98, 99]" in message


def test_unknown_user_in_ratings(tmp_path):
    directory = _write_grouplens(tmp_path / "ml", data=["1\t1\t5\t1", "7\t1\t3\t2"])
    with pytest.raises(DataValidationError, match=r"`user_id`.*1 row: 2 .*\[7\]"):
        keras_rec.data.movielens_100k(path=directory)


def test_duplicate_item_ids(tmp_path):
    items = [
        f"1|A (1995)|||x|{_flags(1)}",
        f"2|B (1995)|||x|{_flags(1)}",
        f"1|C (1995)|||x|{_flags(1)}",
    ]
    directory = _write_grouplens(tmp_path / "ml", data=["1\t1\t5\t1"], items=items)
    with pytest.raises(DataValidationError) as e:
        keras_rec.data.movielens_100k(path=directory)
    assert "u.item" in str(e.value) and "`item_id` must be unique" in str(e.value)
    assert "1 at rows 1, 3" in str(e.value)


def test_non_numeric_rating(tmp_path):
    directory = _write_grouplens(tmp_path / "ml", data=["1\t1\t5\t1", "1\t2\tfive\t2"])
    with pytest.raises(DataValidationError, match=r"u\.data.*`rating`.*1 row: 2 .*'five'"):
        keras_rec.data.movielens_100k(path=directory)


def test_wrong_field_count(tmp_path):
    directory = _write_grouplens(tmp_path / "ml", users=["1|24|M|technician"])
    with pytest.raises(DataValidationError, match=r"u\.user.*5 '\|'-separated fields"):
        keras_rec.data.movielens_100k(path=directory)


def test_directory_with_neither_layout(tmp_path):
    (tmp_path / "u.data").write_text("1\t1\t5\t1\n")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataValidationError) as e:
        keras_rec.data.movielens_100k(path=tmp_path)
    message = str(e.value)
    assert "ml-100k.inter" in message and "u.item" in message
    assert "Present: ['notes.txt', 'u.data']" in message


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        keras_rec.data.movielens_100k(path=tmp_path / "nope")
