"""`NextItems`: a user's recent item ids -> the items most likely next, served with no user id."""

from __future__ import annotations

import io
import json

import numpy as np
import tensorflow as tf

from keras_rec.recommender.data.user_sequences import TIME_GAP_BOUNDARIES
from keras_rec.recommender.index.item_index import index_layer
from keras_rec.recommender.layers.next_item_model import sequence_queries
from keras_rec.recommender.serving.retrieval_serving import (
    ids_variable,
    popular_fallback,
    popular_variables,
    served_ids,
    user_row_table,
)

# What a client sends in an unused slot of `recent_item_ids` (any unknown id works the same).
PADDING_IDS = {"int64": -1, "string": ""}
# The encoder travels in the export's `assets.extra/`, for `keras-rec add-items`.
ENCODER_CONFIG_FILE = "sequence_encoder.json"
ENCODER_WEIGHTS_FILE = "sequence_encoder.npz"


class NextItems(tf.Module):
    """`serving_default`: `recent_item_ids` `[B, L]` -> `item_ids`, `scores`, `titles` `[B, K]`.

    A client sends each user's latest item ids, oldest first, in a padded
    `[B, L]` batch of the catalogue's id type (int64 or string); padding
    (`PADDING_IDS`: -1 or "") and ids the catalogue does not know are
    ignored wherever they sit. The known ids are moved to the end of their
    row in order, the last `max_history` are read by the sequence model's
    encoder over the items' vectors, and the state after the latest item is
    scored against every item vector by the exact or IVF index. No user id
    is needed, so a user's clicks count from the next request on. With
    `exclude_recent` the given items are never returned. A row with no
    known id gets the `popular_items`. `used_items` says how many ids were
    read per row.

    A model trained with time gaps (`gap_table`) also takes
    `recent_timestamps` `[B, L]` int64, the seconds at which each id
    happened (same layout; padding anything): the gap between consecutive
    known ids is bucketed as in training (`time_gap_buckets`), and the
    oldest id read has none.

    Args:
        encoder: the trained `CausalSequenceEncoder` (a `NextItemModel`'s
            `encoder`).
        item_vectors: float `[N, D]`, the item-tower vector of every item.
        item_ids: int or str `[N]`, raw item ids.
        item_titles: str `[N]`.
        k: int.
        popular_items: item rows by decreasing popularity (>= k).
        popular_scores: float scores returned with them.
        exclude_recent: bool. Leave the request's items out of the answer.
        index: `ItemIndexSettings`, an index layer or None (exact), as in
            `UserRetrieval`.
        sample_queries: callable -> `(queries, exclude, description)` for
            tuning IVF's `nprobe` (e.g. the users' own query vectors and
            histories), or None.
        gap_table: float `[TIME_GAP_BUCKETS, D]` or None: the time-gap
            vectors of a model trained with them (`NextItemModel.gap_table`).
    """

    def __init__(
        self,
        encoder,
        item_vectors,
        item_ids,
        item_titles,
        k: int,
        popular_items,
        popular_scores,
        exclude_recent: bool = True,
        index=None,
        sample_queries=None,
        gap_table=None,
    ):
        super().__init__(name="next_items")
        ids = served_ids(item_ids, "item_ids")
        item_vectors = np.asarray(item_vectors, np.float32)
        if len(item_vectors) != len(ids):
            raise ValueError(f"`item_vectors` has {len(item_vectors)} rows for {len(ids)} items.")
        if len(popular_items) < k:
            raise ValueError(f"`popular_items` must hold at least k={k} items.")
        self.encoder = encoder
        self.max_history = int(encoder.max_history)
        self.item_rows = user_row_table(ids)
        self.history_vectors = tf.Variable(item_vectors, trainable=False, name="history_vectors")
        self.index, report = index_layer(index, item_vectors, k, sample_queries)
        self.index_json = json.dumps(report)
        self.item_ids = ids_variable(ids)
        self.item_titles = tf.Variable(
            [str(t) for t in item_titles], trainable=False, name="item_titles"
        )
        self.popular_items, self.popular_scores = popular_variables(
            popular_items, popular_scores, k
        )
        self.k = k
        self.exclude_recent = bool(exclude_recent)
        self.gap_vectors = None
        if gap_table is not None:
            self.gap_vectors = tf.Variable(
                np.asarray(gap_table, np.float32), trainable=False, name="time_gap_vectors"
            )
        dtype = tf.int64 if ids.dtype == np.int64 else tf.string
        signature = [tf.TensorSpec([None, None], dtype, name="recent_item_ids")]
        if self.gap_vectors is None:
            self.serve = tf.function(self._serve, input_signature=signature)
        else:
            signature.append(tf.TensorSpec([None, None], tf.int64, name="recent_timestamps"))
            self.serve = tf.function(self._serve_with_times, input_signature=signature)

    def encoder_assets(self) -> dict[str, bytes | str]:
        """`assets.extra/` files that rebuild the encoder (`load_encoder`): config, weights."""
        buffer = io.BytesIO()
        np.savez(buffer, *[np.asarray(w) for w in self.encoder.weights])
        return {
            ENCODER_CONFIG_FILE: json.dumps(self.encoder.get_config()),
            ENCODER_WEIGHTS_FILE: buffer.getvalue(),
        }

    def _serve(self, recent_item_ids):
        return self._answer(recent_item_ids, None)

    def _serve_with_times(self, recent_item_ids, recent_timestamps):
        return self._answer(recent_item_ids, recent_timestamps)

    def _answer(self, recent_item_ids, recent_timestamps):
        rows = self.item_rows.lookup(recent_item_ids)
        if recent_timestamps is None:
            rows = latest_known_rows(rows, self.max_history)
        else:
            same = tf.debugging.assert_equal(
                tf.shape(recent_timestamps), tf.shape(recent_item_ids),
                message="`recent_timestamps` must have the shape of `recent_item_ids` (one "
                "time per id)",
            )  # fmt: skip
            with tf.control_dependencies([same]):
                rows, times = latest_known_rows(rows, self.max_history, recent_timestamps)
        valid = rows >= 0
        vectors = tf.gather(self.history_vectors, tf.maximum(rows, 0))
        if recent_timestamps is not None:
            vectors += tf.gather(self.gap_vectors, served_gap_buckets(times, valid))
        queries = sequence_queries(self.encoder, vectors, valid, last_only=True)[:, -1, :]
        scores, item_rows = self.index(queries, rows if self.exclude_recent else None)
        used = tf.reduce_sum(tf.cast(valid, tf.int64), axis=1)
        item_rows, scores = popular_fallback(self, used > 0, item_rows, scores)
        return {
            "item_ids": tf.gather(self.item_ids, item_rows),
            "scores": scores,
            "titles": tf.gather(self.item_titles, item_rows),
            "used_items": used,
        }


def load_encoder(version_dir: str):
    """The `CausalSequenceEncoder` a `next_items` export was made with (its `assets.extra/`)."""
    import os

    from keras_rec.recommender.layers.causal_sequence_encoder import CausalSequenceEncoder

    extra = os.path.join(version_dir, "assets.extra")
    with open(os.path.join(extra, ENCODER_CONFIG_FILE)) as file:
        encoder = CausalSequenceEncoder.from_config(json.load(file))
    with np.load(os.path.join(extra, ENCODER_WEIGHTS_FILE)) as stored:
        weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    width = weights[0].shape[-1]  # the position embeddings come first
    length = encoder.max_history
    encoder(np.zeros((1, length, width), np.float32), np.ones((1, length), bool))
    encoder.set_weights(weights)
    return encoder


def latest_known_rows(rows, length: int, times=None):
    """int64 `[B, length]`: each row's known entries (>= 0), in order, right-aligned, -1 before.

    Unknown entries (-1) anywhere in a row are dropped; rows longer than
    `length` keep their last `length` known entries. With `times` (`[B, W]`,
    one per entry), returns `(rows, times)`, the times moved alike (0 before).
    """
    rows = tf.cast(rows, tf.int64)
    width = tf.shape(rows, tf.int64)[1]
    positions = tf.range(width)[None, :]
    # Unknown entries sort first (keys < width), known ones after, each in order.
    keys = tf.where(rows >= 0, positions + width, positions)
    order = tf.argsort(keys, axis=1, stable=True)

    def moved(values, padding):
        values = tf.pad(tf.gather(values, order, batch_dims=1), [[0, 0], [length, 0]],
                        constant_values=padding)  # fmt: skip
        return tf.ensure_shape(values[:, -length:], [None, length])

    if times is None:
        return moved(rows, -1)
    return moved(rows, -1), moved(tf.cast(times, tf.int64), 0)


def served_gap_buckets(times, valid):
    """int64 `[B, L]`: each known entry's time-gap bucket after the one before it (0: none).

    The same buckets as `time_gap_buckets` / `gap_bucket` (whole seconds
    against the same powers of two, in integers).
    """
    previous_valid = tf.pad(valid[:, :-1], [[0, 0], [1, 0]])
    gaps = times - tf.pad(times[:, :-1], [[0, 0], [1, 0]])
    boundaries = tf.constant(TIME_GAP_BOUNDARIES, tf.int64)
    buckets = 1 + tf.reduce_sum(tf.cast(gaps[..., None] >= boundaries, tf.int64), axis=-1)
    return tf.where(valid & previous_valid, buckets, tf.zeros_like(buckets))
