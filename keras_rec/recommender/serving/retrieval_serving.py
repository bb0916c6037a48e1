"""Served retrieval graphs: user id -> top-K items, and query text -> top-K items.

Both are `tf.Module`s whose tables (user inputs, item vectors, ids, titles)
are variables inside the SavedModel, so TF Serving answers with no other
files and no Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_rec.recommender.data.user_item_lists import UserItemLists
from keras_rec.recommender.index.item_index import index_layer, user_sample


def served_ids(values, name: str) -> np.ndarray:
    """Ids as the served graph holds them: int64, or strings (`object` array of `str`)."""
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind in "OUS" and all(isinstance(v, (str, np.str_)) for v in array.tolist()):
        return np.asarray([str(v) for v in array.tolist()], dtype=object)
    raise ValueError(f"`{name}` must be integers or strings. Received dtype: {array.dtype}")


def _id_dtype(ids: np.ndarray) -> tf.DType:
    return tf.int64 if ids.dtype == np.int64 else tf.string


def _check_width(what: str, actual: int, expected: int) -> None:
    if actual != expected:
        raise ValueError(
            f"Embedding widths differ: {what} has width {actual} but the model expects "
            f"{expected}. Were they computed with another model?"
        )


def user_row_table(user_ids: np.ndarray) -> tf.lookup.StaticHashTable:
    """Raw user id (int64 or string, as `served_ids` gives) -> user row; -1 when unknown."""
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(user_ids, _id_dtype(user_ids)),
            tf.range(len(user_ids), dtype=tf.int64),
        ),
        default_value=-1,
    )


def csr_rows(values, splits, rows) -> tf.RaggedTensor:
    """Rows `rows` of a CSR table (`values`, `splits`) as a `tf.RaggedTensor`."""
    positions = tf.ragged.range(tf.gather(splits, rows), tf.gather(splits, rows + 1))
    return tf.gather(values, positions)


def row_splits(groups: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged int lists -> `(values, splits)` in CSR form, plus an empty last row."""
    if isinstance(groups, UserItemLists):
        return groups.items.astype(np.int64), np.append(groups.splits, groups.splits[-1])
    lengths = [len(g) for g in groups]
    values = np.concatenate([np.asarray(g, np.int64) for g in groups] + [np.zeros(0, np.int64)])
    splits = np.concatenate([[0], np.cumsum(lengths), [sum(lengths)]]).astype(np.int64)
    return values, splits


class UserRetrieval(tf.Module):
    """`user_id` -> the user's top-K items: user vectors and item index in one graph.

    Known users (integer or string ids) are looked up in a table of their
    user-tower vectors (computed once at export from their text embedding,
    history and id: the tower is deterministic at inference, so this is
    what running it per request would give, at a sixth of the size for
    384-d inputs and 128-d vectors) and scored against every item vector;
    items they interacted with in training are excluded when `seen_items`
    is given. An id absent from the table gets the `popular_items` instead,
    with `known_user` false (the documented fallback: TF Serving cannot run
    a tower without the user's text, so serve a new user through
    `user_tower` with their text embedding, or through `query_retrieval`).

    Args:
        user_vectors: float `[U, D]`, the user tower's output per user.
        user_ids: int or str `[U]`, raw user ids (the `user_id` input's
            dtype: int64 or string).
        item_vectors: float `[N, D]`, item tower outputs.
        item_ids: int or str `[N]`, raw item ids.
        item_titles: str `[N]`.
        k: int.
        popular_items: item rows by decreasing training popularity (>= k of them).
        popular_scores: float scores returned with them (e.g. their share of
            training interactions).
        seen_items: per user row, item rows to exclude (`UserItemLists` or
            lists), or None. Held as CSR arrays (values and row splits).
        index: how the items are indexed: `ItemIndexSettings` (IVF's
            `nprobe` is tuned on a sample of the users, their seen items
            excluded as served), an index layer over `item_vectors`, or
            None (exact). `index_json` describes it (`describe_index`).
    """

    def __init__(
        self,
        user_vectors,
        user_ids,
        item_vectors,
        item_ids,
        item_titles,
        k,
        popular_items,
        popular_scores,
        seen_items=None,
        index=None,
    ):
        super().__init__(name="user_retrieval")
        user_ids = served_ids(user_ids, "user_ids")
        user_vectors = np.asarray(user_vectors, np.float32)
        if len(user_vectors) != len(user_ids):
            raise ValueError(
                f"`user_vectors` has {len(user_vectors)} rows for {len(user_ids)} users."
            )
        item_vectors = np.asarray(item_vectors, np.float32)
        _check_width("the item vectors", item_vectors.shape[1], user_vectors.shape[1])
        if len(popular_items) < k:
            raise ValueError(f"`popular_items` must hold at least k={k} items.")
        self.user_rows = user_row_table(user_ids)
        self.user_vectors = tf.Variable(user_vectors, trainable=False, name="user_vectors")
        self.index, report = index_layer(
            index, item_vectors, k, user_sample(user_vectors, seen_items)
        )
        # A string: a dict attribute of a tf.Module would be wrapped for tracking.
        self.index_json = json.dumps(report)
        self.item_ids = ids_variable(item_ids)
        self.item_titles = tf.Variable(
            [str(t) for t in item_titles], trainable=False, name="item_titles"
        )
        self.num_users = len(user_ids)
        self.exclude_seen = seen_items is not None
        if self.exclude_seen:
            values, splits = row_splits(seen_items)
            self.seen_values = tf.Variable(values, trainable=False, name="seen_values")
            self.seen_splits = tf.Variable(splits, trainable=False, name="seen_splits")
        self.popular_items, self.popular_scores = popular_variables(
            popular_items, popular_scores, k
        )
        self.k = k
        self.serve = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([None], _id_dtype(user_ids), name="user_id")],
        )

    def _serve(self, user_id):
        rows = self.user_rows.lookup(user_id)
        known = rows >= 0
        safe_rows = tf.where(known, rows, tf.zeros_like(rows))
        queries = tf.gather(self.user_vectors, safe_rows)
        exclude = None
        if self.exclude_seen:
            # Unknown users read the empty last row.
            seen_rows = tf.where(
                known, rows, tf.fill(tf.shape(rows), tf.cast(self.num_users, tf.int64))
            )
            exclude = csr_rows(self.seen_values, self.seen_splits, seen_rows).to_tensor(
                default_value=-1
            )
        scores, item_rows = self.index(queries, exclude)
        item_rows, scores = popular_fallback(self, known, item_rows, scores)
        return {
            "item_ids": tf.gather(self.item_ids, item_rows),
            "scores": scores,
            "titles": tf.gather(self.item_titles, item_rows),
            "known_user": known,
        }


class QueryRetrieval(tf.Module):
    """Raw query text -> top-K items by cosine against the items' text embeddings.

    The TF Hub preprocessor and encoder (from `keras-rec export-hub`) run
    inside the graph, so a client sends strings.

    Args:
        preprocess_dir: str. The hub preprocessor SavedModel.
        encoder_dir: str. The hub encoder SavedModel.
        item_embeddings: float `[N, D]`, sentence embeddings of the item texts
            by the same sentence-transformer.
        item_ids: int or str `[N]`.
        item_titles: str `[N]`.
        k: int.
        output_key: str. The encoder output to use.
        index: `ItemIndexSettings`, an index layer or None (exact), as in
            `UserRetrieval`; IVF's `nprobe` is tuned on `sample_queries`.
        sample_queries: float `[Q, E]` embeddings of real query texts (e.g.
            the users' texts), needed for IVF.
    """

    def __init__(
        self,
        preprocess_dir,
        encoder_dir,
        item_embeddings,
        item_ids,
        item_titles,
        k,
        output_key: str = "sentence_embedding",
        index=None,
        sample_queries=None,
    ):
        super().__init__(name="query_retrieval")
        from keras_rec.hub.hub_layer import register_tf_text_ops

        register_tf_text_ops()
        self.preprocess = tf.saved_model.load(preprocess_dir)
        self.encoder = tf.saved_model.load(encoder_dir)
        self.output_key = output_key
        probe = self._embed(tf.constant(["probe"]))
        item_embeddings = np.asarray(item_embeddings, np.float32)
        _check_width("the item embeddings", item_embeddings.shape[1], int(probe.shape[-1]))
        self.index, report = index_layer(
            index,
            unit_rows(item_embeddings),
            k,
            lambda: (
                None if sample_queries is None else unit_rows(sample_queries),
                None,
                {"from": "sample_queries (users' text embeddings in train-recommender)"},
            ),
        )
        # A string: a dict attribute of a tf.Module would be wrapped for tracking.
        self.index_json = json.dumps(report)
        self.item_ids = ids_variable(item_ids)
        self.item_titles = tf.Variable(
            [str(t) for t in item_titles], trainable=False, name="item_titles"
        )

    def _embed(self, text):
        outputs = self.encoder(self.preprocess(text), training=False)
        return tf.math.l2_normalize(outputs[self.output_key], axis=-1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        scores, item_rows = self.index(self._embed(text))
        return {
            "item_ids": tf.gather(self.item_ids, item_rows),
            "scores": scores,
            "titles": tf.gather(self.item_titles, item_rows),
        }


def popular_variables(popular_items, popular_scores, k: int):
    """`(popular_items, popular_scores)` variables: the first `k` item rows and their scores."""
    return (
        tf.Variable(np.asarray(popular_items[:k], np.int64), trainable=False, name="popular_items"),
        tf.Variable(
            np.asarray(popular_scores[:k], np.float32), trainable=False, name="popular_scores"
        ),
    )


def popular_fallback(module, known, item_rows, scores):
    """`(item rows, scores)` `[B, K]` with the rows where `known` is false replaced by the
    `module`'s `popular_items` and `popular_scores` (the served fallback)."""
    batch = tf.shape(known)[0]
    popular_rows = tf.broadcast_to(module.popular_items[None, :], [batch, module.k])
    popular_scores = tf.broadcast_to(module.popular_scores[None, :], [batch, module.k])
    return (
        tf.where(known[:, None], item_rows, popular_rows),
        tf.where(known[:, None], scores, popular_scores),
    )


def unit_rows(vectors) -> np.ndarray:
    """float32 rows scaled to unit L2 norm (zero rows stay zero)."""
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def ids_variable(item_ids) -> tf.Variable:
    ids = served_ids(item_ids, "item_ids")
    return tf.Variable(tf.constant(ids, _id_dtype(ids)), trainable=False, name="item_ids")


def tower_serving_function(tower, output_name: str = "vector"):
    """`serving_default` of a tower: its named inputs -> `{output_name: [B, D]}`."""
    specs = _tower_inputs(tower)
    names = sorted(specs)

    @tf.function(input_signature=[specs[name] for name in names])
    def serve(*tensors):
        return {output_name: tower(dict(zip(names, tensors)), training=False)}

    return serve


def ranker_serving_function(ranker):
    """`serving_default` of the ranker: `user`, `item` embeddings -> `score` `[B]`."""
    specs = _tower_inputs(ranker)

    @tf.function(input_signature=[specs["item"], specs["user"]])
    def serve(item, user):
        return {"score": tf.reshape(ranker({"user": user, "item": item}, training=False), [-1])}

    return serve


def _tower_inputs(model) -> dict[str, tf.TensorSpec]:
    inputs = model.input if isinstance(model.input, dict) else {model.inputs[0].name: model.input}
    return {
        name: tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype, name=name)
        for name, tensor in inputs.items()
    }
