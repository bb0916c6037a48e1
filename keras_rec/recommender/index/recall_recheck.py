"""`recheck_recall`: does an IVF index's recorded recall still hold after items were added?"""

from __future__ import annotations

from typing import Any

import numpy as np

# Growth of the catalogue, since its recall was last measured, from which
# `add_items` measures it again (the new items shift what the users' top K holds).
RECHECK_GROWTH = 0.10


def measured_recall(layer, item_vectors, queries, exclude=None) -> float:
    """Recall@k of `layer` at its current `nprobe` against exact, ties counted."""
    from keras_rec.recommender.index.item_index import exact_top_k, overlap_recall, searcher

    exact = exact_top_k(item_vectors, queries, layer.k, exclude)
    return round(overlap_recall(searcher(layer)(queries, exclude), exact, item_vectors, queries), 5)


def recheck_recall(recorded: dict[str, Any], layer, item_vectors, sample_queries) -> dict[str, Any]:
    """The recall figures of an extended IVF index, measured again when it grew enough.

    Args:
        recorded: the source version's index report (`retrieval_index.json`):
            `index`, `items`, `target_recall`, `recall`, and
            `recall_measured_at_items` once a recheck happened.
        layer: the extended index (same `nprobe`).
        item_vectors: float `[N, D]`, the rows `layer` indexes.
        sample_queries: a callable returning `(queries, exclude[, description])`,
            the queries the recorded recall was measured on (`user_sample`).

    Returns:
        `{}` for an exact index or a report without a recall; else
        `target_recall`, `recall`, `recall_measured_at_items`, `growth` since
        then, `recall_rechecked` (bool) and, when rechecked,
        `recall_before` and `recall_holds` (recall >= target).
    """
    if recorded.get("index") != "ivf" or "recall" not in recorded:
        return {}
    measured_at = int(recorded.get("recall_measured_at_items", recorded["items"]))
    growth = len(item_vectors) / measured_at - 1.0
    figures = {
        "target_recall": recorded["target_recall"],
        "recall": recorded["recall"],
        "recall_measured_at_items": measured_at,
        "growth": round(growth, 4),
        "recall_rechecked": False,
    }
    if growth < RECHECK_GROWTH:
        return figures
    queries, exclude, *_ = sample_queries()
    recall = measured_recall(layer, np.asarray(item_vectors, np.float32), queries, exclude)
    return {
        **figures,
        "recall": recall,
        "recall_before": recorded["recall"],
        "recall_measured_at_items": len(item_vectors),
        "recall_rechecked": True,
        "recall_holds": recall >= recorded["target_recall"],
    }


def recheck_line(figures: dict[str, Any]) -> str | None:
    """One line for the user about `recheck_recall`'s figures (None when there are none)."""
    if "recall_not_rechecked_because" in figures:
        return f"IVF recall not re-measured: {figures['recall_not_rechecked_because']}."
    if "recall_rechecked" not in figures:  # an exact index: nothing to measure
        return None
    grew = f"the catalogue grew {figures['growth']:.0%} since recall was measured"
    if not figures["recall_rechecked"]:
        return (
            f"IVF recall: {grew} (under {RECHECK_GROWTH:.0%}); the recorded recall "
            f"{figures['recall']:.4f} (target {figures['target_recall']}) was kept, "
            "not re-measured."
        )
    verdict = (
        "still holds"
        if figures["recall_holds"]
        else "no longer holds: re-export from training (`train-recommender`) to re-partition "
        "and re-tune nprobe"
    )
    return (
        f"IVF recall: {grew}; re-measured on the same users: {figures['recall']:.4f} "
        f"(was {figures['recall_before']:.4f}, target {figures['target_recall']}): {verdict}."
    )
