"""Precompute the MovieLens-100K item and user text embeddings."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from keras_rec.embeddings.cached_encoder import CachedEncoder
from keras_rec.embeddings.embed_table import write_embeddings_parquet


def precompute_movielens(
    encoder: CachedEncoder,
    output_dir: str | None = None,
    data_path: str | None = None,
    min_rating: float = 4.0,
    max_titles: int = 20,
    query: str = "Star Wars (1977)",
) -> dict[str, Any]:
    """Encodes every MovieLens-100K item and user text through the cache.

    Item texts come from title, year and genres; user texts from
    demographics and the titles the user rated at least `min_rating`
    (all ratings: this is an embedding precompute, not an evaluation split).

    Args:
        encoder: `CachedEncoder`. Encoder and cache to use.
        output_dir: str or None. When given, writes `items.parquet` and
            `users.parquet` (id, text, embedding) there.
        data_path: str or None. A local MovieLens directory (see
            `keras_rec.data.movielens_100k`); `None` fetches the default copy.
        min_rating: float. Ratings at or above this count as "liked".
        max_titles: int. Liked titles per user text.
        query: str. An item title whose nearest items the summary lists.

    Returns:
        A summary dict: counts, embedding dimension, encoded vs cached texts,
        seconds, and the nearest items to `query`.
    """
    from keras_rec.data import movielens_100k, movielens_item_texts, movielens_user_texts

    data = movielens_100k(path=data_path)
    item_texts = movielens_item_texts(data.items)
    user_texts = movielens_user_texts(
        data.ratings, data.items, data.users, min_rating=min_rating, max_titles=max_titles
    )

    item_vectors = encoder.encode(item_texts.tolist())
    item_report = encoder.last_report
    user_vectors = encoder.encode(user_texts.tolist())
    user_report = encoder.last_report

    summary: dict[str, Any] = {
        "model": str(encoder.encoder.model_name),
        "cache": encoder.cache.root,
        "embedding_dim": encoder.embedding_dim,
        "items": len(item_texts),
        "users": len(user_texts),
        "ratings": len(data.ratings),
        # 18 MovieLens movies are listed twice under two ids: same text, one vector.
        "unique_item_texts": item_report.num_unique,
        "unique_user_texts": user_report.num_unique,
        "items_encoded": item_report.num_encoded,
        "items_cached": item_report.num_cached,
        "users_encoded": user_report.num_encoded,
        "users_cached": user_report.num_cached,
        "seconds": round(item_report.seconds + user_report.seconds, 3),
        "nearest_items": nearest_items(item_texts, item_vectors, query, k=5),
    }
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        write_embeddings_parquet(
            item_texts.rename("text").rename_axis("item_id").reset_index(),
            item_vectors,
            os.path.join(output_dir, "items.parquet"),
        )
        write_embeddings_parquet(
            user_texts.rename("text").rename_axis("user_id").reset_index(),
            user_vectors,
            os.path.join(output_dir, "users.parquet"),
        )
        summary["output_dir"] = output_dir
    return summary


def nearest_items(item_texts, item_vectors: np.ndarray, query: str, k: int = 5) -> list[str]:
    """The `k` item texts closest (cosine) to the first item text containing `query`."""
    texts = item_texts.tolist()
    matches = [i for i, text in enumerate(texts) if query in text]
    if not matches:
        return []
    norms = np.linalg.norm(item_vectors, axis=1, keepdims=True)
    unit = item_vectors / np.maximum(norms, 1e-12)
    scores = unit @ unit[matches[0]]
    order = np.argsort(-scores, kind="stable")
    return [texts[i] for i in order[: k + 1] if i != matches[0]][:k]
