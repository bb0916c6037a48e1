from __future__ import annotations

import gzip

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keras_rec.data import (
    DataValidationError,
    read_interactions,
    read_table,
    read_text_labels,
)


def _csv(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- read_table ---------------------------------------------------------------


def test_read_table_csv_tsv_gz_parquet(tmp_path):
    expected = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    _csv(tmp_path, "a,b\n1,x\n2,y\n")
    _csv(tmp_path, "a\tb\n1\tx\n2\ty\n", "data.tsv")
    with gzip.open(tmp_path / "data.csv.gz", "wt") as f:
        f.write("a,b\n1,x\n2,y\n")
    expected.to_parquet(tmp_path / "data.parquet")
    expected.to_parquet(tmp_path / "data.pq")
    for name in ("data.csv", "data.tsv", "data.csv.gz", "data.parquet", "data.pq"):
        df = read_table(tmp_path / name)
        assert df["a"].tolist() == [1, 2] and df["b"].tolist() == ["x", "y"], name


def test_read_table_selects_columns_in_order(tmp_path):
    path = _csv(tmp_path, "a,b,c\n1,2,3\n")
    assert list(read_table(path, columns=["c", "a"]).columns) == ["c", "a"]


def test_read_table_fsspec_url():
    with fsspec.open("memory://keras_rec_tests/table.csv", "w") as f:
        f.write("a,b\n1,x\n")
    assert read_table("memory://keras_rec_tests/table.csv")["b"].tolist() == ["x"]
    with pytest.raises(FileNotFoundError, match="memory://keras_rec_tests/absent.csv"):
        read_table("memory://keras_rec_tests/absent.csv")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        read_table(tmp_path / "absent.csv")


def test_unknown_extension(tmp_path):
    path = _csv(tmp_path, "a\n1\n", "data.xlsx")
    with pytest.raises(ValueError) as e:
        read_table(path)
    assert "data.xlsx" in str(e.value)
    assert ".csv, .csv.gz, .tsv, .tsv.gz, .parquet, .pq" in str(e.value)


def test_missing_column_lists_present_ones(tmp_path):
    path = _csv(tmp_path, "a,b\n1,2\n")
    with pytest.raises(DataValidationError) as e:
        read_table(path, columns=["a", "z"])
    assert str(path) in str(e.value)
    assert "['z']" in str(e.value) and "Columns present: ['a', 'b']" in str(e.value)


@pytest.mark.parametrize("reader", [read_table, read_text_labels, read_interactions])
def test_zero_byte_file(tmp_path, reader):
    path = _csv(tmp_path, "")
    with pytest.raises(DataValidationError, match=r"data\.csv' is empty \(0 bytes\)"):
        reader(path)


@pytest.mark.parametrize("reader", [read_table, read_text_labels, read_interactions])
def test_header_only(tmp_path, reader):
    path = _csv(tmp_path, "text,label,user_id,item_id\n")
    with pytest.raises(DataValidationError, match=r"data\.csv' is empty: it has a header"):
        reader(path)


def test_blank_file(tmp_path):
    path = _csv(tmp_path, "\n\n")
    with pytest.raises(DataValidationError, match="no header and no data rows"):
        read_table(path)


def test_empty_parquet(tmp_path):
    pd.DataFrame({"text": pd.Series([], dtype=str)}).to_parquet(tmp_path / "e.parquet")
    with pytest.raises(DataValidationError, match=r"e\.parquet' is empty"):
        read_text_labels(tmp_path / "e.parquet", label_column=None)


def test_malformed_csv(tmp_path):
    path = _csv(tmp_path, "a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataValidationError, match=r"data\.csv' is not valid CSV.*line 3"):
        read_table(path)


def test_not_parquet(tmp_path):
    path = _csv(tmp_path, "this is not parquet", "data.parquet")
    with pytest.raises(DataValidationError, match=r"data\.parquet' could not be read as Parquet"):
        read_table(path)


def test_undecodable_csv_names_line_and_offset(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes("text,label\nok,a\nCaf\xe9,b\n".encode("latin-1"))
    with pytest.raises(DataValidationError) as e:
        read_text_labels(path)
    message = str(e.value)
    # "text,label\n" is 11 bytes and "ok,a\n" 5, so "Caf" ends at offset 19.
    assert str(path) in message and "not valid utf-8" in message
    assert "byte offset 19" in message and "file line 3" in message
    assert 'encoding="latin-1"' in message
    assert read_text_labels(path, encoding="latin-1")["text"].tolist() == ["ok", "Café"]


def test_undecodable_gzipped_csv(tmp_path):
    with gzip.open(tmp_path / "data.csv.gz", "wb") as f:
        f.write(b"a\n1\n\xff\n")
    with pytest.raises(DataValidationError, match=r"byte offset 4 \(file line 3"):
        read_table(tmp_path / "data.csv.gz")


def test_undecodable_parquet_bytes(tmp_path):
    table = pa.table(
        {"text": pa.array([b"ok", b"Caf\xe9", b"fine"], type=pa.binary()), "label": ["a", "b", "c"]}
    )
    pq.write_table(table, tmp_path / "data.parquet")
    with pytest.raises(DataValidationError) as e:
        read_text_labels(tmp_path / "data.parquet")
    message = str(e.value)
    assert "data.parquet" in message and "`text`" in message
    assert "1 row: 2 " in message and "byte offset 3" in message and "encoding=" in message
    df = read_text_labels(tmp_path / "data.parquet", encoding="latin-1")
    assert df["text"].tolist() == ["ok", "Café", "fine"]


# --- read_text_labels -----------------------------------------------------------


def test_text_labels_basic_and_literal_strings(tmp_path):
    path = _csv(tmp_path, 'id,text,label\n007,NA,null\n8," ",None\n')
    df = read_text_labels(path, id_column="id")
    assert list(df.columns) == ["text", "label", "id"]
    # CSV columns are strings; only an empty field counts as missing.
    assert df["id"].tolist() == ["007", "8"]
    assert df["text"].tolist() == ["NA", " "]  # whitespace-only text kept
    assert df["label"].tolist() == ["null", "None"]


def test_texts_only(tmp_path):
    path = _csv(tmp_path, "body\nhello\n")
    df = read_text_labels(path, text_column="body", label_column=None)
    assert list(df.columns) == ["text"] and df["text"].tolist() == ["hello"]


def test_missing_text_error_names_rows(tmp_path):
    path = _csv(tmp_path, "text,label\na,x\n,y\nc,z\n,w\n")
    with pytest.raises(DataValidationError) as e:
        read_text_labels(path)
    message = str(e.value)
    assert str(path) in message and "`text`" in message
    assert "2 rows: 2, 4 (1-based data rows" in message
    assert 'missing_text="empty"' in message


def test_missing_text_empty_policy(tmp_path):
    path = _csv(tmp_path, "text,label\na,x\n,y\n")
    assert read_text_labels(path, missing_text="empty")["text"].tolist() == ["a", ""]


def test_parquet_null_vs_empty_text(tmp_path):
    pd.DataFrame({"text": ["a", "", None], "label": ["x", "y", "z"]}).to_parquet(
        tmp_path / "t.parquet"
    )
    with pytest.raises(DataValidationError, match=r"`text`.*1 row: 3 "):
        read_text_labels(tmp_path / "t.parquet")
    df = read_text_labels(tmp_path / "t.parquet", missing_text="empty")
    assert df["text"].tolist() == ["a", "", ""]


def test_missing_label(tmp_path):
    path = _csv(tmp_path, "text,label\na,x\nb,\n")
    with pytest.raises(DataValidationError, match=r"data\.csv'.*`label`.*1 row: 2 "):
        read_text_labels(path)


def test_missing_text_column(tmp_path):
    path = _csv(tmp_path, "body,label\na,x\n")
    with pytest.raises(
        DataValidationError,
        match=r"no column\(s\) \['text'\]. Columns present: \['body', 'label'\]",
    ):
        read_text_labels(path)


def test_duplicate_ids(tmp_path):
    path = _csv(tmp_path, "id,text,label\na,t,x\nb,t,x\na,t,x\nb,t,x\nc,t,x\n")
    with pytest.raises(DataValidationError) as e:
        read_text_labels(path, id_column="id")
    message = str(e.value)
    assert str(path) in message and "`id` must be unique" in message
    assert "4 rows: 1, 2, 3, 4" in message
    assert "'a' at rows 1, 3" in message and "'b' at rows 2, 4" in message


def test_many_bad_rows_are_truncated(tmp_path):
    path = _csv(tmp_path, "text,label\n" + "a,\n" * 25)
    with pytest.raises(
        DataValidationError,
        match=r"25 rows: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, \.\.\. \(first 10 shown\)",
    ):
        read_text_labels(path)


def test_bad_missing_text_argument(tmp_path):
    with pytest.raises(
        ValueError, match="`missing_text` must be one of .* Received: missing_text='drop'"
    ):
        read_text_labels(tmp_path / "x.csv", missing_text="drop")


# --- read_interactions ----------------------------------------------------------


def test_interactions_types(tmp_path):
    path = _csv(tmp_path, "u,i,r,t\n007,042,4.5,100\n8,42,3,101\n")
    df = read_interactions(path, "u", "i", rating_column="r", timestamp_column="t")
    assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert df["user_id"].tolist() == ["007", "8"]  # ids read as strings, not mangled
    assert df["item_id"].tolist() == ["042", "42"]
    assert df["rating"].dtype == "float32" and df["rating"].tolist() == [4.5, 3.0]
    assert df["timestamp"].dtype == "int64" and df["timestamp"].tolist() == [100, 101]


def test_interactions_parquet_keeps_types(tmp_path):
    pd.DataFrame({"user_id": [1, 2], "item_id": ["a", "b"], "rating": [1, 5]}).to_parquet(
        tmp_path / "r.parquet"
    )
    df = read_interactions(tmp_path / "r.parquet", rating_column="rating")
    assert df["user_id"].dtype == "int64" and df["item_id"].tolist() == ["a", "b"]
    assert df["rating"].dtype == "float32"


def test_missing_ids(tmp_path):
    path = _csv(tmp_path, "user_id,item_id\n1,a\n,b\n3,\n")
    with pytest.raises(DataValidationError, match=r"data\.csv'.*`user_id`.*1 row: 2 "):
        read_interactions(path)
    path = _csv(tmp_path, "user_id,item_id\n1,a\n2,b\n3,\n")
    with pytest.raises(DataValidationError, match=r"`item_id`.*1 row: 3 "):
        read_interactions(path)


def test_non_numeric_rating_and_timestamp(tmp_path):
    path = _csv(tmp_path, "user_id,item_id,rating,ts\n1,a,5,1\n2,a,good,2\n3,a,4,x\n")
    with pytest.raises(DataValidationError) as e:
        read_interactions(path, rating_column="rating")
    assert str(path) in str(e.value) and "`rating` has non-numeric values in 1 row: 2 " in str(
        e.value
    )
    assert "'good'" in str(e.value)
    with pytest.raises(DataValidationError, match=r"`ts` has non-numeric values in 1 row: 3 "):
        read_interactions(path, timestamp_column="ts")


def test_missing_rating(tmp_path):
    path = _csv(tmp_path, "user_id,item_id,rating\n1,a,5\n2,a,\n")
    with pytest.raises(DataValidationError, match=r"`rating` has missing values in 1 row: 2 "):
        read_interactions(path, rating_column="rating")


def test_non_numeric_parquet_dtype(tmp_path):
    pd.DataFrame({"user_id": [1], "item_id": [2], "ts": pd.to_datetime(["2020-01-01"])}).to_parquet(
        tmp_path / "r.parquet"
    )
    with pytest.raises(
        DataValidationError, match=r"`ts` must hold numbers. Received: dtype=datetime64"
    ):
        read_interactions(tmp_path / "r.parquet", timestamp_column="ts")


def test_duplicate_pairs(tmp_path):
    path = _csv(tmp_path, "user_id,item_id,rating\n1,a,1\n1,b,2\n1,a,3\n2,a,4\n")
    with pytest.raises(DataValidationError) as e:
        read_interactions(path, rating_column="rating")
    message = str(e.value)
    assert str(path) in message and "(user_id, item_id) must be unique" in message
    assert "2 rows: 1, 3" in message and "('1', 'a') at rows 1, 3" in message
    assert 'duplicates="keep"' in message

    kept = read_interactions(path, rating_column="rating", duplicates="keep")
    assert kept["rating"].tolist() == [1, 2, 3, 4]
    last = read_interactions(path, rating_column="rating", duplicates="last")
    assert last[["user_id", "item_id"]].values.tolist() == [["1", "b"], ["1", "a"], ["2", "a"]]
    assert last["rating"].tolist() == [2, 3, 4]


def test_duplicate_pairs_custom_column_names(tmp_path):
    path = _csv(tmp_path, "u,i\n1,a\n1,a\n")
    with pytest.raises(DataValidationError, match=r"\(u, i\) must be unique"):
        read_interactions(path, user_column="u", item_column="i")


def test_bad_duplicates_argument(tmp_path):
    with pytest.raises(
        ValueError, match="`duplicates` must be one of .* Received: duplicates='first'"
    ):
        read_interactions(tmp_path / "x.csv", duplicates="first")


def test_json_lines_text_labels_and_chunks(tmp_path):
    from keras_rec.data.table_chunks import file_chunks

    path = tmp_path / "texts.jsonl"
    path.write_text(
        '{"id": 7, "body": "first"}\n{"id": 8, "body": null}\n{"id": 9, "body": "third"}\n'
    )
    with pytest.raises(DataValidationError, match="1 row: 2 "):
        read_text_labels(path, text_column="body", label_column=None, id_column="id")
    df = read_text_labels(
        path, text_column="body", label_column=None, id_column="id", missing_text="empty"
    )
    assert df["text"].tolist() == ["first", "", "third"]
    assert df["id"].tolist() == [7, 8, 9]  # JSON numbers stay numbers.
    chunks = list(file_chunks(str(path), ["body", "id"], chunk_rows=2))
    assert [len(chunk) for chunk in chunks] == [2, 1]
    assert chunks[1]["body"].tolist() == ["third"]
    gz = tmp_path / "texts.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_table(gz)["id"].tolist() == [7, 8, 9]
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "body": "a"}\nnot json\n')
    with pytest.raises(DataValidationError, match="not valid JSON Lines"):
        read_table(tmp_path / "bad.jsonl")
