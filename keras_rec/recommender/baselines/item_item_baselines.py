"""Item-item baselines: EASE and item-kNN, scored like every retrieval model.

Both learn an item x item weight matrix `W` from the binary user x item
training matrix `X`; a user's scores are their row of `X @ W` (the sum of
the weights from each item they interacted with). `W` is dense `[N, N]`, so
these baselines are for catalogues up to `MAX_ITEM_ITEM_ITEMS` items.
"""

from __future__ import annotations

import numpy as np

# Dense item x item weights: N^2 float64 while solving (3.2 GB at 20k items).
MAX_ITEM_ITEM_ITEMS = 20_000


def interaction_matrix(users, items, num_users: int, num_items: int):
    """Binary `scipy.sparse.csr_matrix` `[num_users, num_items]` (repeated pairs count once)."""
    from scipy import sparse

    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    matrix = sparse.csr_matrix(
        (np.ones(len(users), np.float32), (users, items)), shape=(num_users, num_items)
    )
    matrix.data[:] = 1.0
    return matrix


def ease_weights(matrix, l2: float, side_gram: np.ndarray | None = None) -> np.ndarray:
    """EASE (Steck, 2019): the item x item ridge regression with a zero diagonal, closed form.

    `W` minimizes `||X - X W||^2 + l2 ||W||^2` subject to `diag(W) = 0`:
    with `P = (X^T X + l2 I)^-1`, `W = -P / diag(P)` column-wise, diagonal 0.
    With `side_gram` (`text_gram`), `X^T X + side_gram` is the Gram matrix:
    the regression also reconstructs the items' side-information rows (as
    in Jeunen et al., 2020), so items similar in text share weights.

    Args:
        matrix: binary sparse `[U, N]` (`interaction_matrix`).
        l2: float > 0. The ridge penalty (tune it on a validation split).
        side_gram: float `[N, N]` or None.

    Returns:
        float32 `[N, N]`.
    """
    if not l2 > 0:
        raise ValueError(f"`l2` must be > 0. Received: l2={l2!r}")
    gram = _gram(matrix)
    if side_gram is not None:
        if np.shape(side_gram) != gram.shape:
            raise ValueError(
                f"`side_gram` must have shape {gram.shape}. Received: {np.shape(side_gram)}"
            )
        gram += side_gram
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = precision / -np.diag(precision)[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights.astype(np.float32)


def text_gram(item_embeddings: np.ndarray, weight: float, power: int = 3) -> np.ndarray:
    """`weight * max(cos, 0) ** power` of every pair of item text embeddings, `[N, N]`.

    The side-information Gram matrix for `ease_weights`: the power keeps
    only strong text similarities (sentence embeddings of short texts sit
    at cosine 0.2-0.5 from almost everything).
    """
    texts = np.asarray(item_embeddings, np.float64)
    texts = texts / np.maximum(np.linalg.norm(texts, axis=1, keepdims=True), 1e-12)
    return weight * np.maximum(texts @ texts.T, 0.0) ** power


def item_knn_weights(matrix, neighbors: int | None = None) -> np.ndarray:
    """Item-kNN: cosine similarity of item columns, each item keeping its nearest neighbors.

    `W[i, j]` is the cosine between the user sets of items `i` and `j` when
    `i` is one of the `neighbors` most similar items to `j`, else 0; the
    diagonal is 0. A user's score for `j` sums the similarities of the
    neighbors of `j` they interacted with.

    Args:
        matrix: binary sparse `[U, N]`.
        neighbors: int or None. Neighbors kept per item (None: all).

    Returns:
        float32 `[N, N]`.
    """
    if neighbors is not None and (isinstance(neighbors, bool) or int(neighbors) < 1):
        raise ValueError(f"`neighbors` must be a positive integer. Received: {neighbors!r}")
    gram = _gram(matrix)
    norms = np.sqrt(np.diag(gram))
    safe = np.where(norms > 0, norms, 1.0)
    similarity = gram / safe[:, None] / safe[None, :]
    similarity[np.diag_indices_from(similarity)] = 0.0
    count = similarity.shape[0]
    if neighbors is not None and neighbors < count:
        # Per column j, zero all but the `neighbors` largest similarities.
        drop = np.argpartition(-similarity, neighbors - 1, axis=0)[neighbors:]
        np.put_along_axis(similarity, drop, 0.0, axis=0)
    return similarity.astype(np.float32)


def item_item_scores(matrix, weights: np.ndarray):
    """A score function for `evaluate_retrieval`: user rows -> `X[rows] @ W` `[b, N]`."""
    matrix = matrix.tocsr()
    weights = np.asarray(weights, np.float32)
    return lambda rows: np.asarray(matrix[np.asarray(rows)] @ weights, np.float32)


def top_neighbors(weights: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's `count` largest outgoing weights: `(item rows [N, M], weights [N, M])`.

    Row `h` lists the items `c` with the largest `weights[h, c]` (what
    having `h` in a history adds to `c`'s score), best first; a sparse
    table a served graph can hold where `[N, N]` would not fit.
    """
    weights = np.asarray(weights, np.float32)
    count = min(int(count), weights.shape[1])
    part = np.argpartition(-weights, count - 1, axis=1)[:, :count]
    values = np.take_along_axis(weights, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return (
        np.take_along_axis(part, order, axis=1).astype(np.int64),
        np.take_along_axis(values, order, axis=1),
    )


def _gram(matrix) -> np.ndarray:
    count = matrix.shape[1]
    if count > MAX_ITEM_ITEM_ITEMS:
        raise ValueError(
            f"Item-item baselines hold a dense {count} x {count} matrix; at most "
            f"{MAX_ITEM_ITEM_ITEMS} items are supported. Received: {count} items."
        )
    return np.asarray((matrix.T @ matrix).toarray(), np.float64)
