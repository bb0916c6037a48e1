"""`RecommenderTrainingConfig`: the settings of `train_recommender` and its command's flags."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from keras_rec.index_choices import DEFAULT_TARGET_RECALL, INDEX_TYPES, STORAGES
from keras_rec.precision import PRECISIONS
from keras_rec.training.config_flags import flag
from keras_rec.training.run_config import RunConfig
from keras_rec.training.script_arguments import require_positive_ints
from keras_rec.user_model_choices import SEQUENCE_LOSSES, USER_MODELS


@dataclasses.dataclass
class RecommenderTrainingConfig(RunConfig):
    """Settings of `train_recommender` (the flags of `keras-rec train-recommender`).

    Args:
        data: str or None. A local MovieLens-100K directory (RecBole or
            GroupLens files); None fetches the default copy. Ignored when
            `interactions` is given.
        interactions: str or None. The user's own interactions: CSV/TSV/
            Parquet, local or an fsspec URL, or a directory of Parquet
            parts, read in chunks (None: MovieLens-100K).
        user_column, item_column: str. Id columns of `interactions`.
        rating_column, timestamp_column: str or None. Optional columns.
        min_rating: float or None. Interactions rated below it are not
            positives (dropped, and counted in the summary).
        items: str or None. Item catalogue (CSV/TSV/Parquet) with
            `item_id_column`; item texts are `item_text_template` (a Python
            format string over its columns, e.g. "{title}. {genres}";
            missing values render as ""), titles its first field.
        item_embeddings: str or None. Parquet with `item_id_column` and an
            `embedding` list column (as `keras-rec embed` writes): the item
            text embeddings, nothing is encoded.
        users, user_id_column, user_text_template, user_embeddings: the
            same for users, optional: without them a user is their history
            (mean embedding of their training items) and id.
        test_interactions: str or None. Held-out interactions to evaluate
            on (same columns) instead of splitting `interactions`.
        split: str. `random` (seeded shuffle, `test_fraction` held out, the
            TFRS protocol), `temporal` (the latest `test_fraction` by
            timestamp, a global cutoff) or `leave-last-out` (each user's
            last `leave_last` by timestamp).
        test_fraction: float. Share of interactions held out by `random`
            and `temporal`.
        leave_last: int. Interactions held out per user by `leave-last-out`.
        validation_fraction: float. Share of training interactions carved
            out (by the same kind of split, seeded `seed + 1`) for early
            stopping, EASE's `l2` and the re-ranker's training; the test
            set is never used to choose anything.
        eval_users: int or None. Evaluate a seeded sample of this many test
            users (default: all of them).
        model: str or None. Sentence-transformer path or id for the texts
            (None: the embedded all-MiniLM-L6-v2).
        encoder_precision: str. `"float32"` or `"bfloat16"`: the TF Hub
            encoder export inside the served models (see `export_hub`).
        hub_dir: str or None. An existing `keras-rec export-hub` directory
            to use instead of `model` (embeddings then come from it).
        epochs, batch_size, learning_rate: retrieval training (Adam).
        loss: str. `"softmax"` (in-batch) or `"sampled_bce"`.
        temperature: float. Softmax temperature of the cosine logits (0.1: the
            best of 0.05 and 0.1 x id dropout 0, 0.15, 0.3 on validation).
        log_q: bool. Log-Q correction of in-batch negatives.
        num_negatives: int. Negatives per user for `"sampled_bce"`.
        id_dropout: float. Share of training ids hidden from the towers, so
            they also learn from text alone (cold start).
        output_dim: int. Width of the tower outputs.
        hidden_units: ints. Hidden layers of each tower.
        dropout, weight_decay: float. Tower regularization.
        k: int. Items returned by the served retrieval models.
        index: str. How `retrieval`, `recommend` and `query_retrieval`
            find their top K: `"exact"` (brute force), `"ivf"` (an inverted
            file index in core TF ops, `keras_rec.recommender.IVFTopK`) or
            `"auto"` (IVF from 100,000 items).
        index_recall: float. IVF's `nprobe` is the smallest whose top K
            overlaps the exact top K by this much on a sample of users
            (recorded in each export's `assets.extra/retrieval_index.json`).
        index_storage: str. IVF vector storage: float32, bfloat16 or int8.
        cold_start_fraction: float. Share of items held out of training
            entirely for the cold-start evaluation (0: none).
        max_ratings: int or None. Use only the first ratings (quick runs).
        ranker_task: str. `"binary"` (liked vs sampled negatives) or `"rating"`.
        ranker_epochs: int.
        ranker_negatives: int. Sampled negatives per positive (binary task).
        recommend_candidates: int. Candidates the towers retrieve for the
            two-stage `recommend` model, whose re-ranker is trained on the
            validation pairs (0: no two-stage model).
        reranker_epochs: int. Most epochs of the re-ranker (it stops early
            on a held-out fifth of its users).
        item_neighbors: int. Per item, the strongest EASE item-item weights
            kept for the re-ranker's `item_item_score` feature (EASE's `l2`
            chosen on validation; 0, or over 20,000 items: no such feature).
        ease_baseline: bool. Evaluate the item-item baselines beside
            popularity: EASE (Steck 2019, `l2` chosen on validation), the
            strongest baseline of `benchmarks/recommender_quality.py`, and
            item-kNN (cosine, neighbors chosen on validation), each fit on
            the same pairs as the towers. Needs a validation split and at
            most 20,000 items (otherwise skipped, saying why in the report).
        refit: bool. After choosing the epochs on validation, retrain the
            towers on training + validation for that many epochs (the
            exported towers and the test figures are the refit ones).
        user_model: str. How a user becomes a query: `"mean"` (the user
            tower over their text, id and mean history embedding) or
            `"sequence"` (a causal transformer over their last
            `max_history` items in time order, trained to predict each next
            item; served by user id and, from recent item ids alone, by the
            `next_items` export).
        max_history: int. Latest items the sequence model reads.
        sequence_layers, sequence_heads, sequence_dropout: its transformer.
        sequence_epochs: int. Most epochs of the sequence model (early
            stopping on the validation loss).
        sequence_batch_size: int. Windows of `max_history` steps per batch.
        sequence_loss: str. `"auto"` (the full softmax over the catalogue up
            to `FULL_SOFTMAX_MAX_ITEMS` items, sampled softmax with log-Q
            correction beyond), `"softmax"` or `"sampled_softmax"`.
        sequence_temperature: float. Divides its cosine logits.
        sequence_time_gaps: bool. The sequence model also reads the time
            since each item's predecessor (bucketed log seconds; needs
            timestamps); `next_items` then takes `recent_timestamps`.
        mlflow_experiment: str. MLflow experiment name.

    The run settings (`seed`, `output_dir`, `cache`, `distribute`, `target`,
    `mlflow`) are `keras_rec.training.RunConfig`'s.
    """

    data: str | None = flag(
        None, "local MovieLens-100K directory (RecBole or GroupLens files; default: fetch)"
    )
    interactions: str | None = flag(
        None, "your interactions (CSV/TSV/Parquet file or Parquet directory; default MovieLens)"
    )
    user_column: str = flag("user_id", "user id column of --interactions")
    item_column: str = flag("item_id", "item id column of --interactions")
    rating_column: str | None = flag(None, "rating column of --interactions")
    timestamp_column: str | None = flag(None, "timestamp column (temporal, leave-last-out)")
    min_rating: float | None = flag(None, "interactions rated below this are not positives")
    items: str | None = flag(None, "item catalogue (CSV/TSV/Parquet)")
    item_id_column: str = flag("item_id", "id column of --items / --item-embeddings")
    item_text_template: str | None = flag(
        None, 'item text from --items columns: "{title}. {genres}"'
    )
    item_embeddings: str | None = flag(None, "Parquet of item ids and `embedding` lists")
    users: str | None = flag(None, "user table (CSV/TSV/Parquet)")
    user_id_column: str = flag("user_id", "id column of --users / --user-embeddings")
    user_text_template: str | None = flag(None, "user text from --users columns")
    user_embeddings: str | None = flag(None, "Parquet of user ids and `embedding` lists")
    test_interactions: str | None = flag(None, "held-out interactions to evaluate on")
    split: str = flag("random", choices=("random", "temporal", "leave-last-out"))
    test_fraction: float = flag(0.2, "held out by --split random / temporal")
    leave_last: int = flag(1, "interactions per user held out by --split leave-last-out")
    validation_fraction: float = flag(
        0.1, "training share carved out for early stopping, tuning and the re-ranker"
    )
    eval_users: int | None = flag(None, "evaluate a seeded sample of this many test users")
    model: str | None = flag(None, "sentence-transformer path or id (default: embedded MiniLM)")
    hub_dir: str | None = flag(None, "existing `keras-rec export-hub` output to use instead")
    encoder_precision: str = flag(
        "float32",
        "precision of the exported TF Hub encoder inside the served models (bfloat16: "
        "faster on AMX CPUs, cosine >= 0.999 to float32; inference only)",
        choices=PRECISIONS,
    )
    epochs: int = 10
    batch_size: int = 512
    learning_rate: float = 1e-3
    loss: str = flag("softmax", choices=("softmax", "sampled_bce"))
    temperature: float = 0.1
    log_q: bool = flag(True, "no log-Q correction of in-batch negatives")
    num_negatives: int = flag(4, "negatives per user with --loss sampled_bce")
    id_dropout: float = 0.15
    output_dim: int = 128
    hidden_units: Sequence[int] = flag((256,), "hidden layers of each tower")
    dropout: float = 0.1
    weight_decay: float = 1e-5
    k: int = flag(10, "items returned by the served retrieval")
    index: str = flag(
        "auto",
        "item index of the served retrieval models: exact brute force, or an IVF index "
        "(k-means partitions, core TF ops) with nprobe tuned at export; auto: IVF from "
        "100,000 items",
        choices=INDEX_TYPES,
    )
    index_recall: float = flag(
        DEFAULT_TARGET_RECALL,
        "recall@k against exact that the IVF index's nprobe must reach on a sample of users",
    )
    index_storage: str = flag(
        STORAGES[0], "how the IVF index stores item vectors", choices=STORAGES
    )
    cold_start_fraction: float = flag(
        0.0, "share of items held out of training for the cold-start evaluation"
    )
    max_ratings: int | None = flag(None, "use only the first ratings (quick runs)")
    ranker_task: str = flag(
        "binary",
        "the `ranker` export (a user-item pair scorer, not the two-stage re-ranker): binary, "
        "rated vs sampled never-rated items (test AUC), or rating, the rating (test RMSE)",
        choices=("binary", "rating"),
    )
    ranker_epochs: int = flag(3, "epochs of the `ranker` export (0: exported untrained)")
    ranker_negatives: int = flag(
        4, "sampled never-rated items per rated pair, for the binary ranker's training and test AUC"
    )
    recommend_candidates: int = flag(
        100, "candidates the two-stage `recommend` model re-ranks (0: no two-stage model)"
    )
    reranker_epochs: int = flag(30, "most epochs of the re-ranker (early stopping)")
    item_neighbors: int = flag(1000, "EASE neighbors per item for the re-ranker (0: none)")
    ease_baseline: bool = flag(True, "no item-item baselines (EASE, item-kNN) beside popularity")
    refit: bool = flag(True, "no refit of the towers on training + validation")
    user_model: str = flag(
        "mean",
        "mean: the user tower over text, id and mean history; sequence: a causal transformer "
        "over the user's latest items in time order (also served as `next_items`)",
        choices=USER_MODELS,
    )
    max_history: int = flag(50, "latest items the sequence model reads")
    sequence_layers: int = flag(2, "transformer blocks of the sequence model")
    sequence_heads: int = flag(2, "attention heads of the sequence model")
    sequence_dropout: float = 0.2
    sequence_epochs: int = flag(40, "most epochs of the sequence model (early stopping)")
    sequence_batch_size: int = flag(64, "windows of --max-history steps per batch")
    sequence_loss: str = flag(
        "auto",
        "auto: full softmax over the catalogue up to 20,000 items, sampled softmax with "
        "log-Q correction beyond",
        choices=("auto", *SEQUENCE_LOSSES),
    )
    sequence_temperature: float = 0.1
    sequence_time_gaps: bool = flag(
        False,
        "the sequence model also reads the time between consecutive items (bucketed log "
        "seconds; needs timestamps; `next_items` then takes `recent_timestamps`)",
    )
    mlflow_experiment: str = "keras_rec-recommender"


def check_recommender_config(config: RecommenderTrainingConfig) -> None:
    """Raises `ValueError` naming the first setting of `config` out of its range."""
    require_positive_ints(
        config,
        (
            "epochs", "batch_size", "k", "output_dim", "max_history", "sequence_layers",
            "sequence_heads", "sequence_epochs", "sequence_batch_size",
        ),
    )  # fmt: skip
    if config.user_model not in USER_MODELS:
        raise ValueError(
            f"`user_model` must be one of {USER_MODELS}. Received: {config.user_model!r}"
        )
    if config.sequence_time_gaps and config.user_model != "sequence":
        raise ValueError(
            "`sequence_time_gaps` is an input of the sequence model: it needs "
            f"`user_model='sequence'`. Received: user_model={config.user_model!r}"
        )
    if config.sequence_time_gaps and config.interactions and not config.timestamp_column:
        raise ValueError(
            "`sequence_time_gaps` needs the time of each interaction: pass `timestamp_column` "
            "(`--timestamp-column`)."
        )
    if not 0.0 < config.index_recall <= 1.0:
        raise ValueError(f"`index_recall` must be in (0, 1]. Received: {config.index_recall!r}")
    if config.ranker_epochs < 0:
        raise ValueError(f"`ranker_epochs` must be >= 0. Received: {config.ranker_epochs!r}")
    if not 0.0 <= config.cold_start_fraction < 1.0:
        raise ValueError(
            f"`cold_start_fraction` must be in [0, 1). Received: {config.cold_start_fraction!r}"
        )
    if not 0.0 <= config.validation_fraction < 1.0:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1). Received: {config.validation_fraction!r}"
        )
    for name in ("recommend_candidates", "item_neighbors"):
        if getattr(config, name) < 0:
            raise ValueError(f"`{name}` must be >= 0. Received: {getattr(config, name)!r}")
    if config.recommend_candidates and config.reranker_epochs < 1:
        raise ValueError(f"`reranker_epochs` must be >= 1. Received: {config.reranker_epochs!r}")
    if config.eval_users is not None and config.eval_users < 1:
        raise ValueError(f"`eval_users` must be >= 1. Received: {config.eval_users!r}")
    if config.interactions is None:
        given = [
            name
            for name in (
                "items",
                "item_embeddings",
                "users",
                "user_embeddings",
                "test_interactions",
            )
            if getattr(config, name)
        ]
        if given:
            raise ValueError(
                f"`{given[0]}` describes your own data: pass `interactions` "
                "(`--interactions PATH`) too, or leave it out to train on MovieLens-100K."
            )
    if config.max_ratings is not None and config.max_ratings < 100:
        raise ValueError(f"`max_ratings` must be >= 100. Received: {config.max_ratings!r}")
    if config.ranker_task not in ("binary", "rating"):
        raise ValueError(
            f"`ranker_task` must be 'binary' or 'rating'. Received: {config.ranker_task!r}"
        )


def index_settings(config: RecommenderTrainingConfig):
    """The `ItemIndexSettings` of the served models (`--index`, `--index-recall`, ...)."""
    from keras_rec.recommender.index.item_index import ItemIndexSettings

    return ItemIndexSettings(
        config.index, config.index_recall, config.index_storage, seed=config.seed
    )
