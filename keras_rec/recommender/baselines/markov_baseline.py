"""A Markov next-item baseline: which items follow which, scored from a user's latest items.

The item x item transition weights count how often item `b` follows item
`a` within `window` steps of the same user's time-ordered history,
normalized like a cosine (`count(a -> b) / sqrt(count(a) count(b))`). A
user's score for `b` sums the weights from their last `history` items, the
latest weighted 1 and each earlier one `decay` times the one after it.
Sparse throughout: memory grows with the transitions, not items squared.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from keras_rec.recommender.data.user_item_lists import UserItemLists

WINDOW_GRID = (1, 2, 5, 10)
HISTORY_GRID = (1, 3, 10, 30)
DECAY_GRID = (0.6, 0.8, 0.9)


@dataclasses.dataclass(frozen=True)
class MarkovSettings:
    """How far transitions reach (`window`), how many latest items score (`history`), `decay`."""

    window: int = 5
    history: int = 10
    decay: float = 0.8
    directed: bool = True


def transition_weights(sequences: UserItemLists, num_items: int, window: int, directed: bool):
    """`scipy.sparse.csr_matrix` `[N, N]` of cosine-normalized transitions within `window` steps.

    Args:
        sequences: each user's item rows in time order.
        num_items: int.
        window: int >= 1. Item `b` at most this many steps after `a` counts.
        directed: bool. Only `a -> b` (what follows), or both directions.
    """
    from scipy import sparse

    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"`window` must be a positive integer. Received: window={window!r}")
    items = sequences.items
    owner = np.repeat(np.arange(len(sequences)), sequences.lengths())
    sources, targets = [], []
    for step in range(1, window + 1):
        same_user = owner[step:] == owner[:-step]
        sources.append(items[:-step][same_user])
        targets.append(items[step:][same_user])
    sources = np.concatenate(sources) if sources else np.zeros(0, np.int64)
    targets = np.concatenate(targets) if targets else np.zeros(0, np.int64)
    if not directed:
        sources, targets = np.concatenate([sources, targets]), np.concatenate([targets, sources])
    counts = sparse.csr_matrix(
        (np.ones(len(sources), np.float32), (sources, targets)), shape=(num_items, num_items)
    )
    counts.sum_duplicates()
    occurrences = np.bincount(items, minlength=num_items).astype(np.float32)
    scale = 1.0 / np.sqrt(np.maximum(occurrences, 1.0))
    weights = sparse.diags(scale) @ counts @ sparse.diags(scale)
    weights.setdiag(0.0)
    weights.eliminate_zeros()
    return weights.tocsr()


def latest_item_weights(sequences: UserItemLists, num_items: int, history: int, decay: float):
    """`scipy.sparse.csr_matrix` `[U, N]`: `decay ** t` on each user's `t`-th latest item."""
    from scipy import sparse

    lengths = sequences.lengths()
    owner = np.repeat(np.arange(len(sequences)), lengths)
    from_end = sequences.splits[owner + 1] - np.arange(len(owner)) - 1  # 0 = latest
    keep = from_end < history
    matrix = sparse.csr_matrix(
        (
            np.power(np.float32(decay), from_end[keep]).astype(np.float32),
            (owner[keep], sequences.items[keep]),
        ),
        shape=(len(sequences), num_items),
    )
    matrix.sum_duplicates()
    return matrix


def markov_scores(sequences: UserItemLists, num_items: int, settings: MarkovSettings):
    """A score function for `evaluate_retrieval`: user rows -> `[b, N]` Markov scores."""
    weights = transition_weights(sequences, num_items, settings.window, settings.directed)
    latest = latest_item_weights(sequences, num_items, settings.history, settings.decay)
    return _score_function(latest, weights)


def _score_function(latest, weights):
    def scores(rows):
        return np.asarray((latest[np.asarray(rows)] @ weights).todense(), np.float32)

    return scores


def tune_markov(sequences: UserItemLists, evaluate, num_items: int, grid=None):
    """`(best MarkovSettings, {settings: metrics})`, each scored by `evaluate(score function)`.

    Args:
        sequences: the training items in time order (validation excluded).
        evaluate: callable, score function -> metrics dict with `"user_ndcg_at_10"`
            (e.g. `evaluate_retrieval` on the validation view).
        num_items: int.
        grid: `MarkovSettings` to try (default: `WINDOW_GRID` x `HISTORY_GRID` x
            `DECAY_GRID` x directed or not).
    """
    if grid is None:
        grid = [
            MarkovSettings(w, h, d, directed)
            for w, h, d, directed in itertools.product(
                WINDOW_GRID, HISTORY_GRID, DECAY_GRID, (True, False)
            )
        ]
    results = {}
    transitions = {}
    for settings in grid:
        key = (settings.window, settings.directed)
        if key not in transitions:
            transitions[key] = transition_weights(sequences, num_items, *key)
        latest = latest_item_weights(sequences, num_items, settings.history, settings.decay)
        results[settings] = evaluate(_score_function(latest, transitions[key]))
    best = max(results, key=lambda s: results[s]["user_ndcg_at_10"])
    return best, results
