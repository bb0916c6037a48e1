"""End to end: `keras-rec train-recommender` on a MovieLens sample with a tiny encoder."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from helpers import assert_no_tensorflow_startup_lines, assert_old_metric_keys_kept
from script_runs import RECOMMENDER_EPOCHS

from keras_rec.data import DataValidationError
from keras_rec.recommender.baselines.baseline_tuning import (
    EASE_L2_GRID,
    KNN_NEIGHBORS_GRID,
    TEXT_EASE_L2_GRID,
)
from keras_rec.recommender.data.interactions import (
    check_interactions,
    cold_start_split,
    tfrs_protocol_split,
)
from keras_rec.recommender.stages.exports import EXPORT_NAMES
from keras_rec.recommender.train_recommender import RecommenderTrainingConfig, train_recommender
from keras_rec.serving.fresh_process import answer_each_in_fresh_process, tf_text_op_libraries

USERS = np.array([1, 13, 999_999], np.int64)  # two known users, one unknown
QUERIES = ["star wars", "a toy story"]


@pytest.fixture(scope="module")
def trained(movielens_run):
    """The suite's MovieLens CLI run (`RECOMMENDER_FLAGS`): 6,000 ratings, 10% of items cold."""
    return movielens_run


def test_script_prints_metrics_and_writes_metrics_json(trained):
    summary = trained["summary"]
    for key in (
        "top100_accuracy",
        "user_recall_at_10",
        "user_ndcg_at_10",
        "user_mrr",
        "cold_start_recall_at_100",
        "popularity",
        "ranker",
    ):
        assert key in summary, key
    assert summary["train_pairs"] + summary["test_pairs"] >= 6000
    # Without --verbose, none of TensorFlow's native start-up lines (this process and
    # the serving checks it started).
    assert_no_tensorflow_startup_lines(summary["stderr"])
    assert summary["cold_items"] == 166 and summary["items"] == 1664
    assert 0.0 <= summary["top100_accuracy"] <= 1.0
    assert 0.0 < summary["ranker"]["test_auc"] <= 1.0
    # The ranker scores each test positive and its sampled negatives: not `test_pairs`.
    ranker = summary["ranker"]
    per_positive = 1 + ranker["negatives_per_positive"]
    assert ranker["test_scored_pairs"] == summary["test_pairs"] * per_positive
    assert_old_metric_keys_kept(summary)
    with open(summary["metrics_json"]) as file:
        written = json.load(file)
    assert written["top100_accuracy"] == summary["top100_accuracy"]
    assert (
        written["report"]["popularity"]["top100_accuracy"]
        == (summary["popularity"]["top100_accuracy"])
    )
    assert os.path.isfile(os.path.join(summary["run_dir"], "metrics.json"))


def test_ease_baseline_is_tuned_on_validation_and_beside_popularity(trained):
    summary = trained["summary"]
    tuned = summary["validation"]["ease"]
    assert sorted(tuned["validation_ndcg_at_10"]) == sorted(str(v) for v in EASE_L2_GRID)
    chosen = tuned["chosen"]["l2"]
    assert tuned["validation_ndcg_at_10"][str(chosen)] == max(
        tuned["validation_ndcg_at_10"].values()
    )
    with open(summary["metrics_json"]) as file:
        report = json.load(file)["report"]
    assert report["ease"]["l2"] == chosen
    assert summary["ease"]["user_recall_at_10"] == report["ease"]["user_recall_at_10"]
    # A real ranking: well above a random one's expected Recall@100 (100 / items).
    assert report["ease"]["user_recall_at_100"] > 3 * 100 / summary["items"]
    curves = report["recall_curves"]
    assert set(curves) == {"two-tower", "two-stage", "popularity", "EASE", "item-kNN"}
    recall = [curves["EASE"][k] for k in sorted(curves["EASE"], key=int)]
    assert recall == sorted(recall) and recall[-1] <= 1.0
    # item-kNN beside it, its neighbors chosen the same way (a grid below the item count).
    knn = summary["validation"]["item_knn"]
    grid = [str(k) for k in KNN_NEIGHBORS_GRID if k < summary["items"]]
    assert sorted(knn["validation_ndcg_at_10"], key=int) == grid
    chosen = knn["chosen"]["neighbors"]
    assert knn["validation_ndcg_at_10"][str(chosen)] == max(knn["validation_ndcg_at_10"].values())
    assert report["item_knn"]["neighbors"] == chosen
    assert summary["item_knn"]["user_ndcg_at_10"] == report["item_knn"]["user_ndcg_at_10"]
    # Weaker than EASE on this small sample, still above a random ranking.
    assert report["item_knn"]["user_recall_at_100"] > 1.5 * 100 / summary["items"]


def test_six_exports_load_in_tensorflow_and_carry_metrics(trained):
    exports = trained["summary"]["exports"]
    assert sorted(exports) == sorted(EXPORT_NAMES)
    for name, path in exports.items():
        assert path.endswith(f"{name}/1"), path
        assert os.path.isfile(os.path.join(path, "assets.extra", "metrics.json"))
        assert os.path.isfile(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"))


@pytest.fixture(scope="module")
def trained_split(trained, movielens_dir):
    """The run's split, rebuilt (it is deterministic) to know each user's training items."""
    from keras_rec.recommender.data.movielens_split import movielens_split

    config = RecommenderTrainingConfig()  # the run's defaults but these two
    split, items, _ = movielens_split(
        movielens_dir, 6000, 0.1, config.validation_fraction, config.seed
    )
    return split, items


@pytest.fixture(scope="module")
def served(trained, trained_split):
    """The run's exports answering through TF Serving's loader, all in one fresh process."""
    split, items = trained_split
    exports = trained["summary"]["exports"]
    cold_items = items[items["item_id"].isin(split.cold_item_ids)].head(3)
    embeddings = np.random.default_rng(0).normal(size=(20, 32)).astype(np.float32)
    requests = {
        "retrieval": {"users": {"user_id": USERS}},
        "recommend": {"users": {"user_id": USERS}},
        "query_retrieval": {
            "cold": {"text": np.array(cold_items["text"].tolist(), object)},
            "queries": {"text": np.array(QUERIES, object)},
        },
        "item_tower": {"cold": {"embedding": embeddings, "id": np.zeros(20, np.int64)}},
    }
    answered = answer_each_in_fresh_process(
        {
            name: (exports[name], {rid: ("serving_default", x) for rid, x in asks.items()})
            for name, asks in requests.items()
        },
        ["session"],
        op_libraries=tf_text_op_libraries(),
    )
    for name, report in answered.items():
        assert not report["errors"]["session"], (name, report["errors"])
    return {name: report["answers"]["session"] for name, report in answered.items()}


def test_served_retrieval_answers_known_and_unknown_users(served, trained_split):
    split, _ = trained_split
    outputs = served["retrieval"]["users"]
    assert outputs["item_ids"].shape == (3, 10)
    assert outputs["known_user"].tolist() == [True, True, False]
    titles = [t.decode() for t in outputs["titles"][0]]
    assert all(t.endswith(")") for t in titles), titles  # "Title (Year)"
    for row, user in enumerate([1, 13]):
        assert not _known_items(split, user) & set(outputs["item_ids"][row].tolist())


def _known_items(split, user):
    """Item ids of `user` in training and validation (both are excluded from results)."""
    known = pd.concat([split.train, split.validation])
    items = set(known.loc[known["user_id"] == user, "item_id"])
    assert items and not split.train[split.train["user_id"] == user].empty, user
    return items


def test_two_stage_recommend_is_trained_on_validation_and_served(trained, trained_split, served):
    split, _ = trained_split
    summary = trained["summary"]
    assert len(split.validation) == summary["validation_pairs"] > 0
    validation = summary["validation"]
    assert 1 <= validation["chosen_epochs"] <= RECOMMENDER_EPOCHS
    assert validation["reranker"]["training_users"] > validation["reranker"]["holdout_users"] > 0
    assert validation["item_item"]["chosen"]["l2"] in TEXT_EASE_L2_GRID
    assert len(validation["item_item"]["validation_ndcg_at_10"]) == 9
    two_stage = summary["two_stage"]
    # The two-stage model re-ranks the index's top 100 (IVF here: within its recall of the
    # exact towers' Recall@100; equal with --index exact, tests/recommender/test_user_data.py).
    assert abs(two_stage["user_recall_at_100"] - summary["user_recall_at_100"]) <= 0.02
    assert 0.0 <= two_stage["user_ndcg_at_10"] <= 1.0
    # Through TF Serving's loader (the Session path), as a client calls it.
    answer = served["recommend"]["users"]
    assert answer["item_ids"].shape == (3, 10)
    assert answer["known_user"].tolist() == [True, True, False]
    for row, user in enumerate([1, 13]):
        assert not _known_items(split, user) & set(answer["item_ids"][row].tolist())
    assert summary["ranker"]["popularity_test_auc"]["pooled_auc"] > 0.5


def test_cold_start_items_are_retrieved(trained, trained_split, served):
    """Held-out items have no trained id, yet come back: their vectors come from text."""
    split, items = trained_split
    summary = trained["summary"]
    cold_ids = set(split.cold_item_ids.tolist())
    assert len(cold_ids) == summary["cold_items"] == 166
    assert not split.train["item_id"].isin(cold_ids).any()
    assert summary["cold_start_recall_at_100"] > 0  # an id-only model scores 0 here
    # Item vectors come from text (random here): distinct, not one shared "unknown" vector.
    vectors = served["item_tower"]["cold"]["vector"]
    assert len(vectors) == 20
    assert np.ptp(vectors, axis=0).max() > 1e-3
    cold_items = items[items["item_id"].isin(cold_ids)].head(3)
    hits = served["query_retrieval"]["cold"]
    ids, scores = hits["item_ids"], hits["scores"]
    # Each cold item's own text finds it. The tiny test encoder's 56-token
    # vocabulary maps some texts to one vector ("Quiz Show (1994). Drama" ties
    # with 10+ items at cosine 1.0): then every returned item ties with it.
    for row, item_id in enumerate(cold_items["item_id"]):
        assert item_id in ids[row] or np.allclose(scores[row], 1.0, atol=1e-5), (
            item_id,
            ids[row],
            scores[row],
        )
    assert any(item_id in ids[row] for row, item_id in enumerate(cold_items["item_id"]))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-4)


def test_bad_settings_fail_before_training(tmp_path, movielens_dir):
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        train_recommender(RecommenderTrainingConfig(data=movielens_dir, epochs=0))
    with pytest.raises(ValueError, match=r"`cold_start_fraction` must be in \[0, 1\)"):
        train_recommender(RecommenderTrainingConfig(data=movielens_dir, cold_start_fraction=1.5))
    with pytest.raises(ValueError, match=r"`index_recall` must be in \(0, 1\]"):
        train_recommender(RecommenderTrainingConfig(data=movielens_dir, index_recall=1.5))


def test_duplicate_and_missing_interactions_are_named():
    ratings = pd.DataFrame({"user_id": [1, 1, 2, 1], "item_id": [5, 6, 5, 5]})
    with pytest.raises(
        DataValidationError,
        match=r"1 duplicate \(user_id, item_id\) pairs, "
        r"e\.g\. \[\(1, 5\)\] at rows \[1, 4\]",
    ):
        check_interactions(ratings)
    with pytest.raises(DataValidationError, match=r"missing `item_id` values at rows \[2\]"):
        check_interactions(pd.DataFrame({"user_id": [1, 2], "item_id": [5, None]}))


def test_tfrs_protocol_split_and_cold_items(movielens_dir):
    import keras_rec

    ratings = keras_rec.data.movielens_100k(path=movielens_dir).ratings
    split = tfrs_protocol_split(ratings, seed=42)
    again = tfrs_protocol_split(ratings, seed=42)
    assert (len(split.train), len(split.test)) == (80_000, 20_000)
    pd.testing.assert_frame_equal(split.test, again.test)
    whole = pd.concat([split.train, split.test])
    assert not whole.duplicated(["user_id", "item_id"]).any()
    items = np.arange(1, 1683)
    cold = cold_start_split(ratings, items, fraction=0.1, seed=0, base=split)
    assert len(cold.cold_item_ids) == 168
    assert not cold.train["item_id"].isin(cold.cold_item_ids).any()
    assert len(cold.train) + len(cold.test) == 100_000


def test_cold_items_of_a_time_split_stay_in_the_histories_not_in_the_test(movielens_dir):
    import keras_rec
    from keras_rec.recommender.data.interactions import time_split

    ratings = keras_rec.data.movielens_100k(path=movielens_dir).ratings
    base = time_split(ratings, "leave-last-out", 0.2, 2)
    cold = cold_start_split(ratings, np.arange(1, 1683), fraction=0.1, seed=0, base=base)
    pd.testing.assert_frame_equal(cold.test, base.test)  # still each user's last 2
    assert cold.test["item_id"].isin(cold.cold_item_ids).any()
    assert not cold.train["item_id"].isin(cold.cold_item_ids).any()
    assert cold.history["item_id"].isin(cold.cold_item_ids).all()
    assert len(cold.train) + len(cold.history) == len(base.train)
    assert cold.summary()["history_only"] == len(cold.history) > 0


def _synthetic_inputs(num_users=8, num_items=12, pairs=96, dim=6, seed=0):
    from keras_rec.recommender.data.recommender_inputs import RecommenderInputs, history_embeddings

    rng = np.random.default_rng(seed)
    items = rng.normal(size=(num_items, dim)).astype("float32")
    train_users = rng.integers(0, num_users, size=pairs)
    train_items = rng.integers(0, num_items, size=pairs)
    return RecommenderInputs(
        item_ids=np.arange(num_items) + 1,
        item_titles=[f"m{i}" for i in range(num_items)],
        item_texts=[f"m{i}" for i in range(num_items)],
        item_embeddings=items,
        item_id_index=np.arange(1, num_items + 1),
        user_ids=np.arange(num_users) + 1,
        user_texts=["u"] * num_users,
        user_embeddings=rng.normal(size=(num_users, dim)).astype("float32"),
        user_history=history_embeddings(train_users, train_items, items, num_users),
        user_id_index=np.arange(1, num_users + 1),
        train_users=train_users,
        train_items=train_items,
        test_users=train_users[:8],
        test_items=train_items[:8],
        cold_items=np.zeros(0, np.int64),
    )


def test_fit_retrieval_builds_under_the_mirrored_strategy():
    from keras_rec.recommender.stages.towers import fit_retrieval
    from keras_rec.training.distribute import get_strategy

    strategy = get_strategy("mirrored")
    config = RecommenderTrainingConfig(epochs=2, batch_size=32, output_dim=4, hidden_units=(8,))
    retrieval, history, _ = fit_retrieval(config, _synthetic_inputs(), strategy)
    assert np.isfinite(history.history["loss"]).all() and len(history.history["loss"]) == 2
    kernel = retrieval.user_tower.get_layer("projection").kernel
    assert "Mirrored" in type(kernel.value).__name__


def test_mlflow_run_is_read_back(trained, served):
    import mlflow

    summary = trained["summary"]
    mlflow.set_tracking_uri(trained["tracking_uri"])  # the `models:/` URIs resolve there
    client = mlflow.tracking.MlflowClient(trained["tracking_uri"])
    run = client.get_run(summary["mlflow_run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "movies"
    assert run.data.params["epochs"] == str(RECOMMENDER_EPOCHS)
    assert run.data.params["max_ratings"] == "6000"
    metrics = run.data.metrics
    assert metrics["top100_accuracy"] == pytest.approx(summary["top100_accuracy"])
    assert metrics["popularity.user_recall_at_10"] == summary["popularity"]["user_recall_at_10"]
    assert metrics["ease.user_ndcg_at_10"] == summary["ease"]["user_ndcg_at_10"]
    assert "ranker.test_auc" in metrics and "cold_start_recall_at_100" in metrics
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == list(range(RECOMMENDER_EPOCHS))
    assert len(client.get_metric_history(run.info.run_id, "ranker_loss")) == 1
    artifacts = set()
    stack = [""]
    while stack:
        for item in client.list_artifacts(run.info.run_id, stack.pop()):
            (stack.append if item.is_dir else artifacts.add)(item.path)
    for name in EXPORT_NAMES:
        assert f"saved_models/{name}/saved_model.pb" in artifacts, name
    assert {
        "evaluation/recall_at_k.png",
        "evaluation/training_curves.png",
        "evaluation/metrics.json",
    } <= artifacts

    # Raw text in, the same top-K items as the exported query_retrieval served.
    predicted = mlflow.pyfunc.load_model(summary["mlflow_model_uri"]).predict(QUERIES)
    answer = served["query_retrieval"]["queries"]
    np.testing.assert_array_equal(np.array(predicted["item_ids"].tolist()), answer["item_ids"])
    assert predicted["titles"][0][0] == answer["titles"][0, 0].decode()
    st = mlflow.sentence_transformers.load_model(summary["mlflow_sentence_transformer_uri"])
    assert st.encode(QUERIES).shape == (2, 32)


def test_ease_baseline_says_why_it_is_skipped():
    import types

    from keras_rec.recommender.stages.baselines import evaluate_baselines, tune_baselines

    # Without a validation split there is nothing to choose the settings on.
    assert evaluate_baselines(None, {}, True, None, ()) == {
        "ease": {"skipped": "no validation split to choose EASE's l2 on"},
        "item_knn": {"skipped": "no validation split to choose item-kNN's neighbors on"},
    }
    off = {"skipped": "ease_baseline is off"}  # --no-ease-baseline
    assert tune_baselines(None, False) == {}
    assert evaluate_baselines(None, {}, False, None, ()) == {"ease": off, "item_knn": off}
    too_many = tune_baselines(types.SimpleNamespace(num_items=20_001), True)
    assert too_many["ease"] == {
        "skipped": "20,001 items: EASE's dense item x item solve is limited to 20,000"
    }
    assert "item-kNN's" in too_many["item_knn"]["skipped"]
    assert evaluate_baselines(None, too_many, True, None, ()) == too_many
