from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras_rec.data


def test_public_api():
    assert sorted(keras_rec.data.__all__) == sorted(
        [
            "MovieLens100K", "movielens_100k", "sentiment_tweets", "item_text",
            "movielens_item_texts", "movielens_item_titles", "movielens_user_texts", "read_table",
            "read_text_labels", "read_interactions", "DataValidationError",
        ]
    )  # fmt: skip
    for name in keras_rec.data.__all__:
        assert getattr(keras_rec.data, name).__doc__, name
    assert issubclass(keras_rec.data.DataValidationError, ValueError)


def test_import_pulls_in_no_tensorflow_or_torch():
    code = (
        "import sys, keras_rec.data; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'torch', 'keras')]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
