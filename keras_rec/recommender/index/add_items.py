"""`add_items`: new catalogue items into an exported `retrieval` or `next_items` model,
without retraining."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from keras_rec.recommender.index.item_index import INDEX_FILE, index_metadata, user_sample
from keras_rec.recommender.index.recall_recheck import recheck_recall

ITEM_TOWER = "item_tower"


def add_items(
    export_dir: str,
    items: str,
    *,
    item_id_column: str | None = None,
    item_text_template: str | None = None,
    cache: str | None = None,
) -> dict[str, Any]:
    """Writes the next version of a `retrieval` (or `next_items`) export with `items` added.

    The new items have text and no interactions, so their vectors are what
    the item tower gives an item it never saw (`id` 0): their texts are
    embedded by the run's sentence-transformer (through the embedding cache)
    and passed through the exported `item_tower` version the retrieval was
    built with. An IVF index puts each new vector into its nearest
    partition (centroids and `nprobe` unchanged); an exact index appends
    it. Once the catalogue has grown by `RECHECK_GROWTH` (10%) or more
    since its IVF recall was measured, the recall at the kept `nprobe` is
    measured again on the same sample of users (seen items excluded) and
    recorded, with whether it still reaches the target (`recheck_recall`).
    Existing items keep their rows and ids, users their vectors and seen
    items, so a user's results change only where a new item enters them.
    The new version goes through every export check and appears atomically;
    the source version is left as it is.

    A `next_items` export (`--user-model sequence`) gets the new items both
    as answers and as ids a request may name among its recent items (their
    vectors join the history table); its encoder is rebuilt from the
    export's `assets.extra/`. It holds no user queries, so an IVF recall is
    not re-measured there (`recall_rechecked` false, with the reason).

    Args:
        export_dir: str. `<base>/retrieval` or `<base>/next_items` (its
            latest version is extended) or one version directory.
        items: str. CSV/TSV/Parquet of the new items.
        item_id_column: str or None. Their id column (default: the run's
            `item_id_column`).
        item_text_template: str or None. Their text, a format string over
            the columns (default: the run's `--item-text-template`). Use the
            template the catalogue was embedded with, or the new vectors
            will not be comparable.
        cache: str or None. Embedding cache root (default: the run's).

    Returns:
        A JSON-ready summary: new version and path, items added, the index.
    """
    from keras_rec.serving.saved_model_export import METADATA_FILE

    source = _version_dir(export_dir)
    with open(os.path.join(source, METADATA_FILE)) as file:
        metadata = json.load(file)["metadata"]
    config = metadata.get("config") or {}
    template = item_text_template or config.get("item_text_template")
    if not template:
        raise ValueError(
            "The new items need `--item-text-template` (the run had none: MovieLens "
            'texts are "{title} ({year}). Genres: {genres}." style; use the template '
            "your catalogue was embedded with)."
        )
    id_column = item_id_column or config.get("item_id_column") or "item_id"
    tables = _served_tables(source)
    new_ids, texts, titles = _new_items(items, id_column, template, tables["item_ids"])
    tower_dir, tower_version = _item_tower(source, metadata)
    new_vectors = _new_item_vectors(config, cache, tower_dir, texts)

    index, item_vectors = _extended_index(tables, new_vectors, int(metadata["k"]))
    item_ids = np.concatenate([tables["item_ids"], new_ids])
    titles = [*tables["item_titles"], *titles]
    if "history_vectors" in tables:
        model, examples, recheck = _next_items(source, tables, index, new_vectors, item_ids, titles)
    else:
        model, examples, recheck = _user_retrieval(tables, index, item_vectors, item_ids, titles)
    report = {**json.loads(model.index_json), "added_items": len(new_ids)}
    report.update(recheck(_recorded_index(source)))
    metadata = {
        **metadata,
        "index": index_metadata(report),
        "item_tower_version": tower_version,
        "based_on_version": int(os.path.basename(source)),
        "added_items": len(new_ids),
    }
    result = _export_next_version(model, source, examples, report, metadata)
    return {
        "path": result.path,
        "version": result.version,
        "based_on": source,
        "added_items": len(new_ids),
        "items": len(item_ids),
        "index": index_metadata(report),
    }


def _user_retrieval(tables: dict, index, item_vectors, item_ids, titles):
    """`(UserRetrieval, example inputs, recall recheck)` of an extended `retrieval`."""
    from keras_rec.recommender.serving.retrieval_serving import UserRetrieval

    seen = _seen_items(tables)
    model = UserRetrieval(
        tables["user_vectors"],
        tables["user_ids"],
        item_vectors,
        item_ids,
        titles,
        k=index.k,
        popular_items=tables["popular_items"],
        popular_scores=tables["popular_scores"],
        seen_items=seen,
        index=index,
    )
    sample = user_sample(tables["user_vectors"], seen)
    user_ids = tables["user_ids"]
    examples = {"user_id": np.resize(user_ids, max(2, min(4, len(user_ids))))}
    return model, examples, lambda recorded: recheck_recall(recorded, index, item_vectors, sample)


def _next_items(source: str, tables: dict, index, new_vectors, item_ids, titles):
    """`(NextItems, example inputs, recall recheck)` of an extended `next_items` export."""
    from keras_rec.recommender.serving.next_items import PADDING_IDS, NextItems, load_encoder

    old_count = len(tables["history_vectors"])
    model = NextItems(
        load_encoder(source),
        np.concatenate([tables["history_vectors"], new_vectors]),
        item_ids,
        titles,
        k=index.k,
        popular_items=tables["popular_items"],
        popular_scores=tables["popular_scores"],
        index=index,
        gap_table=tables.get("time_gap_vectors"),
    )
    padding = PADDING_IDS["string" if item_ids.dtype == object else "int64"]
    examples = {
        "recent_item_ids": np.array(
            [[item_ids[0], item_ids[old_count]], [padding, item_ids[-1]]], dtype=item_ids.dtype
        )
    }
    if model.gap_vectors is not None:  # two clicks 5 minutes apart
        examples["recent_timestamps"] = np.array([[0, 300], [0, 300]], np.int64)

    def recheck(recorded):
        if recorded.get("index") != "ivf":
            return {}
        return {
            "recall_rechecked": False,
            "recall_not_rechecked_because": "a next_items export holds no user queries to "
            "measure on; retrain to tune nprobe again",
        }

    return model, examples, recheck


def _item_tower(source: str, metadata: dict) -> tuple[str, int]:
    """`(item tower version directory, version)`: the tower the retrieval was built with."""
    from keras_rec.serving import versioned_dir

    tower_version = metadata.get("item_tower_version")
    tower_dir = os.path.join(os.path.dirname(os.path.dirname(source)), ITEM_TOWER)
    versions = versioned_dir.list_versions(tower_dir)
    if tower_version is None and versions:
        tower_version = versions[-1]
    if tower_version not in versions:
        raise FileNotFoundError(
            f"The item tower the retrieval was built with ({tower_dir}/{tower_version}) is "
            "missing: the new items' vectors must come from it."
        )
    return os.path.join(tower_dir, str(tower_version)), tower_version


def _new_item_vectors(config: dict, cache: str | None, tower_dir: str, texts) -> np.ndarray:
    """The new items' texts embedded by the run's sentence-transformer, through the tower."""
    from keras_rec.embeddings.text_embedder import text_embedder
    from keras_rec.hub.local_hub import hub_modules

    hub_dir, sentence_encoder = hub_modules(
        config.get("model"), config.get("hub_dir"), config.get("encoder_precision", "float32")
    )
    embed = text_embedder(sentence_encoder, cache or config.get("cache"), hub_dir)
    return _tower_vectors(tower_dir, np.asarray(embed(texts), np.float32))


def _seen_items(tables: dict):
    """The served seen items as `UserItemLists`, or None when the export has none."""
    from keras_rec.recommender.data.user_item_lists import UserItemLists

    if "seen_values" not in tables:
        return None
    splits = tables["seen_splits"][:-1]  # the last row is the empty one for unknown users
    users = np.repeat(np.arange(len(splits) - 1), np.diff(splits))
    return UserItemLists(users, tables["seen_values"], len(splits) - 1)


def _export_next_version(model, source: str, examples: dict, report: dict, metadata: dict):
    """The extended model exported as the next version beside `source`, checked."""
    from keras_rec.serving.saved_model_export import export

    extra = {INDEX_FILE: json.dumps(report, indent=1)}
    if hasattr(model, "encoder_assets"):
        extra.update(model.encoder_assets())
    metrics_path = os.path.join(source, "assets.extra", "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as file:
            extra["metrics.json"] = file.read()
    model_dir = os.path.dirname(source)
    return export(
        model,
        os.path.dirname(model_dir),
        os.path.basename(model_dir),
        examples=examples,
        signatures={"serving_default": model.serve},
        target=(metadata.get("config") or {}).get("target") or None,
        assets_extra=extra,
        metadata=metadata,
    )


def _version_dir(export_dir: str) -> str:
    from keras_rec.serving import versioned_dir

    export_dir = os.path.abspath(export_dir)
    if os.path.exists(os.path.join(export_dir, "saved_model.pb")):
        return export_dir
    versions = versioned_dir.list_versions(export_dir)
    if not versions:
        raise FileNotFoundError(
            f"No SavedModel version under {export_dir}: pass a `retrieval` or `next_items` "
            "export (`<output-dir>/retrieval`) or one of its version directories."
        )
    return os.path.join(export_dir, str(versions[-1]))


def _recorded_index(version_dir: str) -> dict[str, Any]:
    """The index report a version was exported with (`{}` if it has none)."""
    path = os.path.join(version_dir, "assets.extra", INDEX_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as file:
        return json.load(file)


def _served_tables(version_dir: str) -> dict[str, np.ndarray]:
    """The tables of a `UserRetrieval` (or `NextItems`) SavedModel: variables by name, user
    ids from its table."""
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    tables = {v.name.rsplit(":", 1)[0]: v.numpy() for v in loaded.tf_variables}
    if "history_vectors" in tables and "item_ids" in tables:
        return _decoded(tables)
    if "user_vectors" not in tables or not loaded.resources:
        raise ValueError(
            f"{version_dir} is not a `retrieval` or `next_items` export: it has no user table "
            "and no item history table."
        )
    # The user id table's keys have the dtype of the `user_id` input.
    key_dtype = loaded.signatures["serving_default"].structured_input_signature[1]["user_id"].dtype
    keys, rows = tf.raw_ops.LookupTableExportV2(
        table_handle=loaded.resources[0].resource_handle, Tkeys=key_dtype, Tvalues=tf.int64
    )
    user_ids = np.empty(len(rows), object if key_dtype == tf.string else np.int64)
    user_ids[rows.numpy()] = [
        k.decode() if isinstance(k, bytes) else k for k in keys.numpy().tolist()
    ]
    tables["user_ids"] = user_ids
    return _decoded(tables)


def _decoded(tables: dict) -> dict:
    """`tables` with the string item ids and titles as `str`."""
    if tables["item_ids"].dtype == object:
        tables["item_ids"] = np.asarray([i.decode() for i in tables["item_ids"]], object)
    tables["item_titles"] = [t.decode() for t in tables["item_titles"]]
    return tables


def _new_items(path: str, id_column: str, template: str, existing_ids: np.ndarray):
    from keras_rec.data.errors import DataValidationError
    from keras_rec.recommender.data.user_data import read_text_table

    source = f"File '{path}'"
    index, texts, titles = read_text_table(path, id_column, template, "item")
    if not len(texts):
        raise DataValidationError(f"{source} has no data rows.")
    new_ids = index.ids
    if existing_ids.dtype == object:  # served as strings: "7" is the id 7 written down
        new_ids = np.asarray([str(i) for i in new_ids.tolist()], object)
    elif new_ids.dtype == object:
        raise DataValidationError(
            f"{source}: the served item ids are integers; column `{id_column}` holds "
            f"others, e.g. {new_ids[:3].tolist()}."
        )
    taken = sorted(set(new_ids.tolist()) & set(existing_ids.tolist()))
    if taken:
        raise DataValidationError(
            f"{source}: ids {taken[:5]} are already served ({len(taken)} in all); "
            "`add-items` adds new items only."
        )
    return new_ids, texts, titles


def _tower_vectors(tower_dir: str, embeddings: np.ndarray) -> np.ndarray:
    """The item tower's vectors of items known by text only (`id` 0 when it has an id input)."""
    import tensorflow as tf

    serve = tf.saved_model.load(tower_dir).signatures["serving_default"]
    names = set(serve.structured_input_signature[1])
    inputs = {"embedding": tf.constant(embeddings)}
    if "id" in names:
        inputs["id"] = tf.zeros([len(embeddings)], tf.int64)
    if "features" in names:
        raise ValueError("This item tower takes `features`; add-items gives items text only.")
    return serve(**inputs)["vector"].numpy()


def _extended_index(tables: dict[str, np.ndarray], new_vectors: np.ndarray, k: int):
    """`(index layer, its item vectors)`: the served index rebuilt with `new_vectors` as rows N.."""
    from keras_rec.recommender.index.brute_force_top_k import BruteForceTopK
    from keras_rec.recommender.index.ivf_top_k import IVFTopK

    prefix = "item_index/"
    own = {name[len(prefix) :]: value for name, value in tables.items() if name.startswith(prefix)}
    if "centroids" in own:
        num_items, dim = own["vectors"].shape
        old = IVFTopK(
            k=k,
            num_candidates=num_items,
            dim=dim,
            num_partitions=len(own["centroids"]),
            nprobe=int(own["nprobe"]),
            storage=own["vectors"].dtype.name,
        )
        for name, value in own.items():
            getattr(old, name if name != "nprobe" else "nprobe_variable").assign(value)
        vectors = np.concatenate([old.item_vectors(), new_vectors])
        index = IVFTopK(
            vectors,
            k=old.k,
            partitions=old.partitions().add(new_vectors),
            nprobe=old.nprobe,
            storage=old.storage,
            name="item_index",
        )
        return index, vectors
    vectors = np.concatenate([own["candidates_t"].T, new_vectors])
    return BruteForceTopK(vectors, np.arange(len(vectors)), k=k, name="item_index"), vectors
