"""`TwoStageRecommender`: retrieval's top-N candidates, re-ranked with history features."""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from keras_rec.recommender.data.user_item_lists import UserItemLists
from keras_rec.recommender.index.item_index import index_layer, user_sample
from keras_rec.recommender.serving.retrieval_serving import (
    _check_width,
    _id_dtype,
    csr_rows,
    ids_variable,
    popular_fallback,
    popular_variables,
    row_splits,
    served_ids,
    unit_rows,
    user_row_table,
)

FEATURE_NAMES = (
    "retrieval_score",
    "log_rank",
    "log_popularity",
    "tower_similarity_max",
    "tower_similarity_mean",
    "tower_similarity_attention",
    "text_similarity_max",
    "text_similarity_mean",
    "log_history_length",
    "item_item_score",
)
# History items compared with each candidate (each user's last ones).
HISTORY_LIMIT = 256
ATTENTION_TEMPERATURE = 0.1


class TwoStageRecommender(tf.Module):
    """`user_id` -> top-K items: the towers retrieve N candidates, the re-ranker orders them.

    Stage 1 scores every item against the user's tower vector and keeps
    the best `num_candidates` (the user's known items excluded). Stage 2
    computes, per candidate, features the towers cannot (`FEATURE_NAMES`):
    its similarity to each item of the user's history (max, mean and an
    attention-weighted mean, on the item-tower vectors and on the text
    embeddings), its popularity, its retrieval score and rank, the
    history's length; the re-ranker (`build_reranker`) scores them and the
    best `k` are returned. Unknown user ids get the popular items, with
    `known_user` false, as in `UserRetrieval`. Every table is a variable
    of the SavedModel.

    Args:
        user_vectors: float `[U, D]`, user tower outputs.
        user_ids: int or str `[U]`.
        item_vectors: float `[N, D]`, item tower outputs (unit norm).
        item_embeddings: float `[N, E]`, item text embeddings.
        item_ids: int or str `[N]`.
        item_titles: str `[N]`.
        item_counts: int `[N]`, known interactions per item (popularity).
        history: `UserItemLists`, each user's known items (excluded from
            the results; the last `HISTORY_LIMIT` are the history features'
            items).
        reranker: the re-ranker model, or None (then only
            `candidate_features` can be called, to make its training data).
        k: int. Items returned.
        num_candidates: int. Candidates retrieved and re-ranked (>= k).
        popular_items: item rows by decreasing popularity (>= k of them).
        popular_scores: float scores returned with them.
        item_neighbors, item_neighbor_weights: int `[N, M]`, float `[N, M]`
            or None. Item-item weights kept as each item's `M` strongest
            neighbors (e.g. EASE's, `top_neighbors`): the `item_item_score`
            feature of a candidate sums the weights to it from every item
            of the user's history (0 when None).
        index: how stage 1 indexes the items: `ItemIndexSettings` (IVF's
            `nprobe` tuned for recall@num_candidates on a sample of the
            users), an index layer, or None (exact), as in `UserRetrieval`.
    """

    def __init__(
        self,
        user_vectors,
        user_ids,
        item_vectors,
        item_embeddings,
        item_ids,
        item_titles,
        item_counts,
        history: UserItemLists,
        reranker,
        k: int,
        num_candidates: int,
        popular_items,
        popular_scores,
        item_neighbors=None,
        item_neighbor_weights=None,
        index=None,
    ):
        super().__init__(name="two_stage_recommender")
        user_ids = served_ids(user_ids, "user_ids")
        user_vectors = np.asarray(user_vectors, np.float32)
        item_vectors = np.asarray(item_vectors, np.float32)
        _check_width("the item vectors", item_vectors.shape[1], user_vectors.shape[1])
        num_items = len(item_vectors)
        if not 1 <= k <= num_candidates <= num_items:
            raise ValueError(
                f"Need 1 <= k <= num_candidates <= items. Received: k={k}, "
                f"num_candidates={num_candidates}, items={num_items}"
            )
        if len(history) != len(user_ids):
            raise ValueError(f"`history` has {len(history)} users; expected {len(user_ids)}.")
        texts = unit_rows(item_embeddings)
        self.user_rows = user_row_table(user_ids)
        self.user_vectors = tf.Variable(user_vectors, trainable=False, name="user_vectors")
        self.item_vectors = tf.Variable(item_vectors, trainable=False, name="item_vectors")
        self.item_texts = tf.Variable(texts, trainable=False, name="item_texts")
        self.item_log_popularity = tf.Variable(
            np.log1p(np.asarray(item_counts, np.float32)), trainable=False, name="item_popularity"
        )
        self.index, report = index_layer(
            index,
            item_vectors,
            num_candidates,
            user_sample(user_vectors, history),
            name="candidate_index",
        )
        # A string: a dict attribute of a tf.Module would be wrapped for tracking.
        self.index_json = json.dumps(report)
        values, splits = row_splits(history)
        self.history_values = tf.Variable(values, trainable=False, name="history_values")
        self.history_splits = tf.Variable(splits, trainable=False, name="history_splits")
        self.item_ids = ids_variable(item_ids)
        self.item_titles = tf.Variable(
            [str(t) for t in item_titles], trainable=False, name="item_titles"
        )
        self.popular_items, self.popular_scores = popular_variables(
            popular_items, popular_scores, k
        )
        if item_neighbors is None:
            item_neighbors = np.zeros((num_items, 1), np.int64)
            item_neighbor_weights = np.zeros((num_items, 1), np.float32)
        item_neighbors = np.asarray(item_neighbors, np.int64)
        item_neighbor_weights = np.asarray(item_neighbor_weights, np.float32)
        if item_neighbors.shape != item_neighbor_weights.shape or len(item_neighbors) != num_items:
            raise ValueError(
                f"`item_neighbors` and `item_neighbor_weights` must both be [{num_items}, M]. "
                f"Received: {item_neighbors.shape} and {item_neighbor_weights.shape}"
            )
        self.item_neighbors = tf.Variable(item_neighbors, trainable=False, name="item_neighbors")
        self.item_neighbor_weights = tf.Variable(
            item_neighbor_weights, trainable=False, name="item_neighbor_weights"
        )
        self.num_items = num_items
        self.reranker = reranker
        self.k = k
        self.num_candidates = num_candidates
        self.num_users = len(user_ids)
        row_spec = tf.TensorSpec([None], tf.int64, name="user_rows")
        self.candidate_features = tf.function(self._candidate_features, input_signature=[row_spec])
        if reranker is not None:
            self.rank_rows = tf.function(self._rank_rows, input_signature=[row_spec])
            self.serve = tf.function(
                self._serve,
                input_signature=[tf.TensorSpec([None], _id_dtype(user_ids), name="user_id")],
            )

    def _candidate_features(self, rows):
        """user rows `[B]` -> `(candidate item rows [B, C], features [B, C, F])`."""
        known = csr_rows(self.history_values, self.history_splits, rows)
        scores, candidates = self.index(
            tf.gather(self.user_vectors, rows), known.to_tensor(default_value=-1)
        )
        lengths = tf.cast(known.row_lengths(), tf.float32)
        recent = known[:, -HISTORY_LIMIT:].to_tensor(default_value=-1)
        mask = recent >= 0
        history = tf.maximum(recent, 0)
        tower_max, tower_mean, tower_attention = _similarities(
            tf.gather(self.item_vectors, candidates), tf.gather(self.item_vectors, history), mask
        )
        text_max, text_mean, _ = _similarities(
            tf.gather(self.item_texts, candidates), tf.gather(self.item_texts, history), mask
        )
        shape = tf.shape(candidates)
        log_rank = tf.broadcast_to(
            tf.math.log1p(tf.range(shape[1], dtype=tf.float32))[None, :], shape
        )
        log_history = tf.broadcast_to(tf.math.log1p(lengths)[:, None], shape)
        # Sum over the whole history of each history item's weight to the candidate.
        neighbors = tf.gather(self.item_neighbors, known.values)
        slots = known.value_rowids()[:, None] * self.num_items + neighbors
        pushed = tf.math.unsorted_segment_sum(
            tf.gather(self.item_neighbor_weights, known.values),
            slots,
            tf.cast(shape[0], tf.int64) * self.num_items,
        )
        item_item = tf.gather(
            pushed, tf.range(tf.cast(shape[0], tf.int64))[:, None] * self.num_items + candidates
        )
        features = tf.stack(
            [
                scores,
                log_rank,
                tf.gather(self.item_log_popularity, candidates),
                tower_max,
                tower_mean,
                tower_attention,
                text_max,
                text_mean,
                log_history,
                item_item,
            ],
            axis=-1,
        )
        return candidates, features

    def _rank_rows(self, rows):
        """user rows `[B]` -> `(logits [B, k], item rows [B, k])`, best first."""
        candidates, features = self._candidate_features(rows)
        logits = self.reranker(features, training=False)
        top, positions = tf.math.top_k(logits, k=self.k)
        return top, tf.gather(candidates, positions, batch_dims=1)

    def _serve(self, user_id):
        rows = self.user_rows.lookup(user_id)
        known = rows >= 0
        logits, item_rows = self._rank_rows(tf.where(known, rows, tf.zeros_like(rows)))
        item_rows, scores = popular_fallback(self, known, item_rows, logits)
        return {
            "item_ids": tf.gather(self.item_ids, item_rows),
            "scores": scores,
            "titles": tf.gather(self.item_titles, item_rows),
            "known_user": known,
        }


def _similarities(candidates, history, mask):
    """Cosines of each candidate `[B, C, D]` with each history item `[B, H, D]` (valid: `mask`).

    Returns their max, mean and softmax-attention-weighted mean `[B, C]`
    (0 for a user without history).
    """
    similarity = tf.einsum("bcd,bhd->bch", candidates, history)
    valid = tf.broadcast_to(mask[:, None, :], tf.shape(similarity))
    count = tf.reduce_sum(tf.cast(mask, tf.float32), axis=1)[:, None]
    has_history = tf.cast(count > 0, tf.float32)
    maximum = tf.reduce_max(tf.where(valid, similarity, -2.0), axis=-1) * has_history
    mean = tf.reduce_sum(tf.where(valid, similarity, 0.0), axis=-1) / tf.maximum(count, 1.0)
    weights = tf.nn.softmax(
        tf.where(valid, similarity / ATTENTION_TEMPERATURE, -1e9), axis=-1
    ) * tf.cast(valid, tf.float32)
    attention = tf.reduce_sum(weights * similarity, axis=-1) * has_history
    return maximum, mean, attention


def two_stage_scores(model: TwoStageRecommender):
    """A score function for `evaluate_retrieval`: the re-ranked candidates first.

    All `num_candidates` candidates get scores above every other item, in
    the re-ranker's order; the other items keep their retrieval scores
    below them (Recall@K for K > `num_candidates` counts the stage-1 order).
    """
    item_vectors = model.item_vectors.numpy()
    user_vectors = model.user_vectors.numpy()
    places = np.arange(model.num_candidates, 0, -1, dtype=np.float32)[None, :] + 10.0

    def scores(rows):
        rows = np.asarray(rows, np.int64)
        block = user_vectors[rows] @ item_vectors.T - 10.0
        candidates, features = model.candidate_features(tf.constant(rows))
        logits = model.reranker(features, training=False).numpy()
        order = np.argsort(-logits, axis=1, kind="stable")
        ranked = np.take_along_axis(candidates.numpy(), order, axis=1)
        np.put_along_axis(block, ranked, np.broadcast_to(places, ranked.shape), axis=1)
        return block

    return scores
