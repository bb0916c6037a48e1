"""Stage 4, two-stage: the item-item feature and the re-ranker chosen and trained on
validation, and the `TwoStageRecommender` (retrieval's candidates, re-ranked) they make."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class StageTwo:
    """The second stage trained on validation.

    Attributes:
        reranker: the trained re-ranker, or None when there is none (the
            reason is in `report["reranker"]["skipped"]`).
        item_item: `{"l2", "text_weight"}` of the EASE item-item feature
            (empty without it).
        report: the validation report's `item_item` and `reranker` entries.
    """

    reranker: Any
    item_item: dict
    report: dict


def fit_stage_two(config, inputs, vectors, strategy, index) -> StageTwo:
    """The re-ranker, trained on the towers' candidates for the validation pairs.

    The EASE item-item feature (`config.item_neighbors`, up to 20,000 items)
    has its `l2` and text weight chosen on validation first; the history is
    the training pairs only. The report holds both stages' figures on the
    re-ranker's held-out validation users.
    """
    from keras_rec.recommender.baselines.baseline_tuning import tune_text_ease, validation_choice
    from keras_rec.recommender.baselines.item_item_baselines import MAX_ITEM_ITEM_ITEMS
    from keras_rec.recommender.data.recommender_inputs import validation_view
    from keras_rec.recommender.data.user_item_lists import UserItemLists
    from keras_rec.recommender.stages.reranker_training import TooFewTargets, fit_reranker

    view = validation_view(inputs)
    item_item, report = {}, {}
    if config.item_neighbors and inputs.num_items <= MAX_ITEM_ITEM_ITEMS:
        (l2, text_weight), results = tune_text_ease(inputs)
        item_item = {"l2": l2, "text_weight": text_weight}
        report["item_item"] = {
            "chosen": item_item,
            "validation_ndcg_at_10": validation_choice(results),
        }
    neighbors = item_neighbors(view, item_item, config.item_neighbors)
    settings = dict(k=config.k, candidates=config.recommend_candidates, index=index)
    candidates = two_stage_model(view, *vectors, None, neighbors, **settings)
    try:
        reranker, held_users, reranker_report = fit_reranker(
            candidates,
            UserItemLists(inputs.val_users, inputs.val_items, inputs.num_users),
            config.reranker_epochs,
            config.learning_rate,
            config.seed,
            strategy,
        )
    except TooFewTargets as e:
        logger.warning("No two-stage model: %s", e)
        return StageTwo(None, item_item, {**report, "reranker": {"skipped": str(e)}})
    scored = two_stage_model(view, *vectors, reranker, neighbors, **settings)
    report["reranker"] = {**reranker_report, **_holdout_figures(view, vectors, scored, held_users)}
    return StageTwo(reranker, item_item, report)


def _holdout_figures(view, vectors, scored, users) -> dict:
    """Both stages' figures on the re-ranker's held-out validation users."""
    from keras_rec.recommender.evaluation.retrieval_evaluation import (
        evaluate_retrieval,
        vector_scores,
    )
    from keras_rec.recommender.serving.two_stage import two_stage_scores

    return {
        "holdout_retrieval": evaluate_retrieval(vector_scores(*vectors), view, users=users),
        "holdout_two_stage": evaluate_retrieval(two_stage_scores(scored), view, users=users),
    }


def item_neighbors(inputs, item_item: dict, count: int) -> tuple:
    """`(item rows, weights)` of EASE (with item texts) on the known pairs, or `()` without it."""
    from keras_rec.recommender.baselines.item_item_baselines import (
        ease_weights,
        interaction_matrix,
        text_gram,
        top_neighbors,
    )

    if item_item.get("l2") is None:
        return ()
    matrix = interaction_matrix(*inputs.known_pairs(), inputs.num_users, inputs.num_items)
    side = None
    if item_item.get("text_weight"):
        side = text_gram(inputs.item_embeddings, item_item["text_weight"])
    return top_neighbors(ease_weights(matrix, item_item["l2"], side), count)


def two_stage_model(
    inputs, user_vectors, item_vectors, reranker, neighbors, k: int, candidates: int, index
):
    """The `TwoStageRecommender` of `inputs` (its known pairs are the history).

    `reranker` None scores the candidates by retrieval alone (the
    re-ranker's training candidates); `neighbors` are `item_neighbors`'.
    """
    from keras_rec.recommender.data.recommender_inputs import known_popularity, seen_items_by_user
    from keras_rec.recommender.serving.two_stage import TwoStageRecommender

    counts, popular = known_popularity(inputs)
    candidates = min(candidates, inputs.num_items)
    return TwoStageRecommender(
        user_vectors,
        inputs.user_ids,
        item_vectors,
        inputs.item_embeddings,
        inputs.item_ids,
        inputs.item_titles,
        counts,
        seen_items_by_user(inputs),
        reranker,
        min(k, candidates),
        candidates,
        popular,
        counts[popular] / max(counts.sum(), 1),
        *neighbors,
        index=index,
    )


def recommend_model(config, inputs, vectors, stage_two: StageTwo, index):
    """The two-stage model evaluated on the test split and exported as `recommend`: the
    known pairs (training and validation) are its history, the item-item feature refit
    on them."""
    neighbors = item_neighbors(inputs, stage_two.item_item, config.item_neighbors)
    return two_stage_model(
        inputs,
        *vectors,
        stage_two.reranker,
        neighbors,
        k=config.k,
        candidates=config.recommend_candidates,
        index=index,
    )
