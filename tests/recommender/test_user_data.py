"""`keras-rec train-recommender` on the user's own files: CLI runs, splits, bad input, streaming."""

import contextlib
import io
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from script_runs import run_cli

from keras_rec.cli import main
from keras_rec.data import DataValidationError
from keras_rec.recommender.data.interaction_splits import holdout_mask
from keras_rec.recommender.data.user_data import load_user_inputs
from keras_rec.recommender.train_recommender import RecommenderTrainingConfig
from keras_rec.serving.fresh_process import answer_each_in_fresh_process

RATINGS = 3000


# --- Files written from real MovieLens rows ---------------------------------


@pytest.fixture(scope="module")
def shop(movielens_dir, tmp_path_factory):
    """MovieLens rows rewritten as a shop's files: string ids, a catalogue, Parquet and CSV."""
    import keras_rec

    data = keras_rec.data.movielens_100k(path=movielens_dir)
    root = tmp_path_factory.mktemp("shop")
    ratings = data.ratings.iloc[:RATINGS]
    items = pd.DataFrame(
        {
            "item_code": [f"m{int(i):05d}" for i in data.items["item_id"]],
            "title": data.items["title"].astype(str),
            "genres": [None if n % 7 == 0 else g for n, g in enumerate(_genre_text(data.items))],
        }
    )
    items.to_csv(root / "items.csv", index=False)
    interactions = pd.DataFrame(
        {
            "user_code": [f"u{int(u)}" for u in ratings["user_id"]],
            "item_code": [f"m{int(i):05d}" for i in ratings["item_id"]],
            "stars": ratings["rating"].to_numpy(np.float64),
            "ts": ratings["timestamp"].to_numpy(np.int64),
        }
    )
    interactions.to_parquet(root / "ratings.parquet", index=False)
    parts = root / "ratings_parts"
    parts.mkdir()
    for index, rows in enumerate(np.array_split(np.arange(len(interactions)), 3)):
        interactions.iloc[rows].to_parquet(parts / f"part-{index}.parquet", index=False)
    numeric = interactions.assign(
        user_code=ratings["user_id"].to_numpy(), item_code=ratings["item_id"].to_numpy()
    )
    numeric.to_csv(root / "ratings_numeric.csv", index=False)
    rng = np.random.default_rng(0)
    _write_embeddings(root / "item_vectors.parquet", "item_code", data.items["item_id"], rng, 24)
    users = np.unique(ratings["user_id"])
    _write_embeddings(root / "user_vectors.parquet", "user_code", users, rng, 24)
    return {"root": root, "interactions": interactions, "items": items}


def _genre_text(items: pd.DataFrame) -> list[str]:
    return [", ".join(genres) for genres in items["genres"]]


def _write_embeddings(path, id_column, ids, rng, width):
    vectors = rng.normal(size=(len(ids), width)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), width)
    pq.write_table(
        pa.table({id_column: pa.array(np.asarray(ids, np.int64)), "embedding": column}), path
    )


def _run(root, name, *flags, hub_dir=None):
    """`keras-rec train-recommender FLAGS`, as a user types it; its printed summary."""
    out = root / name
    out.mkdir()
    argv = [
        "train-recommender",
        "--output-dir", out / "saved_models",
        "--cache", out / "cache",
        "--epochs", "1",
        "--batch-size", "128",
        "--ranker-epochs", "1",
        *flags,
    ]  # fmt: skip
    if hub_dir:
        argv += ["--hub-dir", hub_dir]
    summary = run_cli(argv, out)
    with open(summary["metrics_json"]) as file:
        summary["report"] = json.load(file)["report"]
    return summary


# --- End to end through the CLI ----------------------------------------------


@pytest.fixture(scope="module")
def leave_last_out_run(shop, tiny_hub_dir):
    """The issue's command: string ids, a template, leave-last-out, a validation split; the
    sequence model (`--user-model sequence`) as the user model, reading time gaps."""
    root = shop["root"]
    return _run(
        root,
        "leave_last_out",
        "--interactions", str(root / "ratings.parquet"),
        "--user-column", "user_code",
        "--item-column", "item_code",
        "--rating-column", "stars",
        "--timestamp-column", "ts",
        "--items", str(root / "items.csv"),
        "--item-id-column", "item_code",
        "--item-text-template", "{title}. {genres}",
        "--split", "leave-last-out",
        "--validation-fraction", "0.2",
        "--ranker-task", "rating",
        "--user-model", "sequence",
        "--max-history", "8",
        "--sequence-epochs", "2",
        "--sequence-time-gaps",
        hub_dir=tiny_hub_dir,
    )  # fmt: skip


@pytest.fixture(scope="module")
def temporal_run(shop):
    """Numeric ids, `--min-rating`, a temporal split, vectors from files: no encoder."""
    root = shop["root"]
    return _run(
        root,
        "temporal",
        "--interactions", str(root / "ratings_numeric.csv"),
        "--user-column", "user_code",
        "--item-column", "item_code",
        "--rating-column", "stars",
        "--min-rating", "3",
        "--timestamp-column", "ts",
        "--item-embeddings", str(root / "item_vectors.parquet"),
        "--item-id-column", "item_code",
        "--user-embeddings", str(root / "user_vectors.parquet"),
        "--user-id-column", "user_code",
        "--split", "temporal",
        "--test-fraction", "0.25",
        "--model", "/nonexistent/never-loaded",
    )  # fmt: skip


@pytest.fixture(scope="module")
def served(shop, leave_last_out_run, temporal_run):
    """Each run's `retrieval` asked for a known and an unknown user, through TF Serving's
    Session loader, both in one fresh process (as one model server holds both)."""
    interactions = shop["interactions"]
    known = {
        "leave_last_out": interactions["user_code"].iloc[0],
        "temporal": int(interactions["user_code"].str[1:].astype(int).iloc[0]),
    }
    asked = {
        "leave_last_out": np.array([known["leave_last_out"], "nobody"], object),
        "temporal": np.array([known["temporal"], 10**9], np.int64),
    }
    runs = {"leave_last_out": leave_last_out_run, "temporal": temporal_run}
    models = {
        name: (
            runs[name]["exports"]["retrieval"],
            {"ask": ("serving_default", {"user_id": ids})},
        )
        for name, ids in asked.items()
    }
    # The sequence model's `next_items`: a user's recent ids, with padding and unknown ids.
    models["next_items"] = (
        leave_last_out_run["exports"]["next_items"],
        {"ask": ("serving_default", _recent_request(interactions, 0))},
    )
    answered = answer_each_in_fresh_process(models, ["session"])
    for name, report in answered.items():
        assert not report["errors"]["session"], (name, report["errors"])
    return {name: report["answers"]["session"]["ask"] for name, report in answered.items()}


def _recent_request(interactions, row: int, new_item: str | None = None) -> dict:
    """A `next_items` request of `[4, 6]` recent item ids and their timestamps for the user of
    interaction `row`: their last 3 (padded with ""), the same with two unknown ids among
    them, only unknown ids, only padding. With `new_item`, it is the latest item of the
    first two rows, a minute after the one before."""
    user = interactions["user_code"].iloc[row]
    mine = interactions[interactions["user_code"] == user].sort_values("ts", kind="stable")
    last, times = mine["item_code"].iloc[-3:].tolist(), mine["ts"].iloc[-3:].tolist()
    if new_item:
        last, times = [*last[1:], new_item], [*times[1:], times[-1] + 60]
    ids = [
        ["", "", "", *last],
        ["nope", last[0], "", last[1], "m99999x", last[2]],
        ["", "", "", "", "nope", "m99999x"],
        [""] * 6,
    ]
    # Unknown ids and padding carry any time: they are dropped before gaps are taken.
    stamps = [[0, 0, 0, *times], [5, times[0], 0, times[1], 7, times[2]], [0] * 6, [0] * 6]
    return {
        "recent_item_ids": np.array(ids, object),
        "recent_timestamps": np.array(stamps, np.int64),
    }


def test_leave_last_out_on_parquet_and_a_csv_catalogue(shop, leave_last_out_run, served):
    summary = leave_last_out_run
    interactions = shop["interactions"]
    counts = interactions["user_code"].value_counts()
    split = summary["report"]["split"]
    assert split["test"] == int((counts > 1).sum())  # one per user with more than one
    assert split["train"] + split["validation"] + split["test"] == len(interactions)
    assert split["id_type"] == "str" and summary["items"] == len(shop["items"])
    # The sequence model has no user tower: `next_items` serves recent item ids instead.
    assert sorted(summary["exports"]) == sorted(
        ["next_items", "item_tower", "ranker", "retrieval", "recommend", "query_retrieval"]
    )
    assert "user_tower" in summary["exports_skipped"]
    assert summary["report"]["config"]["user_model"] == "sequence"
    assert summary["report"]["config"]["sequence_time_gaps"] is True
    assert "val_loss" in summary["report"]["history"]
    assert 0 < summary["validation"]["retrieval"]["user_recall_at_100"] <= 1
    # `--ranker-task rating`: the ranker regresses the shop's stars, beside the mean's error.
    ranker = summary["report"]["ranker"]
    assert ranker["task"] == "rating" and ranker["test_scored_pairs"] == split["test"]
    assert 0 < ranker["test_rmse"] < 4 and 0 < ranker["train_mean_rmse"] < 4
    # The exact index: both stages rank the same 100 candidates, so the same Recall@100.
    assert summary["two_stage"]["user_recall_at_100"] == summary["user_recall_at_100"]
    # The served retrieval takes the shop's own string ids, through TF Serving's loader.
    user = interactions["user_code"].iloc[0]
    answer = served["leave_last_out"]  # asked for [user, "nobody"]
    assert answer["known_user"].tolist() == [True, False]
    returned = [i.decode() for i in answer["item_ids"][0]]
    assert all(i.startswith("m") and len(i) == 6 for i in returned), returned
    titles = dict(zip(shop["items"]["item_code"], shop["items"]["title"]))
    assert [t.decode() for t in answer["titles"][0]] == [titles[i] for i in returned]
    # Leave-last-out: the user's last interaction is the test one, never excluded as seen.
    mine = interactions[interactions["user_code"] == user].sort_values("ts", kind="stable")
    train_items = set(mine["item_code"].iloc[:-1])
    assert not train_items & set(returned)
    # `next_items`: unknown ids and padding are ignored wherever they sit, the given items
    # are never returned, and a request with no known id gets the popular items.
    recent = _recent_request(interactions, 0)["recent_item_ids"]
    answer = served["next_items"]
    assert answer["used_items"].tolist() == [3, 3, 0, 0]
    np.testing.assert_array_equal(answer["item_ids"][0], answer["item_ids"][1])
    np.testing.assert_allclose(answer["scores"][0], answer["scores"][1], atol=1e-5)
    assert not {i.decode() for i in answer["item_ids"][0]} & set(recent[0].tolist())
    np.testing.assert_array_equal(answer["item_ids"][2], answer["item_ids"][3])
    by_time = interactions.sort_values("ts", kind="stable")
    tested = (
        by_time.groupby("user_code")
        .tail(1)
        .index.intersection(by_time[by_time["user_code"].map(counts) > 1].index)
    )
    popular = interactions.drop(tested)["item_code"].value_counts()
    assert answer["item_ids"][2][0].decode() in set(popular.index[:3].tolist())


def test_add_items_to_next_items_serves_a_new_item_and_reads_it_in_histories(
    shop, leave_last_out_run, tmp_path
):
    """`keras-rec add-items` on the sequence model's `next_items`, asked through TF Serving's
    Session loader: the new item is answered and, named among recent items, read."""
    import shutil

    exports = leave_last_out_run["exports"]
    base = tmp_path / "saved_models"
    for name in ("next_items", "item_tower"):
        shutil.copytree(os.path.dirname(exports[name]), base / name)
    interactions, items = shop["interactions"], shop["items"]
    first = _recent_request(interactions, 0)
    answered = answer_each_in_fresh_process(
        {"v1": (exports["next_items"], {"ask": ("serving_default", first)})},
        ["session"],
    )["v1"]
    top = answered["answers"]["session"]["ask"]["item_ids"][0][0].decode()
    # A re-listing of the top answer under a new id: the same text, so the same vector.
    copy = items[items["item_code"] == top].assign(item_code="m99001")
    copy.to_csv(tmp_path / "new_items.csv", index=False)
    added = run_cli(
        ["add-items", "--export", base / "next_items", "--items", tmp_path / "new_items.csv"],
        tmp_path,
    )
    assert added["added_items"] == 1 and added["path"].endswith("next_items/2")
    assert added["items"] == len(items) + 1
    recent = _recent_request(interactions, 0, new_item="m99001")
    answers = answer_each_in_fresh_process(
        {
            "v2": (
                added["path"],
                {
                    "before": ("serving_default", first),
                    "with_new": ("serving_default", recent),
                },
            )
        },
        ["session"],
    )["v2"]
    assert not answers["errors"]["session"], answers["errors"]
    before = answers["answers"]["session"]["before"]
    returned = [i.decode() for i in before["item_ids"][0]]
    # The copy (the text of the top answer, no id of its own) is answered near it, and
    # nothing else moves: the old answers keep their order around it.
    assert "m99001" in returned, returned
    old = [i.decode() for i in answered["answers"]["session"]["ask"]["item_ids"][0]]
    kept = [i for i in returned if i != "m99001"]
    assert kept == old[: len(kept)]
    with_new = answers["answers"]["session"]["with_new"]
    # The just-added id is read as a recent item (3 known ids; the unknown ones ignored)
    # and, being given, is not answered.
    assert with_new["used_items"].tolist() == [3, 3, 0, 0]
    assert "m99001" not in {i.decode() for i in with_new["item_ids"][0]}
    np.testing.assert_array_equal(with_new["item_ids"][0], with_new["item_ids"][1])


def test_temporal_split_from_embedding_files_needs_no_encoder(shop, temporal_run, served):
    summary = temporal_run
    interactions = shop["interactions"]
    liked = interactions[interactions["stars"] >= 3]
    split = summary["report"]["split"]
    assert split["dropped"] == {"below_min_rating": int((interactions["stars"] < 3).sum())}
    assert split["train"] + split["validation"] + split["test"] == len(liked)
    cutoff = np.sort(liked["ts"].to_numpy())[len(liked) - round(len(liked) * 0.25)]
    assert split["test"] == int((liked["ts"] >= cutoff).sum())
    assert split["id_type"] == "int" and summary["embedding_dim"] == 24
    assert "query_retrieval" in summary["exports_skipped"]
    assert sorted(summary["exports"]) == [
        "item_tower",
        "ranker",
        "recommend",
        "retrieval",
        "user_tower",
    ]
    assert "next_items" in summary["exports_skipped"]
    answer = served["temporal"]  # asked for [the first rating's user, 10**9]
    assert answer["known_user"].tolist() == [True, False]
    assert answer["item_ids"].dtype == np.int64


def test_random_split_on_a_parquet_directory_with_a_test_file(shop, tiny_hub_dir):
    """Users without a table are their history; a test file's unseen users and items are counted."""
    root = shop["root"]
    interactions = shop["interactions"]
    test = pd.DataFrame(
        {
            "user_code": [interactions["user_code"].iloc[0], "u-new", "u-new"],
            "item_code": ["m01600", "m00001", "m01601"],
            "stars": [5.0, 4.0, 3.0],
            "ts": [1, 2, 3],
        }
    )
    test.to_csv(root / "test.csv", index=False)
    common = [
        "--user-column", "user_code",
        "--item-column", "item_code",
        "--items", str(root / "items.csv"),
        "--item-id-column", "item_code",
        "--item-text-template", "{title}. {genres}",
        "--ranker-epochs", "0",
    ]  # fmt: skip
    summary = _run(
        root,
        "random",
        "--interactions", str(root / "ratings_parts"),
        *common,
        hub_dir=tiny_hub_dir,
    )  # fmt: skip
    split = summary["report"]["split"]
    assert split["test"] == round(len(interactions) * 0.2)
    assert split["train"] + split["validation"] + split["test"] == len(interactions)
    assert split["validation"] == round((len(interactions) - split["test"]) * 0.1)
    assert summary["users"] == interactions["user_code"].nunique()
    # The same data with its own test file: unseen users dropped and counted.
    config = RecommenderTrainingConfig(
        interactions=str(root / "ratings_parts"),
        user_column="user_code",
        item_column="item_code",
        items=str(root / "items.csv"),
        item_id_column="item_code",
        item_text_template="{title}. {genres}",
        test_interactions=str(root / "test.csv"),
    )
    inputs, report = load_user_inputs(config, lambda: _fake_embed)
    assert report["test"] == 1 and report["test_dropped"] == {"unknown_users": 2}
    assert report["test_pairs_with_items_unseen_in_training"] == int(
        "m01600" not in set(interactions["item_code"])
    )
    assert len(inputs.train_items) + len(inputs.val_items) == len(interactions)


# --- Bad input ---------------------------------------------------------------


def _fake_embed(texts):
    rng = np.random.default_rng(len(texts))
    return rng.normal(size=(len(texts), 8)).astype(np.float32)


def _config(tmp_path, **settings):
    values = dict(
        interactions=str(tmp_path / "ratings.csv"),
        items=str(tmp_path / "items.csv"),
        item_text_template="{title}",
    )
    values.update(settings)
    return RecommenderTrainingConfig(**values)


def _write(tmp_path, ratings=None, items=None):
    ratings = ratings if ratings is not None else "user_id,item_id\na,1\nb,2\na,2\nb,1\n"
    items = items if items is not None else "item_id,title\n1,One\n2,Two\n"
    (tmp_path / "ratings.csv").write_text(ratings)
    (tmp_path / "items.csv").write_text(items)


def test_unknown_item_ids_are_named_with_their_rows(tmp_path):
    _write(tmp_path, ratings="user_id,item_id\na,1\nb,9\na,2\nc,8\n")
    with pytest.raises(
        DataValidationError,
        match=r"ratings.csv'.*`item_id` has item ids absent from the item catalogue in "
        r"2 rows: 2, 4 .*Examples: \['8', '9'\]",
    ):
        load_user_inputs(_config(tmp_path), lambda: _fake_embed)


def test_duplicate_catalogue_ids_are_refused(tmp_path):
    _write(tmp_path, items="item_id,title\n1,One\n2,Two\n1,Again\n")
    with pytest.raises(
        DataValidationError,
        match=r"items.csv' column `item_id` has duplicate ids \['1'\] in 2 rows: 1, 3",
    ):
        load_user_inputs(_config(tmp_path), lambda: _fake_embed)


def test_a_template_naming_a_missing_column_is_refused(tmp_path):
    _write(tmp_path)
    with pytest.raises(
        DataValidationError, match=r"no column\(s\) \['genres'\].*\{title\}. \{genres\}"
    ):
        load_user_inputs(
            _config(tmp_path, item_text_template="{title}. {genres}"), lambda: _fake_embed
        )


def test_embedding_widths_must_agree_between_files(tmp_path):
    rng = np.random.default_rng(0)
    _write(tmp_path)
    _write_embeddings(tmp_path / "items.parquet", "item_id", [1, 2], rng, 8)
    _write_embeddings(tmp_path / "users.parquet", "user_id", [5, 6], rng, 12)
    (tmp_path / "ratings.csv").write_text("user_id,item_id\n5,1\n6,2\n5,2\n6,1\n")
    config = _config(
        tmp_path,
        items=None,
        item_text_template=None,
        item_embeddings=str(tmp_path / "items.parquet"),
        user_embeddings=str(tmp_path / "users.parquet"),
    )
    with pytest.raises(
        DataValidationError, match=r"users.parquet' has width 12.*items.parquet' has width 8"
    ):
        load_user_inputs(config, lambda: _fake_embed)


def test_ragged_embeddings_in_one_file_are_refused(tmp_path):
    table = pa.table({"item_id": [1, 2, 3], "embedding": [[0.1, 0.2], [0.3], [0.5, 0.6]]})
    pq.write_table(table, tmp_path / "items.parquet")
    _write(tmp_path)
    config = _config(
        tmp_path,
        items=None,
        item_text_template=None,
        item_embeddings=str(tmp_path / "items.parquet"),
    )
    with pytest.raises(DataValidationError, match=r"different widths \(most have 2\).*1 row: 2"):
        load_user_inputs(config, lambda: _fake_embed)


def test_missing_ids_and_bad_timestamps_are_named(tmp_path):
    _write(tmp_path, ratings="user_id,item_id,ts\na,1,5\n,2,6\na,2,x\n")
    config = _config(tmp_path, timestamp_column="ts", split="temporal")
    with pytest.raises(DataValidationError, match=r"`user_id` has missing values in 1 row: 2"):
        load_user_inputs(config, lambda: _fake_embed)
    _write(tmp_path, ratings="user_id,item_id,ts\na,1,5\nb,2,6\na,2,x\n")
    with pytest.raises(
        DataValidationError, match=r"`ts` has values that are not numbers or ISO dates in 1 row: 3"
    ):
        load_user_inputs(config, lambda: _fake_embed)


def test_settings_that_cannot_work_fail_before_any_reading(tmp_path):
    _write(tmp_path)
    with pytest.raises(ValueError, match="orders interactions by time: pass `timestamp_column`"):
        load_user_inputs(_config(tmp_path, split="temporal"), lambda: _fake_embed)
    with pytest.raises(ValueError, match="`--item-embeddings PATH`"):
        load_user_inputs(_config(tmp_path, item_text_template=None), lambda: _fake_embed)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(["train-recommender", "--items", str(tmp_path / "items.csv")]) == 2
    assert "pass `interactions` (`--interactions PATH`) too" in stderr.getvalue()


def test_the_cli_reports_a_data_error_and_writes_nothing(tmp_path):
    _write(tmp_path, ratings="user_id,item_id\na,1\nb,9\n")
    stderr = io.StringIO()
    argv = [
        "train-recommender",
        "--interactions", str(tmp_path / "ratings.csv"),
        "--items", str(tmp_path / "items.csv"),
        "--item-text-template", "{title}",
        "--model", "/nonexistent/never-loaded",
        "--output-dir", str(tmp_path / "saved_models"),
    ]  # fmt: skip
    with contextlib.redirect_stderr(stderr):
        assert main(argv) == 2
    assert "absent from the item catalogue in 1 row: 2" in stderr.getvalue()
    assert not os.path.exists(tmp_path / "saved_models")


# --- Splits and streaming ----------------------------------------------------


def test_holdout_masks():
    users = np.array([0, 0, 0, 1, 1, 2])
    times = np.array([3, 1, 2, 5, 5, 9])
    last = holdout_mask("leave-last-out", users, times, 0.2, 1, 0)
    # User 0's latest (time 3), user 1's later row of a tie, user 2 keeps its only one.
    assert last.tolist() == [True, False, False, False, True, False]
    two = holdout_mask("leave-last-out", users, times, 0.2, 2, 0)
    assert two.tolist() == [True, False, True, False, False, False]
    temporal = holdout_mask("temporal", users, times, 0.34, 1, 0)
    assert temporal.tolist() == [False, False, False, True, True, True]  # ties at the cutoff go out
    random = holdout_mask("random", np.zeros(1000, int), None, 0.2, 1, 7)
    assert random.sum() == 200
    assert (random == holdout_mask("random", np.zeros(1000, int), None, 0.2, 1, 7)).all()


def test_chunked_reading_equals_reading_the_whole_file(shop):
    from keras_rec.data import read_interactions
    from keras_rec.recommender.data.id_index import IdIndex
    from keras_rec.recommender.data.interaction_reader import read_interaction_rows

    root = shop["root"]
    catalogue = IdIndex(shop["items"]["item_code"].to_numpy())
    results = []
    for path, chunk_rows in (
        (root / "ratings.parquet", 10**6),
        (root / "ratings_parts", 97),
        (root / "ratings_numeric.csv", 113),
    ):
        items = catalogue if "numeric" not in str(path) else IdIndex(np.arange(1, 1700))
        users = IdIndex()
        rows = read_interaction_rows(
            str(path), "user_code", "item_code", users, items, "stars", "ts", chunk_rows=chunk_rows
        )
        results.append((users.ids[rows.users], rows.items, rows.ratings, rows.timestamps))
    whole = read_interactions(root / "ratings.parquet", "user_code", "item_code", "stars", "ts")
    np.testing.assert_array_equal(results[0][0], whole["user_id"].to_numpy())
    for other in results[1:]:
        np.testing.assert_array_equal(other[2], results[0][2])
        np.testing.assert_array_equal(other[3], results[0][3])
    np.testing.assert_array_equal(results[1][0], results[0][0])
    np.testing.assert_array_equal(results[1][1], results[0][1])
    np.testing.assert_array_equal(
        results[2][0], [int(u[1:]) for u in results[0][0]]
    )  # integer ids from CSV stay integers
