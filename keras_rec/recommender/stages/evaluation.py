"""Stage 7, evaluation: the towers and the two-stage model on the test split, known items
removed per user; and the exported `retrieval` as served, when its index is approximate."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Evaluation:
    """The models' test figures.

    Attributes:
        metrics: the towers' figures (`retrieval` in the report), with the
            two-stage model's under `two_stage`.
        curves: `{"two-tower", "two-stage"}` Recall@K curves.
    """

    metrics: dict
    curves: dict


def evaluate_models(inputs, vectors, recommend, users: np.ndarray, curve_ks) -> Evaluation:
    """The towers' (`vectors`) and, when there is one, the two-stage model's figures."""
    from keras_rec.recommender.evaluation.retrieval_evaluation import (
        evaluate_retrieval,
        vector_scores,
    )
    from keras_rec.recommender.serving.two_stage import two_stage_scores

    metrics = evaluate_retrieval(vector_scores(*vectors), inputs, curve_ks, users)
    curves = {"two-tower": metrics.pop("recall_curve")}
    if recommend is not None:
        two_stage = evaluate_retrieval(two_stage_scores(recommend), inputs, curve_ks, users)
        curves["two-stage"] = two_stage.pop("recall_curve")
        # TFRS's top-100 accuracy ranks known items too; this model never does.
        del two_stage["top100_accuracy"]
        metrics["two_stage"] = two_stage
    return Evaluation(metrics, curves)


def evaluate_served_index(exports, inputs, users: np.ndarray, exact_recall: float):
    """Recall@10 of the exported `retrieval` as served, when its index is approximate (else None).

    Compared with the exact figure (`exact_recall`) of the same towers on
    the same users.
    """
    from keras_rec.recommender.evaluation.served_evaluation import evaluate_served_retrieval

    result = exports.results.get("retrieval")
    index = exports.indexes.get("retrieval", {}).get("index")
    if result is None or not result.written or index != "ivf":
        return None
    served = evaluate_served_retrieval(result.path, inputs, users)
    served["exact_user_recall_at_10"] = exact_recall
    served["recall_at_10_gap"] = round(exact_recall - served["user_recall_at_10"], 4)
    return served
