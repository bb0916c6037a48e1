"""Stage 1, inputs: MovieLens or the user's own files -> embedded `RecommenderInputs`."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class PreparedInputs:
    """What the inputs stage hands on.

    Attributes:
        inputs: the `RecommenderInputs` (tables, embeddings, split pairs).
        data_report: the split's summary for the report (`split`).
        hub_dir: the sentence-transformer's TF Hub modules (`preprocess/`,
            `encoder/`), or None when nothing had to be embedded.
        embed: the text embedding function used (with `encoded` / `cached`
            counts when it went through the cache), or None.
        seconds: how long reading and embedding took.
    """

    inputs: Any
    data_report: dict
    hub_dir: str | None
    embed: Callable | None
    seconds: float

    @property
    def sentence_encoder(self):
        """The `SentenceEncoder` that embedded the texts, or None."""
        return getattr(self.embed, "sentence_encoder", None)

    def cache_counts(self) -> dict | None:
        """`{"encoded", "cached"}` texts of the embedding cache, or None without it."""
        if not hasattr(self.embed, "encoded"):
            return None
        return {"encoded": self.embed.encoded, "cached": self.embed.cached}


def prepare_inputs(config) -> PreparedInputs:
    """The inputs of a run: the user's files with `config.interactions`, else MovieLens."""
    start = time.perf_counter()
    if config.interactions:
        inputs, data_report, hub_dir, embed = prepare_user_inputs(config)
    else:
        split, inputs, hub_dir, embed = prepare_movielens_inputs(config)
        data_report = {**split.summary(), "cold_item_ids": split.cold_item_ids.tolist()}
    return PreparedInputs(inputs, data_report, hub_dir, embed, time.perf_counter() - start)


def prepare_movielens_inputs(config):
    """`(split, RecommenderInputs, hub_dir, embed)`: the split, embedded through the cache.

    `hub_dir` holds the TF Hub preprocessor and encoder of the
    sentence-transformer (exported once); `embed` is the text embedding
    function used (with `encoded` / `cached` counts when it uses the cache).
    """
    from keras_rec.recommender.data.movielens_split import movielens_split
    from keras_rec.recommender.data.recommender_inputs import build_inputs

    split, items, users = movielens_split(
        config.data,
        config.max_ratings,
        config.cold_start_fraction,
        config.validation_fraction,
        config.seed,
        split=config.split,
        leave_last=config.leave_last,
        test_fraction=config.test_fraction,
    )
    logger.info("Split %s", split.summary())
    hub_dir, embed = _text_embedder(config)
    return split, build_inputs(split, items, users, embed), hub_dir, embed


def prepare_user_inputs(config):
    """`(RecommenderInputs, data report, hub_dir or None, embed or None)` of the user's files.

    The sentence-transformer (and its TF Hub export, for `query_retrieval`)
    is loaded only when item or user texts must be encoded; with
    `--item-embeddings` (and `--user-embeddings` or no users) nothing is.
    """
    from keras_rec.recommender.data.user_data import load_user_inputs

    loaded = {}

    def embed():
        if "embed" not in loaded:
            loaded["hub_dir"], loaded["embed"] = _text_embedder(config)
        return loaded["embed"]

    inputs, report = load_user_inputs(config, embed)
    logger.info("Data %s", report)
    return inputs, report, loaded.get("hub_dir"), loaded.get("embed")


def _text_embedder(config):
    """`(hub_dir, embed)`: the TF Hub export of `config.model` and its cached embedder."""
    from keras_rec.embeddings.text_embedder import text_embedder
    from keras_rec.hub.local_hub import hub_modules

    hub_dir, sentence_encoder = hub_modules(config.model, config.hub_dir, config.encoder_precision)
    return hub_dir, text_embedder(sentence_encoder, config.cache, hub_dir)
