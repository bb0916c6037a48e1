"""`movielens_split`: MovieLens-100K, checked and split by TFRS's basic-retrieval protocol."""

from __future__ import annotations


def movielens_split(
    path: str | None,
    max_ratings: int | None,
    cold_start_fraction: float,
    validation_fraction: float,
    seed: int,
):
    """`(InteractionSplit, items table, users table)` of MovieLens-100K.

    The ratings are checked (`DataValidationError` on missing ids or
    duplicate pairs), keyed by "Title (Year)" as TFRS keys them, cut to
    the first `max_ratings`, split 80% / 20% after a seeded shuffle; with
    `cold_start_fraction`, those items leave training; `validation_fraction`
    of training is carved out as validation (seed `seed + 1`). The user
    texts are built from the training split only.
    """
    from keras_rec.data import movielens_100k
    from keras_rec.recommender.data.interactions import (
        carve_validation,
        check_interactions,
        cold_start_split,
        tfrs_protocol_split,
    )
    from keras_rec.recommender.data.recommender_inputs import (
        merge_duplicate_titles,
        movielens_tables,
    )

    data = movielens_100k(path=path)
    check_interactions(data.ratings, "MovieLens ratings")
    # Keyed by title as in TFRS: a user who rated both copies of a movie
    # listed twice keeps both rows, as there.
    data = merge_duplicate_titles(data)
    ratings = data.ratings if max_ratings is None else data.ratings.iloc[:max_ratings]
    split = tfrs_protocol_split(ratings, seed=seed)
    if cold_start_fraction:
        items = data.items["item_id"].to_numpy()
        split = cold_start_split(ratings, items, cold_start_fraction, seed, base=split)
    if validation_fraction:
        split = carve_validation(split, validation_fraction, seed + 1)
    items, users = movielens_tables(data, split.train)
    return split, items, users
