"""`evaluate_served_retrieval`: Recall@K of an exported `retrieval` model, as TF Serving answers."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_rec.recommender.data.recommender_inputs import RecommenderInputs
from keras_rec.recommender.evaluation.retrieval_evaluation import evaluate_retrieval


def evaluate_served_retrieval(
    saved_model_dir: str, inputs: RecommenderInputs, users: np.ndarray | None = None
) -> dict[str, Any]:
    """`user_recall_at_10` / `user_ndcg_at_10` of the items the SavedModel returns.

    The SavedModel (`UserRetrieval`'s `serving_default`: `user_id` ->
    `item_ids [B, K]`) is loaded in a fresh TensorFlow-only process through
    TF Serving's Session loader and asked for every evaluated user's top K;
    those lists are scored as `evaluate_retrieval` scores the in-memory
    model, so an approximate index's loss is measured where it is served.

    Args:
        saved_model_dir: str. An exported `retrieval` version.
        inputs: the `RecommenderInputs` it was trained on (ids, test pairs).
        users: user rows to evaluate (default: every user with test items).

    Returns:
        `{"user_recall_at_10", "user_ndcg_at_10", "evaluated_users", "k"}`
        (the first 10 of the K served; K must be >= 10).
    """
    from keras_rec.serving.fresh_process import answer_in_fresh_process

    if users is None:
        users = np.unique(inputs.test_users)
    users = np.asarray(users, np.int64)
    answered = answer_in_fresh_process(
        saved_model_dir,
        {"users": ("serving_default", {"user_id": inputs.user_ids[users]})},
        ["session"],
    )
    if answered["errors"].get("session"):
        raise RuntimeError(f"The served retrieval failed: {answered['errors']['session']}")
    served_ids = answered["answers"]["session"]["users"]["item_ids"]
    k = served_ids.shape[1]
    if k < 10:
        raise ValueError(f"The served retrieval returns {k} items; Recall@10 needs 10.")
    row_of = {_key(item_id): row for row, item_id in enumerate(inputs.item_ids.tolist())}
    ranked = np.vectorize(lambda item_id: row_of[_key(item_id)], otypes=[np.int64])(served_ids)
    position = {int(user): index for index, user in enumerate(users)}
    places = np.arange(k, 0, -1, dtype=np.float32)

    def scores(rows):
        block = np.full((len(rows), inputs.num_items), -np.inf, np.float32)
        for index, row in enumerate(rows):
            block[index, ranked[position[int(row)]]] = places
        return block

    metrics = evaluate_retrieval(scores, inputs, users=users)
    keys = ("user_recall_at_10", "user_ndcg_at_10", "evaluated_users")
    return {**{key: metrics[key] for key in keys}, "k": k}


def _key(item_id) -> Any:
    return item_id.decode() if isinstance(item_id, bytes) else item_id
