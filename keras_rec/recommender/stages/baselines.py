"""Stage 5, baselines: popularity, and the item-item baselines (EASE, item-kNN) with
their setting chosen on validation and fit on the towers' training pairs.

A new item-item baseline is one `ItemItemBaseline` line in `ITEM_ITEM_BASELINES`:
its tuning function, its weights and the name of its setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from keras_rec.recommender.baselines.baseline_tuning import tune_ease, tune_item_knn
from keras_rec.recommender.baselines.item_item_baselines import ease_weights, item_knn_weights


@dataclasses.dataclass(frozen=True)
class ItemItemBaseline:
    """An item-item baseline of the report.

    Attributes:
        name: its key in the report and the summary.
        curve: its name in the recall@K plot.
        setting: the name of the hyperparameter chosen on validation.
        tune: `inputs -> (best value, {value: validation metrics})`.
        weights: `(users x items matrix, value) -> item x item weights`.
    """

    name: str
    curve: str
    setting: str
    tune: Callable
    weights: Callable


ITEM_ITEM_BASELINES = (
    ItemItemBaseline("ease", "EASE", "l2", tune_ease, ease_weights),
    ItemItemBaseline("item_knn", "item-kNN", "neighbors", tune_item_knn, item_knn_weights),
)
OFF_REASON = "ease_baseline is off"


def tune_baselines(inputs, enabled: bool) -> dict:
    """`{name: {"chosen": {setting: value}, "validation_ndcg_at_10": {...}}}` per baseline.

    Chosen on the validation pairs of `inputs`; `{"skipped": reason}` for a
    catalogue over the item-item limit. Empty when `enabled` is False.
    """
    from keras_rec.recommender.baselines.baseline_tuning import validation_choice
    from keras_rec.recommender.baselines.item_item_baselines import MAX_ITEM_ITEM_ITEMS

    if not enabled:
        return {}
    if inputs.num_items > MAX_ITEM_ITEM_ITEMS:
        return {
            baseline.name: {
                "skipped": f"{inputs.num_items:,} items: {baseline.curve}'s dense item x item "
                f"solve is limited to {MAX_ITEM_ITEM_ITEMS:,}"
            }
            for baseline in ITEM_ITEM_BASELINES
        }
    tuned = {}
    for baseline in ITEM_ITEM_BASELINES:
        value, results = baseline.tune(inputs)
        tuned[baseline.name] = {
            "chosen": {baseline.setting: value},
            "validation_ndcg_at_10": validation_choice(results),
        }
    return tuned


def evaluate_baselines(inputs, tuned: dict, enabled: bool, users, curve_ks) -> dict:
    """Each item-item baseline's test figures (with `recall_curve`), fit on training.

    `{name: {setting: value, **figures}}`, or `{name: {"skipped": reason}}`
    when there is none: turned off (`enabled` False), no validation split
    to choose its setting on (`tuned` empty), too many items.
    """
    from keras_rec.recommender.baselines.baseline_tuning import training_matrix
    from keras_rec.recommender.baselines.item_item_baselines import item_item_scores
    from keras_rec.recommender.evaluation.retrieval_evaluation import evaluate_retrieval

    figures, matrix = {}, None
    for baseline in ITEM_ITEM_BASELINES:
        chosen = tuned.get(baseline.name)
        if not enabled:
            figures[baseline.name] = {"skipped": OFF_REASON}
        elif chosen is None:
            figures[baseline.name] = {
                "skipped": f"no validation split to choose {baseline.curve}'s {baseline.setting} on"
            }
        elif "skipped" in chosen:
            figures[baseline.name] = dict(chosen)
        else:
            value = chosen["chosen"][baseline.setting]
            matrix = training_matrix(inputs) if matrix is None else matrix
            scores = item_item_scores(matrix, baseline.weights(matrix, value))
            figures[baseline.name] = {
                baseline.setting: value,
                **evaluate_retrieval(scores, inputs, curve_ks, users),
            }
    return figures


# `{report key: recall@K plot name}` of every baseline, popularity first.
CURVE_NAMES = {"popularity": "popularity", **{b.name: b.curve for b in ITEM_ITEM_BASELINES}}
BASELINE_NAMES = tuple(CURVE_NAMES)
