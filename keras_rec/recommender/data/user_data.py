"""`load_user_inputs`: the user's own interactions, catalogue and users -> `RecommenderInputs`."""

from __future__ import annotations

import dataclasses
import logging
import string
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from keras_rec.data.errors import DataValidationError
from keras_rec.recommender.data.id_index import IdIndex
from keras_rec.recommender.data.interaction_reader import (
    InteractionRows,
    keep_last_pairs,
    read_interaction_rows,
)
from keras_rec.recommender.data.interaction_splits import holdout_mask
from keras_rec.recommender.data.recommender_inputs import RecommenderInputs, history_embeddings

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Catalogue:
    """Users or items: their id index, embeddings, titles, and where the embeddings came from.

    Args:
        index: the `IdIndex` of the ids (row order).
        embeddings: float32 `[rows, D]`, or None until `texts` are encoded.
        titles: str per row.
        source: str. The file the embeddings came from (error messages).
        texts: str per row to encode, or None (embeddings from a file).
    """

    index: IdIndex
    embeddings: np.ndarray | None
    titles: list[str]
    source: str
    texts: list[str] | None = None

    def encode(self, embed) -> None:
        """Embeds `texts` (once) with the function `embed()` returns."""
        if self.embeddings is None:
            self.embeddings = np.asarray(embed()(self.texts), np.float32)


def load_user_inputs(
    config, embed: Callable[[], Callable[[list[str]], np.ndarray]]
) -> tuple[RecommenderInputs, dict[str, Any]]:
    """`(RecommenderInputs, data report)` of the files named by a `RecommenderTrainingConfig`.

    Args:
        config: a `RecommenderTrainingConfig` with `interactions` set.
        embed: called (once, only when texts must be encoded) to get the
            text embedding function, list of str -> float32 `[N, D]`.

    Raises:
        DataValidationError: for every data problem, naming file, column
            and rows. ValueError for inconsistent settings.
    """
    items = _catalogue(config, "item")
    users = _catalogue(config, "user") if _has_user_data(config) else None
    _check_widths(items, users)
    user_index = users.index if users is not None else IdIndex(source="users")
    read = dict(
        user_column=config.user_column,
        item_column=config.item_column,
        user_index=user_index,
        item_index=items.index,
        rating_column=config.rating_column,
        timestamp_column=config.timestamp_column,
        min_rating=config.min_rating,
    )
    rows = read_interaction_rows(config.interactions, add_users=users is None, **read)
    rows = keep_last_pairs(rows, len(items.index))
    report: dict[str, Any] = {"interactions": len(rows), "dropped": dict(rows.dropped)}
    train, validation, test, protocol = _split(config, rows, read, users is not None, report)
    # Texts are encoded last: every file is checked before the slow part.
    for catalogue in (items, users):
        if catalogue is not None:
            catalogue.encode(embed)
    _check_widths(items, users)
    inputs = _inputs(items, users, len(user_index), user_index.ids, train, validation, test)
    trained_users = np.zeros(inputs.num_users, bool)
    trained_users[train.users] = True
    trained_items = inputs.item_id_index > 0
    report.update(
        protocol=protocol,
        train=len(train),
        validation=len(validation),
        test=len(test),
        items=inputs.num_items,
        users=inputs.num_users,
        test_pairs_with_users_unseen_in_training=int((~trained_users[test.users]).sum()),
        test_pairs_with_items_unseen_in_training=int((~trained_items[test.items]).sum()),
        id_type=items.index.kind,
    )
    if report["test_pairs_with_items_unseen_in_training"]:
        logger.info(
            "%d test pairs name items never seen in training: kept, scored from their text.",
            report["test_pairs_with_items_unseen_in_training"],
        )
    return inputs, report


def _check_widths(items: Catalogue, users: Catalogue | None) -> None:
    if users is None or items.embeddings is None or users.embeddings is None:
        return
    if users.embeddings.shape[1] != items.embeddings.shape[1]:
        raise DataValidationError(
            f"Embedding widths differ: {users.source} has width {users.embeddings.shape[1]}, "
            f"{items.source} has width {items.embeddings.shape[1]}. Embed users and items "
            "with the same sentence-transformer."
        )


def _has_user_data(config) -> bool:
    return bool(config.users or config.user_embeddings)


def _split(config, rows, read: dict, known_users: bool, report: dict):
    """`(train, validation, test, protocol)` rows: the test file or the held-out split,
    then validation carved from training by the same kind of split."""
    if config.test_interactions:
        train = rows
        test = read_interaction_rows(
            config.test_interactions,
            add_users=False,
            unknown_users="error" if known_users else "drop",
            **read,
        )
        report["test_dropped"] = test.dropped
        protocol = f"test file {config.test_interactions}"
    else:
        held = holdout_mask(
            config.split,
            rows.users,
            rows.timestamps,
            config.test_fraction,
            config.leave_last,
            config.seed,
        )
        train, test = rows.take(~held), rows.take(held)
        protocol = _protocol(config)
    validation = train.take(np.zeros(len(train), bool))
    if config.validation_fraction:
        held = holdout_mask(
            config.split,
            train.users,
            train.timestamps,
            config.validation_fraction,
            config.leave_last,
            config.seed + 1,
        )
        train, validation = train.take(~held), train.take(held)
    if not len(train) or not len(test):
        raise DataValidationError(
            f"The split left {len(train)} training and {len(test)} test interactions: "
            "both must be non-empty."
        )
    return train, validation, test, protocol


def _protocol(config) -> str:
    if config.split == "leave-last-out":
        return f"leave-last-out(last={config.leave_last} per user)"
    return f"{config.split}(fraction={config.test_fraction}, seed={config.seed})"


def _catalogue(config, kind: str) -> Catalogue:
    """The item (or user) catalogue from its table + template, or its embedding file."""
    from keras_rec.data.table_chunks import read_embedding_file

    table_path = getattr(config, f"{kind}s")
    id_column = getattr(config, f"{kind}_id_column")
    template = getattr(config, f"{kind}_text_template")
    embeddings_path = getattr(config, f"{kind}_embeddings")
    flag = kind.replace("_", "-")
    if embeddings_path and template:
        raise ValueError(
            f"Give `--{flag}-embeddings` or `--{flag}-text-template`, not both: the "
            "embeddings would replace the texts."
        )
    if embeddings_path:
        ids, vectors = read_embedding_file(embeddings_path, id_column)
        source = f"File '{embeddings_path}'"
        index = IdIndex(ids, f"{source} column `{id_column}`")
        return Catalogue(index, vectors, [str(i) for i in index.ids], source)
    if not table_path or not template:
        raise ValueError(
            f"The {kind}s need `--{flag}s PATH` with `--{flag}-text-template`, or "
            f"`--{flag}-embeddings PATH`."
            + (
                " (Without either, users are represented by their history.)"
                if kind == "user"
                else ""
            )
        )
    index, texts, titles = read_text_table(table_path, id_column, template, flag)
    return Catalogue(index, None, titles, f"File '{table_path}' (encoded texts)", texts)


def read_text_table(
    path: str, id_column: str, template: str, flag: str
) -> tuple[IdIndex, list[str], list[str]]:
    """`(ids, texts, titles)` of a catalogue table: texts from `template`, titles its first field.

    Args:
        path: str. CSV/TSV/Parquet, local or an fsspec URL.
        id_column: str. The id column (ids must be present and unique).
        template: str. A format string over the columns.
        flag: str. The flag prefix named in errors, e.g. `"item"`.
    """
    from keras_rec.data._table_io import load_table, table_format

    source = f"File '{path}'"
    table = load_table(path, as_strings=table_format(path) != "parquet")
    fields = template_fields(template)
    missing = [c for c in [id_column, *fields] if c not in table.columns]
    if missing:
        raise DataValidationError(
            f"{source} has no column(s) {missing} (named by `--{flag}-id-column` or "
            f"the template {template!r}). Columns present: {list(table.columns)}."
        )
    index = IdIndex(table[id_column].to_numpy(), f"{source} column `{id_column}`")
    texts = render_texts(table, template, source)
    titles = table[fields[0]].fillna("").astype(str).tolist() if fields else texts
    return index, texts, titles


def template_fields(template: str) -> list[str]:
    """The column names a format string reads, in order, once each."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"The text template {template!r} is not a format string: {e}") from None
    names = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        name = field.split(".")[0].split("[")[0]
        if not name or name.isdigit():
            raise ValueError(
                f"The text template {template!r} must name columns, as in "
                f'"{{title}}. {{genres}}". Received a positional field.'
            )
        if name not in names:
            names.append(name)
    return names


def render_texts(table: pd.DataFrame, template: str, source: str) -> list[str]:
    """`template` formatted with each row's columns; missing values render as ""."""
    fields = template_fields(template)
    columns = {name: table[name].astype(object).where(table[name].notna(), "") for name in fields}
    texts = []
    for position, values in enumerate(zip(*columns.values(), strict=True)):
        try:
            texts.append(template.format_map(dict(zip(fields, values, strict=True))))
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise DataValidationError(
                f"{source}: the text template {template!r} fails on row {position + 1}: {e}"
            ) from None
    return texts


def _inputs(items, users, num_users, user_ids, train, validation, test) -> RecommenderInputs:
    history = history_embeddings(train.users, train.items, items.embeddings, num_users)
    trained_items = np.zeros(len(items.index), bool)
    trained_items[train.items] = True
    trained_users = np.zeros(num_users, bool)
    trained_users[train.users] = True

    def ratings(rows: InteractionRows):
        return rows.ratings if rows.ratings is not None else np.zeros(0, np.float32)

    def times(rows: InteractionRows):
        return rows.timestamps if rows.timestamps is not None else np.zeros(0, np.float64)

    return RecommenderInputs(
        item_ids=items.index.ids,
        item_titles=items.titles,
        item_texts=[],
        item_embeddings=items.embeddings,
        item_id_index=np.where(trained_items, np.arange(1, len(items.index) + 1), 0),
        user_ids=user_ids,
        user_texts=[],
        user_embeddings=users.embeddings if users is not None else history,
        user_history=history,
        user_id_index=np.where(trained_users, np.arange(1, num_users + 1), 0),
        train_users=train.users,
        train_items=train.items,
        test_users=test.users,
        test_items=test.items,
        cold_items=np.flatnonzero(~trained_items),
        train_ratings=ratings(train),
        test_ratings=ratings(test),
        val_users=validation.users,
        val_items=validation.items,
        val_ratings=ratings(validation),
        user_text=users is not None,
        train_times=times(train),
        val_times=times(validation),
    )
