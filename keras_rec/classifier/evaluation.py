"""Evaluation of a classifier on held-out texts: metrics and a confusion matrix plot."""

from __future__ import annotations

from typing import Any

import numpy as np


def evaluation_report(
    labels: np.ndarray, probabilities: np.ndarray, vocabulary: list[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

    Args:
        labels: int array `[N]` of true class ids.
        probabilities: float array `[N, C]`.
        vocabulary: the C class names.

    Returns:
        A JSON-serializable dict: `accuracy`, `macro_f1`, `per_class`
        (`{name: {precision, recall, f1, support}}`), `confusion_matrix`
        (rows: true class, columns: predicted), `labels`, `examples`.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = np.asarray(labels)
    predicted = np.argmax(probabilities, axis=-1)
    classes = list(range(len(vocabulary)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    return {
        "examples": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(vocabulary)
        },
        "confusion_matrix": confusion_matrix(labels, predicted, labels=classes).tolist(),
        "labels": list(vocabulary),
    }


def plot_confusion_matrix(report: dict[str, Any], path: str, title: str = "") -> str:
    """Writes the report's confusion matrix (counts, row-normalized colors) as a PNG.

    Uses matplotlib's object API (no pyplot), so it leaves a notebook's
    backend alone.
    """
    from matplotlib.figure import Figure

    matrix = np.asarray(report["confusion_matrix"], dtype=float)
    names = report["labels"]
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(names) + 2.5)
    figure = Figure(figsize=(size, size))
    axes = figure.subplots()
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            axes.text(
                j,
                i,
                f"{int(matrix[i, j])}",
                ha="center",
                va="center",
                color="white" if shares[i, j] > 0.5 else "black",
            )
    axes.set_title(title or f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
