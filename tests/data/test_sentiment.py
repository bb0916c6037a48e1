from __future__ import annotations

import pandas as pd
import pytest

import keras_rec.data
from keras_rec.data.errors import DataValidationError


def test_real_shape_and_dtypes(tweets):
    # 38,158 data rows: `wc -l` says 38,158 lines because the last line has
    # no trailing newline, and the header takes one more.
    assert len(tweets) == 38_158
    assert list(tweets.columns) == ["text", "label", "confidence"]
    assert pd.api.types.is_string_dtype(tweets["text"])
    assert pd.api.types.is_string_dtype(tweets["label"])
    assert tweets["confidence"].dtype == "float64"


def test_real_labels_and_confidence(tweets):
    assert tweets["label"].value_counts().to_dict() == {
        "negative": 16186, "neutral": 15018, "positive": 6954,
    }  # fmt: skip
    # Empty `confidence` fields stay NaN (policy: no row is dropped).
    assert tweets["confidence"].isna().sum() == 5460
    assert tweets["confidence"].dropna().between(0, 1).all()


def test_real_texts_kept_as_in_file(tweets):
    assert tweets["text"].notna().all()
    assert (tweets["text"].str.strip() != "").all()  # no empty texts in the file
    assert tweets["text"].iloc[1] == "self-driving cars just seem lazy and a waste of money"
    assert tweets["text"].str.contains("\r", regex=False).sum() == 1564
    assert tweets["text"].iloc[-1] == "@jpritch_ One word: Claritin. Works wonders."
    assert tweets.duplicated().sum() == 511  # duplicates kept
    assert (tweets.groupby("text")["label"].nunique() > 1).sum() == 46


def test_local_copy(tmp_path):
    path = tmp_path / "tweets.csv"
    path.write_bytes(
        "sentiment,confidence,text\r\n"
        "positive,0.9,Caf\xe9 was great\r\n"
        "negative,,NA\r\n"
        'neutral,1,""\r\n'.encode("latin-1")
    )
    df = keras_rec.data.sentiment_tweets(path=path)
    assert df["text"].tolist() == ["Café was great", "NA", ""]
    assert df["label"].tolist() == ["positive", "negative", "neutral"]
    assert df["confidence"].iloc[0] == 0.9 and pd.isna(df["confidence"].iloc[1])


def test_local_copy_missing_label(tmp_path):
    path = tmp_path / "tweets.csv"
    path.write_text("sentiment,confidence,text\npositive,1,a\n,1,b\n")
    with pytest.raises(DataValidationError, match=r"tweets\.csv.*`sentiment`.*1 row: 2 "):
        keras_rec.data.sentiment_tweets(path=path)


def test_local_copy_bad_confidence(tmp_path):
    path = tmp_path / "tweets.csv"
    path.write_text("sentiment,confidence,text\npositive,high,a\n")
    with pytest.raises(DataValidationError, match=r"`confidence`.*non-numeric.*1 row: 1 "):
        keras_rec.data.sentiment_tweets(path=path)


def test_local_copy_wrong_header(tmp_path):
    path = tmp_path / "tweets.csv"
    path.write_text("label,text\npositive,a\n")
    with pytest.raises(
        DataValidationError,
        match=r"no column\(s\) \['sentiment', 'confidence'\].*\['label', 'text'\]",
    ):
        keras_rec.data.sentiment_tweets(path=path)
