"""Plots the training scripts write (and log to MLflow): training curves, recall@K curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def plot_training_curves(history: Mapping[str, Sequence[float]], path: str, title: str = "") -> str:
    """Writes one panel per metric of a Keras `History.history` (train and `val_`) as a PNG.

    Uses matplotlib's object API (no pyplot), so it leaves a notebook's
    backend alone. Returns `path`.
    """
    from matplotlib.figure import Figure

    names = [k for k in history if not k.startswith("val_")] or list(history)
    figure = Figure(figsize=(4.5 * max(len(names), 1), 3.5))
    panels = figure.subplots(1, max(len(names), 1), squeeze=False)[0]
    for axes, name in zip(panels, names):
        for key, style in ((name, "-o"), (f"val_{name}", "--s")):
            if key in history:
                values = list(history[key])
                axes.plot(range(1, len(values) + 1), values, style, label=key, markersize=3)
        axes.set_xlabel("epoch")
        axes.set_title(name)
        axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def plot_recall_curves(
    curves: Mapping[str, Mapping[int, float]],
    path: str,
    title: str = "Recall@K, training items removed",
) -> str:
    """Writes Recall@K against K for several models (`{name: {k: recall}}`) as a PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    for name, points in curves.items():
        ks = sorted(points)
        axes.plot(ks, [points[k] for k in ks], "-o", label=name, markersize=3)
    axes.set_xscale("log")
    axes.set_xlabel("K")
    axes.set_ylabel("recall")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
