"""Stage 8, exports: the six SavedModels of a run, staged, checked in one fresh
TensorFlow process through TF Serving's loader, then published together."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

EXPORT_NAMES = (
    "user_tower",
    "item_tower",
    "ranker",
    "retrieval",
    "recommend",
    "query_retrieval",
)
# With `--user-model sequence`: `next_items` instead of `user_tower`.
SEQUENCE_EXPORT_NAMES = tuple(
    "next_items" if name == "user_tower" else name for name in EXPORT_NAMES
)
EXAMPLE_QUERIES = (
    "a space adventure with robots and a rebellion",
    "romantic comedy set in New York",
    "scary horror movie",
)
UNKNOWN_USER_ID = 999_999


@dataclasses.dataclass
class ServedParts:
    """What the exports are made of.

    Attributes:
        retrieval: the trained `TwoTowerRetrieval` (its towers are exported),
            or `NextItemModel` (its item tower and encoder are exported).
        ranker: the trained ranker.
        recommend: the `TwoStageRecommender`, or None without a re-ranker.
        vectors: `(user vectors, item vectors)` of the towers, for the
            served retrieval tables.
        hub_dir: the sentence-transformer's TF Hub modules, or None.
    """

    retrieval: Any
    ranker: Any
    recommend: Any
    vectors: tuple
    hub_dir: str | None


@dataclasses.dataclass
class Exports:
    """The published exports.

    Attributes:
        results: `{name: ExportResult}` of each export written (or, on a
            worker, not written).
        skipped: `{name: reason}` of each export left out.
        indexes: `{name: index report}` of the exports with a top-K index.
        query_model: the in-memory `QueryRetrieval`, or None.
    """

    results: dict
    skipped: dict
    indexes: dict
    query_model: Any = None

    def paths(self) -> dict:
        return {name: result.path for name, result in self.results.items()}


def export_models(config, parts: ServedParts, inputs, report: dict, chief: bool, index) -> Exports:
    """Exports the SavedModels of `parts` into `config.output_dir`, each a new version.

    `query_retrieval` needs the sentence-transformer that embedded the
    items: it is skipped (named in `skipped` with the reason) when the item
    embeddings came from a file; `recommend` without a trained re-ranker.
    Each model is built just before its export and released after, so one
    served copy of the tables exists at a time. `report` goes into each
    export's `assets.extra/metrics.json`.
    """
    skipped = skipped_exports(config, parts)
    plan = {
        name: build
        for name, build in export_plan(config, parts, inputs, index).items()
        if name not in skipped
    }
    k = min(config.k, inputs.num_items)
    exports = _stage_and_publish(config, plan, json.dumps(report, indent=1), chief, k)
    exports.skipped = skipped
    return exports


def skipped_exports(config, parts: ServedParts) -> dict:
    """`{name: reason}` of the exports this run cannot make."""
    skipped = {}
    if is_sequence_model(parts.retrieval):
        skipped["user_tower"] = (
            "--user-model sequence has no user tower: a user is their latest items, "
            "served by user id through `retrieval` and from recent item ids through `next_items`"
        )
    else:
        skipped["next_items"] = "it serves the sequence model: train with --user-model sequence"
    if parts.recommend is None:
        skipped["recommend"] = (
            "no re-ranker was trained: it needs --validation-fraction > 0, "
            "--recommend-candidates > 0 and users with a validation item among their "
            "candidates (see the summary's validation.reranker)"
        )
    if parts.hub_dir is None or (config.interactions and config.item_embeddings):
        skipped["query_retrieval"] = (
            "the item embeddings came from --item-embeddings: the sentence-transformer "
            "that made them is unknown, so query texts cannot be embedded the same way"
        )
    return skipped


def export_plan(config, parts: ServedParts, inputs, index) -> dict:
    """`{name: build}`: each `build()` returns `(model, serving function, example inputs)`."""
    from keras_rec.recommender.data.recommender_inputs import popular_items, seen_items_by_user
    from keras_rec.recommender.serving.retrieval_serving import (
        QueryRetrieval,
        UserRetrieval,
        ranker_serving_function,
        tower_serving_function,
    )

    rows = np.arange(min(4, inputs.num_users))
    item_rows = np.arange(min(4, inputs.num_items))
    user_ids = np.append(inputs.user_ids[rows], unknown_user_id(inputs.user_ids))
    k = min(config.k, inputs.num_items)
    user_tower = getattr(parts.retrieval, "user_tower", None)
    item_tower = parts.retrieval.item_tower

    def user_retrieval():
        model = UserRetrieval(
            parts.vectors[0],
            inputs.user_ids,
            parts.vectors[1],
            inputs.item_ids,
            inputs.item_titles,
            k=k,
            **popular_items(inputs),
            seen_items=seen_items_by_user(inputs),
            index=index,
        )
        return model, model.serve, {"user_id": user_ids}

    def query_retrieval():
        model = QueryRetrieval(
            os.path.join(parts.hub_dir, "preprocess"),
            os.path.join(parts.hub_dir, "encoder"),
            inputs.item_embeddings,
            inputs.item_ids,
            inputs.item_titles,
            k=k,
            index=index,
            # The users' own texts (or their histories) stand in for query texts.
            sample_queries=inputs.user_embeddings,
        )
        return model, model.serve, {"text": np.array(EXAMPLE_QUERIES, object)}

    ranker_examples = {
        "user": inputs.user_embeddings[rows],
        "item": inputs.item_embeddings[item_rows[: len(rows)]],
    }
    return {
        "user_tower": lambda: (
            user_tower,
            tower_serving_function(user_tower),
            inputs.user_features(rows),
        ),
        "item_tower": lambda: (
            item_tower,
            tower_serving_function(item_tower),
            inputs.item_features(item_rows),
        ),
        "ranker": lambda: (parts.ranker, ranker_serving_function(parts.ranker), ranker_examples),
        "retrieval": user_retrieval,
        "recommend": lambda: (parts.recommend, parts.recommend.serve, {"user_id": user_ids}),
        "query_retrieval": query_retrieval,
        "next_items": lambda: next_items_export(parts, inputs, k, index),
    }


def next_items_export(parts: ServedParts, inputs, k: int, index):
    """`(NextItems, serving function, example inputs)` of the sequence model."""
    from keras_rec.recommender.data.recommender_inputs import popular_items, seen_items_by_user
    from keras_rec.recommender.index.item_index import user_sample
    from keras_rec.recommender.serving.next_items import NextItems

    model = NextItems(
        parts.retrieval.encoder,
        parts.vectors[1],
        inputs.item_ids,
        inputs.item_titles,
        k=k,
        **popular_items(inputs),
        index=index,
        sample_queries=user_sample(parts.vectors[0], seen_items_by_user(inputs)),
        gap_table=parts.retrieval.gap_table(),
    )
    examples = {"recent_item_ids": example_recent_ids(inputs)}
    if model.gap_vectors is not None:
        examples["recent_timestamps"] = example_recent_ids(inputs, times=True)
    return model, model.serve, examples


def is_sequence_model(model) -> bool:
    """Whether the trained user model is the sequence model (no user tower)."""
    return not hasattr(model, "user_tower")


def example_recent_ids(inputs, rows: int = 3, width: int = 5, times: bool = False) -> np.ndarray:
    """`[rows + 1, width]` recent item ids for the examples: users' latest known items,
    left-padded; the last row holds an unknown id and padding (answered by popularity).
    With `times`, the whole seconds of those interactions instead (0 where padded)."""
    from keras_rec.recommender.data.user_sequences import (
        latest_items,
        time_ordered_items,
        whole_seconds,
    )
    from keras_rec.recommender.serving.next_items import PADDING_IDS

    pairs = (*inputs.known_pairs(), inputs.known_times(), inputs.num_users)
    sequences = time_ordered_items(*pairs)
    users = np.argsort(-sequences.lengths(), kind="stable")[:rows]
    latest = latest_items(sequences, width, users)
    if times:
        seconds = time_ordered_items(*pairs, values=whole_seconds(inputs.known_times()))
        stamps = np.where(latest >= 0, latest_items(seconds, width, users), 0)
        return np.concatenate([stamps, np.zeros((1, width), np.int64)])
    ids = inputs.item_ids
    if ids.dtype == np.int64:
        padding, unknown = PADDING_IDS["int64"], unknown_user_id(ids)
        table = np.append(ids, padding)
    else:
        padding, unknown = PADDING_IDS["string"], unknown_user_id(ids)
        table = np.append(ids.astype(object), padding)
    recent = table[latest]  # row -1 (padding) reads the appended padding id
    last = np.full((1, width), padding, dtype=recent.dtype)
    last[0, -1] = unknown
    return np.concatenate([recent, last])


def _stage_and_publish(config, plan: dict, metrics_text: str, chief: bool, k: int) -> Exports:
    """Stages each export of `plan` (saved, op-checked), then checks and publishes them all.

    One fresh TensorFlow process checks every export through TF Serving's
    loader before any is published; on an error nothing is published.
    """
    from keras_rec.precision import SERVING_TOLERANCE
    from keras_rec.recommender.index.item_index import INDEX_FILE, index_metadata
    from keras_rec.serving.saved_model_export import publish_exports, stage_export
    from keras_rec.serving.versioned_dir import model_dir, next_version
    from keras_rec.training.script_arguments import config_dict

    staged, indexes, query_model = {}, {}, None
    try:
        for name, build in plan.items():
            model, signature, examples = build()
            assets_extra = {"metrics.json": metrics_text}
            metadata = {"config": config_dict(config), "k": k}
            if name in ("retrieval", "next_items") and "item_tower" in staged:
                # `keras-rec add-items` embeds new items with this tower version.
                metadata["item_tower_version"] = staged["item_tower"].version
            if hasattr(model, "encoder_assets"):
                assets_extra.update(model.encoder_assets())
            if hasattr(model, "index_json"):
                assets_extra[INDEX_FILE] = model.index_json
                metadata["index"] = index_metadata(json.loads(model.index_json))
                indexes[name] = metadata["index"]
            staged[name] = stage_export(
                model,
                config.output_dir,
                name,
                # Named before publishing: the retrieval export records it.
                version=next_version(model_dir(config.output_dir, name)) if chief else None,
                examples=examples,
                signatures={"serving_default": signature},
                target=config.target,
                chief=chief,
                # Only query_retrieval runs the TF Hub encoder.
                atol=SERVING_TOLERANCE[
                    config.encoder_precision if name == "query_retrieval" else "float32"
                ],
                assets_extra=assets_extra,
                metadata=metadata,
            )
            if name == "query_retrieval":
                query_model = model
            del model, signature
        results = dict(zip(staged, publish_exports(list(staged.values()))))
    except BaseException:
        for item in staged.values():
            item.discard()
        raise
    for name, result in results.items():
        logger.info("Exported %s to %s", name, result.path)
    return Exports(results, {}, indexes, query_model)


def unknown_user_id(user_ids: np.ndarray):
    """An id absent from `user_ids` (same type), for the served fallback's example."""
    if user_ids.dtype == np.int64:
        return (
            UNKNOWN_USER_ID if UNKNOWN_USER_ID not in set(user_ids.tolist()) else user_ids.max() + 1
        )
    taken = set(user_ids.tolist())
    candidate = "unknown-user"
    while candidate in taken:
        candidate += "-"
    return candidate
