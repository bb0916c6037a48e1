"""`movielens_split`: MovieLens-100K, checked and split by TFRS's basic-retrieval protocol."""

from __future__ import annotations


def movielens_split(
    path: str | None,
    max_ratings: int | None,
    cold_start_fraction: float,
    validation_fraction: float,
    seed: int,
    split: str = "random",
    leave_last: int = 1,
    test_fraction: float = 0.2,
):
    """`(InteractionSplit, items table, users table)` of MovieLens-100K.

    The ratings are checked (`DataValidationError` on missing ids or
    duplicate pairs), keyed by "Title (Year)" as TFRS keys them, cut to
    the first `max_ratings`, then split:

    - `split="random"`: TFRS's protocol, 80% / 20% after a seeded shuffle;
      `validation_fraction` of training carved out at random (seed `seed + 1`);
    - `split="leave-last-out"`: each user's last `leave_last` ratings by
      time (ties broken by item id) are the test; validation (when
      `validation_fraction` > 0) is each user's last training rating;
    - `split="temporal"`: the latest `test_fraction` of ratings by time,
      validation the latest `validation_fraction` of the rest.

    With `cold_start_fraction`, those items leave training. The user texts
    are built from the training split only.
    """
    from keras_rec.data import movielens_100k
    from keras_rec.recommender.data.interactions import (
        carve_validation,
        check_interactions,
        cold_start_split,
        tfrs_protocol_split,
        time_split,
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
    if split == "random":
        split = tfrs_protocol_split(ratings, seed=seed)
    else:
        split = time_split(ratings, split, test_fraction, leave_last)
    if cold_start_fraction:
        items = data.items["item_id"].to_numpy()
        split = cold_start_split(ratings, items, cold_start_fraction, seed, base=split)
    if validation_fraction:
        if split.protocol.startswith("tfrs"):
            split = carve_validation(split, validation_fraction, seed + 1)
        else:
            split = carve_validation(split, validation_fraction, seed + 1, by_time=True)
    items, users = movielens_tables(data, split.train)
    return split, items, users
