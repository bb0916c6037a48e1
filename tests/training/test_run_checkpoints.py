"""Where a run's backups live, and when they are resumed or deleted."""

from __future__ import annotations

import os

import pytest

from keras_rec.training.recommender_config import RecommenderTrainingConfig
from keras_rec.training.run_checkpoints import checkpoint_root, finish_run, start_run


def test_backups_are_keyed_by_the_settings_that_change_training(tmp_path):
    base = RecommenderTrainingConfig(output_dir=str(tmp_path))
    root = checkpoint_root(base, "recommender")
    assert root.startswith(str(tmp_path / ".checkpoints" / "recommender-"))
    # Tracking, the op-check target or the cache do not change what is trained...
    same = RecommenderTrainingConfig(output_dir=str(tmp_path), mlflow=True, target="x",
                                     cache="/elsewhere", checkpoint_steps=10)  # fmt: skip
    assert checkpoint_root(same, "recommender") == root
    # ...other epochs, data or seed do: such a run never resumes these backups.
    for changed in ({"epochs": 11}, {"seed": 1}, {"max_ratings": 6000}, {"hidden_units": (8,)}):
        other = RecommenderTrainingConfig(output_dir=str(tmp_path), **changed)
        assert checkpoint_root(other, "recommender") != root, changed


def test_resume_keeps_backups_and_no_resume_deletes_them(tmp_path):
    config = RecommenderTrainingConfig(output_dir=str(tmp_path))
    assert start_run(config, "recommender") is False  # nothing to resume
    root = checkpoint_root(config, "recommender")
    os.makedirs(os.path.join(root, "retrieval"))
    assert start_run(config, "recommender") is True and os.path.isdir(root)
    fresh = RecommenderTrainingConfig(output_dir=str(tmp_path), resume=False)
    assert start_run(fresh, "recommender") is False and not os.path.exists(root)
    os.makedirs(os.path.join(root, "retrieval"))
    finish_run(config, "recommender")
    assert not os.path.exists(tmp_path / ".checkpoints")


def test_checkpoint_steps_must_be_positive():
    with pytest.raises(ValueError, match="`checkpoint_steps` must be a positive integer"):
        RecommenderTrainingConfig(checkpoint_steps=0)
