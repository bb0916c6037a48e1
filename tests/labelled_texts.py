"""A small labelled text file for the classifier scripts: words give the label away."""

from __future__ import annotations

import random

CLASS_WORDS = {
    "cinema": ["the", "movie", "story", "a", "b", "c"],
    "space": ["toy", "star", "wars", "x", "y", "z"],
    "other": ["of", "1", "2", "3", "!", "?"],
}


def labelled_rows(per_class=40, seed=0):
    """(text, label) rows whose words give the label away: learnable by a tiny encoder."""
    rng = random.Random(seed)
    rows = []
    for label, words in CLASS_WORDS.items():
        seen = set()
        while len(seen) < per_class:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 7)))
            if text not in seen:
                seen.add(text)
                rows.append((text, label))
    rng.shuffle(rows)
    return rows


def write_labelled_csv_file(path, per_class: int = 40) -> str:
    """Writes `labelled_rows(per_class)` as a CSV (columns body, topic); returns its path."""
    import pandas as pd

    pd.DataFrame(labelled_rows(per_class=per_class), columns=["body", "topic"]).to_csv(
        path, index=False
    )
    return str(path)
