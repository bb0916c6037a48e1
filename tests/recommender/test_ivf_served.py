"""`train-recommender --index ivf` and `keras-rec add-items`, through the CLI and served path."""

import contextlib
import io
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from keras_rec.cli import main
from keras_rec.recommender.index.item_index import INDEX_FILE
from keras_rec.serving.fresh_process import answer_in_fresh_process
from keras_rec.serving.versioned_dir import list_versions


def _run(argv, stderr=None):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr or io.StringIO()):
        code = main(argv)
    lines = [line for line in stdout.getvalue().splitlines() if line.startswith("{")]
    return code, json.loads(lines[-1]) if lines else None


@pytest.fixture(scope="module")
def ivf_run(movielens_run, tmp_path_factory):
    """The suite's MovieLens run (its served models use the IVF index), exports copied.

    `add-items` writes new versions: it works on a copy of the run's `saved_models/`.
    """
    root = tmp_path_factory.mktemp("ivf_recommender")
    shutil.copytree(os.path.join(movielens_run["root"], "saved_models"), root / "saved_models")
    summary = dict(movielens_run["summary"])
    summary["exports"] = {
        name: str(root / "saved_models" / name / os.path.basename(path))
        for name, path in summary["exports"].items()
    }
    return {"summary": summary, "root": root}


def _served(path, user_ids):
    answered = answer_in_fresh_process(
        path, {"u": ("serving_default", {"user_id": np.asarray(user_ids, np.int64)})}, ["session"]
    )
    assert not answered["errors"]["session"], answered["errors"]
    return answered["answers"]["session"]["u"]


def test_ivf_retrieval_is_recorded_and_close_to_exact(ivf_run):
    summary = ivf_run["summary"]
    for name in ("retrieval", "query_retrieval"):
        index = summary["indexes"][name]
        assert index["index"] == "ivf" and index["recall"] >= 0.99, index
        with open(os.path.join(summary["exports"][name], "assets.extra", INDEX_FILE)) as file:
            recorded = json.load(file)
        assert recorded["nprobe"] == index["nprobe"] <= recorded["num_partitions"]
        # The smallest nprobe tried that reaches the target (float32: always reachable).
        tried = {nprobe: recall for nprobe, recall in recorded["curve"]}
        assert tried[index["nprobe"]] == index["recall"] >= 0.99
        assert all(recall < 0.99 for nprobe, recall in tried.items() if nprobe < index["nprobe"])
    served = summary["served_retrieval"]
    # Measured on the SavedModel as TF Serving answers it, against the exact towers.
    assert served["evaluated_users"] > 200
    assert abs(served["recall_at_10_gap"]) <= 0.02, served


def test_add_items_makes_a_new_item_retrievable_and_keeps_old_results(ivf_run, movielens_dir):
    summary = ivf_run["summary"]
    retrieval_dir = os.path.dirname(summary["exports"]["retrieval"])
    users = list(range(1, 41))
    before = _served(summary["exports"]["retrieval"], users)
    # The new item copies the text of user 1's top item: it should rank near it.
    from keras_rec.data import movielens_100k
    from keras_rec.data.text_builders import movielens_item_texts

    texts = movielens_item_texts(movielens_100k(movielens_dir).items)
    # With it, re-listings of other movies under new ids: the catalogue grows by
    # more than 10%, so the recorded recall is measured again on the same users.
    relisted = texts.iloc[: summary["items"] // 8 + 1]
    new_ids = [90001, *range(90002, 90002 + len(relisted))]
    new_items = ivf_run["root"] / "new_items.csv"
    titles = [texts.loc[before["item_ids"][0][0]], *relisted]
    pd.DataFrame({"item_id": new_ids, "title": titles}).to_csv(new_items, index=False)
    stderr = io.StringIO()
    code, added = _run(
        ["add-items", "--export", retrieval_dir, "--items", str(new_items)]
        + ["--item-text-template", "{title}"],
        stderr,
    )
    assert code == 0 and added["added_items"] == len(new_ids)
    assert added["path"].endswith("retrieval/2") and added["index"]["index"] == "ivf"
    index = added["index"]
    assert index["recall_rechecked"] is True and index["growth"] >= 0.1, index
    assert index["recall_measured_at_items"] == added["items"] == summary["items"] + len(new_ids)
    assert index["recall_before"] == summary["indexes"]["retrieval"]["recall"]
    assert index["recall_holds"] == (index["recall"] >= index["target_recall"])
    with open(os.path.join(added["path"], "assets.extra", INDEX_FILE)) as file:
        assert json.load(file)["recall"] == index["recall"]
    assert "re-measured on the same users" in stderr.getvalue()
    assert ("still holds" if index["recall_holds"] else "no longer holds") in stderr.getvalue()
    after = _served(added["path"], users)
    assert 90001 in after["item_ids"][0]
    for old, new in zip(before["item_ids"].tolist(), after["item_ids"].tolist()):
        kept = [item for item in new if item not in new_ids]
        assert kept == old[: len(kept)]  # new items may push some out; nothing else moves
    # Its id is taken now: adding it again is refused, and no version is written.
    code, _ = _run(
        ["add-items", "--export", added["path"], "--items", str(new_items)]
        + ["--item-text-template", "{title}"]
    )
    assert code == 2
    assert list_versions(retrieval_dir) == [1, 2]
