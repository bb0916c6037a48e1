"""Metric keys renamed because they were ambiguous, and the old keys kept for one release.

The printed summaries (and `metrics.json`) carry both names until 0.2.0;
README, "Metric keys", lists every key and what it measures.
"""

from __future__ import annotations

from typing import Any

# New key -> the old key it replaces, per summary section ("" = top level).
RENAMED_KEYS = {
    # train-classifier: `accuracy` is also the per-epoch training accuracy in `history`.
    "": {"test_accuracy": "accuracy", "test_macro_f1": "macro_f1"},
    # train-recommender's `ranker`: it scores positives and sampled negatives, so
    # its count is not the split's `test_pairs` (positives only).
    "ranker": {"test_scored_pairs": "test_pairs"},
}
REMOVED_IN = "0.2.0"


def with_old_keys(metrics: dict[str, Any], section: str = "") -> dict[str, Any]:
    """`metrics` with each renamed key's old name added beside it (same value)."""
    renamed = RENAMED_KEYS.get(section, {})
    return {**metrics, **{old: metrics[new] for new, old in renamed.items() if new in metrics}}
