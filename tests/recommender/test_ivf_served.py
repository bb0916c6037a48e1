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
from keras_rec.recommender.item_index import INDEX_FILE
from keras_rec.serving.fresh_process import answer_in_fresh_process
from keras_rec.serving.versioned_dir import list_versions


def _run(argv):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
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

    text = movielens_item_texts(movielens_100k(movielens_dir).items).loc[before["item_ids"][0][0]]
    new_items = ivf_run["root"] / "new_items.csv"
    pd.DataFrame({"item_id": [90001], "title": [text]}).to_csv(new_items, index=False)
    code, added = _run(
        ["add-items", "--export", retrieval_dir, "--items", str(new_items)]
        + ["--item-text-template", "{title}"]
    )
    assert code == 0 and added["added_items"] == 1
    assert added["path"].endswith("retrieval/2") and added["index"]["index"] == "ivf"
    after = _served(added["path"], users)
    assert 90001 in after["item_ids"][0]
    for old, new in zip(before["item_ids"].tolist(), after["item_ids"].tolist()):
        kept = [item for item in new if item != 90001]
        assert kept == old[: len(kept)]  # the new item may push one out; nothing else moves
    # Its id is taken now: adding it again is refused, and no version is written.
    code, _ = _run(
        ["add-items", "--export", added["path"], "--items", str(new_items)]
        + ["--item-text-template", "{title}"]
    )
    assert code == 2
    assert list_versions(retrieval_dir) == [1, 2]
