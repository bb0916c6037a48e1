"""Fixtures of the training-run tests: MovieLens on disk, one uninterrupted reference run."""

from __future__ import annotations

import subprocess

import pytest
from script_runs import recommender_command, script_environment, summary_of


@pytest.fixture(scope="session")
def movielens_dir():
    import keras_rec
    from keras_rec.home import datasets_dir

    keras_rec.data.movielens_100k()
    return str(datasets_dir() / "ml-100k")


@pytest.fixture(scope="session")
def single_worker_recommender(movielens_dir, tiny_model_path, tmp_path_factory) -> dict:
    """The summary of one uninterrupted, single-process `train-recommender` run."""
    root = tmp_path_factory.mktemp("single_worker")
    result = subprocess.run(
        recommender_command(movielens_dir, tiny_model_path, root, root / "saved_models"),
        capture_output=True, text=True, env=script_environment(root), timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return summary_of(result.stdout)
