"""`VectorRetrieval`: query vector -> top-K item ids (the graph `keras-rec build-index` serves)."""

from __future__ import annotations

import tensorflow as tf

from keras_rec.recommender.serving.retrieval_serving import ids_variable


class VectorRetrieval(tf.Module):
    """`serving_default`: `query` float `[B, D]` -> `item_ids` and `scores` `[B, k]`.

    Args:
        index: the item index layer (`BruteForceTopK` or `IVFTopK`, e.g.
            from `keras_rec.recommender.build_item_index`) returning item
            rows.
        item_ids: int or str `[N]`, the raw id of each row.
    """

    def __init__(self, index, item_ids):
        super().__init__(name="vector_retrieval")
        if len(item_ids) != index.num_candidates:
            raise ValueError(
                f"`item_ids` has {len(item_ids)} ids for an index of {index.num_candidates} items."
            )
        self.index = index
        self.item_ids = ids_variable(item_ids)
        self.serve = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([None, index.dim], tf.float32, name="query")],
        )

    def _serve(self, query):
        scores, item_rows = self.index(query)
        return {"item_ids": tf.gather(self.item_ids, item_rows), "scores": scores}
