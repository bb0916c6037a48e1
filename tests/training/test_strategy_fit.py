"""`strategy_fit`: two replicas train exactly as one device; a resumed run continues exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_rec.training.strategy_fit import replica_batch_size, strategy_fit

WORKER = os.path.join(os.path.dirname(__file__), "workers", "two_replica_retrieval.py")


def _train(devices: str, checkpoint_dir, epochs: int, *loss: str) -> dict:
    result = subprocess.run(
        [sys.executable, WORKER, devices, str(checkpoint_dir), str(epochs), *loss],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _train_on_two_workers(checkpoint_dir, epochs: int, *loss: str) -> list[dict]:
    """The worker's output on each of two worker processes of one `TF_CONFIG` cluster."""
    from script_runs import worker_configs

    processes = [
        subprocess.Popen(
            [sys.executable, WORKER, "workers", str(checkpoint_dir), str(epochs), *loss],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(config)),
        )  # fmt: skip
        for config in worker_configs(2)
    ]
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outputs


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _train("two", tmp_path_factory.mktemp("uninterrupted"), 3)


def test_two_replicas_train_as_one_device_does(uninterrupted, tmp_path):
    # Each replica gathers the other's items, so the in-batch softmax runs
    # over the global batch: same losses, same weights, whatever the split.
    one = _train("one", tmp_path, 3)
    np.testing.assert_allclose(uninterrupted["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(uninterrupted["first_weight"], one["first_weight"], atol=1e-5)
    assert uninterrupted["weights"] == pytest.approx(one["weights"], rel=1e-5)
    assert one["loss"][-1] < one["loss"][0]  # it learns


def test_a_stopped_run_resumes_at_its_epoch_and_ends_the_same(uninterrupted, tmp_path):
    first = _train("two", tmp_path, 1)
    assert first["resumed_at"] is None and len(first["loss"]) == 1
    assert sorted(os.listdir(tmp_path))[0] == "checkpoint"
    resumed = _train("two", tmp_path, 3)
    assert resumed["resumed_at"] == [1, 0]  # epoch 1 done: starts at epoch 2
    assert len(resumed["loss"]) == 2
    # The epoch's data order depends on (seed, epoch) only, and the optimizer
    # state is restored: the resumed run ends where the uninterrupted one did.
    np.testing.assert_allclose(resumed["loss"], uninterrupted["loss"][1:], rtol=1e-5)
    np.testing.assert_allclose(resumed["first_weight"], uninterrupted["first_weight"], atol=1e-5)


def _compiled_model():
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="adam", loss="mse")
    return model


def test_examples_need_a_known_length():
    examples = tf.data.Dataset.from_tensor_slices((np.ones((8, 3)), np.ones(8))).filter(
        lambda x, y: True
    )
    with pytest.raises(ValueError, match="known, finite length"):
        strategy_fit(_compiled_model(), examples, 4, 1)


def test_empty_examples_are_refused():
    examples = tf.data.Dataset.from_tensor_slices((np.ones((0, 3)), np.ones(0)))
    with pytest.raises(ValueError, match="`examples` is empty"):
        strategy_fit(_compiled_model(), examples, 4, 1)


def test_mid_epoch_checkpoints_resume_at_their_step(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    examples = tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1)))
    model = _compiled_model()
    strategy_fit(model, examples, 4, 1, checkpoint_dir=str(tmp_path), checkpoint_steps=3)
    assert "checkpoint at epoch 1, step 9/10" in capsys.readouterr().out
    # The last checkpoint holds the position after the epoch: (epoch 1, step 0).
    state = tf.train.Checkpoint(position=tf.Variable([0, 0], dtype=tf.int64))
    latest = tf.train.latest_checkpoint(str(tmp_path))
    state.read(latest).expect_partial()
    assert state.position.numpy().tolist() == [1, 0]
    history = strategy_fit(model, examples, 4, 2, checkpoint_dir=str(tmp_path))
    assert history.resumed_at == (1, 0) and len(history.history["loss"]) == 1


def test_two_worker_processes_train_the_same_model(uninterrupted, tmp_path):

    chief, worker = _train_on_two_workers(tmp_path / "checkpoints", 3)
    assert chief == worker  # same losses (all-reduced), same weights
    # Each worker trains on its own shard (another data order than one
    # process), with the softmax over the gathered global batch.
    np.testing.assert_allclose(chief["loss"], uninterrupted["loss"], rtol=0.05)
    # The chief's checkpoints only: worker 1's temporary ones are gone.
    assert os.listdir(tmp_path) == ["checkpoints"]


def test_the_sequence_model_trains_on_two_replicas_and_two_workers_as_on_one(tmp_path):
    """`NextItemModel` (sampled softmax: each replica's targets gathered from the others)."""

    loss = "sequence_sampled_softmax"
    one = _train("one", tmp_path / "one", 2, loss)
    assert one["loss"][-1] < one["loss"][0]  # it learns
    # Two replicas, stopped after an epoch and resumed: the same losses and weights.
    first = _train("two", tmp_path / "two", 1, loss)
    resumed = _train("two", tmp_path / "two", 2, loss)
    assert resumed["resumed_at"] == [1, 0]
    np.testing.assert_allclose(first["loss"] + resumed["loss"], one["loss"], rtol=1e-4)
    np.testing.assert_allclose(resumed["first_weight"], one["first_weight"], atol=1e-4)
    outputs = _train_on_two_workers(tmp_path / "workers", 2, loss)
    assert outputs[0] == outputs[1]  # one model on both workers
    np.testing.assert_allclose(outputs[0]["loss"], one["loss"], rtol=0.05)


def test_a_batch_chosen_from_the_data_is_shared_evenly_by_the_replicas():
    # 63 re-ranker users on two workers: 62 a batch (31 each); 100 users: the full 64.
    assert replica_batch_size(64, 63, 2) == 62
    assert replica_batch_size(64, 100, 2) == 64
    assert replica_batch_size(64, 63, 1) == 63
    assert replica_batch_size(64, 1, 2) == 2  # one example a replica at least
    assert replica_batch_size(64, 10, 4) == 8
