"""Tests for `write_serving_config`: models.config, batching parameters, commands."""

from __future__ import annotations

import json
import os
import shlex
import shutil

import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from keras_rec.cli import main
from keras_rec.serving.serving_config import write_serving_config


class _Double(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        return {"y": x * 2.0}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("double") / "saved_model")
    tf.saved_model.save(_Double(), path)
    return path


def _add_version(saved_model: str, base, name: str, version: str) -> None:
    shutil.copytree(saved_model, os.path.join(base, name, version))


@pytest.fixture()
def base_dir(saved_model, tmp_path) -> str:
    base = tmp_path / "models"
    _add_version(saved_model, base, "recommender", "3")
    _add_version(saved_model, base, "encoder", "1")
    _add_version(saved_model, base, "encoder", "2")
    # An export in progress inside a model, a stray directory, a hidden one: ignored.
    _add_version(saved_model, base, "encoder", ".tmp-3-1234-ab12")
    (base / "notes" / "drafts").mkdir(parents=True)
    _add_version(saved_model, base, ".tmp-9-99-ff", "1")
    return str(base)


def _read_config(path) -> model_server_config_pb2.ModelServerConfig:
    with open(path) as file:
        return text_format.Parse(file.read(), model_server_config_pb2.ModelServerConfig())


def _entries(config) -> list[tuple[str, str, str]]:
    return [
        (entry.name, entry.base_path, entry.model_platform)
        for entry in config.model_config_list.config
    ]


def test_writes_model_config_for_every_model(base_dir):
    summary = write_serving_config(base_dir, num_batch_threads=3)
    assert summary["models"] == {"encoder": [1, 2], "recommender": [3]}
    assert summary["skipped"] == ["notes"]
    assert summary["model_config_file"] == os.path.join(base_dir, "models.config")

    config = _read_config(summary["model_config_file"])
    assert _entries(config) == [
        ("encoder", os.path.join(base_dir, "encoder"), "tensorflow"),
        ("recommender", os.path.join(base_dir, "recommender"), "tensorflow"),
    ]
    docker = _read_config(summary["docker_model_config_file"])
    assert _entries(docker) == [
        ("encoder", "/models/encoder", "tensorflow"),
        ("recommender", "/models/recommender", "tensorflow"),
    ]
    with open(summary["batching_parameters_file"]) as file:
        assert file.read() == (
            "max_batch_size { value: 64 }\n"
            "batch_timeout_micros { value: 2000 }\n"
            "max_enqueued_batches { value: 100 }\n"
            "num_batch_threads { value: 3 }\n"
            "pad_variable_length_inputs: true\n"
        )
    assert shlex.split(summary["command"]) == [
        "tensorflow_model_server",
        f"--model_config_file={base_dir}/models.config",
        "--enable_batching",
        f"--batching_parameters_file={base_dir}/batching_parameters.txt",
        "--rest_api_port=8501",
        "--port=8500",
    ]
    docker_command = shlex.split(summary["docker_command"])
    assert docker_command[:2] == ["docker", "run"]
    assert "-p" in docker_command and "8501:8501" in docker_command
    assert f"{base_dir}:/models:ro" in docker_command
    assert f"{base_dir}:/config:ro" in docker_command
    image = docker_command.index("tensorflow/serving:2.19.1")
    assert docker_command[image + 1 :] == [
        "--model_config_file=/config/models.docker.config",
        "--enable_batching",
        "--batching_parameters_file=/config/batching_parameters.txt",
    ]
    # Atomic writes leave no temporary files behind.
    assert sorted(
        name for name in os.listdir(base_dir) if not os.path.isdir(os.path.join(base_dir, name))
    ) == ["batching_parameters.txt", "models.config", "models.docker.config"]


def test_prefix_out_dir_and_no_batching(base_dir, tmp_path):
    out = tmp_path / "config"
    summary = write_serving_config(
        base_dir, out_dir=str(out), base_path_prefix="/srv/models/", batching=False
    )
    assert _entries(_read_config(out / "models.config"))[0][:2] == (
        "encoder",
        "/srv/models/encoder",
    )
    assert summary["batching_parameters_file"] is None
    assert not (out / "batching_parameters.txt").exists()
    assert "batching" not in summary["command"] + summary["docker_command"]
    assert f"{out}:/config:ro" in shlex.split(summary["docker_command"])


def test_errors(saved_model, tmp_path):
    with pytest.raises(ValueError, match="`base_dir` must be an existing directory"):
        write_serving_config(str(tmp_path / "missing"))

    empty = tmp_path / "empty"
    (empty / "encoder" / ".tmp-1-2-ab").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"No servable model.*<model_name>/<version>/saved_model"):
        write_serving_config(str(empty))
    assert not (empty / "models.config").exists()

    bad_name = tmp_path / "bad_name"
    _add_version(saved_model, bad_name, "my model", "1")
    with pytest.raises(ValueError, match=r"Received: name='my model'"):
        write_serving_config(str(bad_name))

    incomplete = tmp_path / "incomplete"
    _add_version(saved_model, incomplete, "encoder", "1")
    (incomplete / "encoder" / "2").mkdir()
    with pytest.raises(ValueError, match=r"encoder/2 has no saved_model.pb"):
        write_serving_config(str(incomplete))

    with pytest.raises(ValueError, match="`base_path_prefix` must be an absolute path"):
        write_serving_config(str(tmp_path / "bad_name"), base_path_prefix="models")
    with pytest.raises(ValueError, match="`max_batch_size` must be a positive integer"):
        write_serving_config(str(incomplete), max_batch_size=0)


def test_serving_config_command(base_dir, capsys):
    assert main(["serving-config", base_dir, "--max-batch-size", "16", "--no-batching"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["models"] == {"encoder": [1, 2], "recommender": [3]}
    assert summary["batching_parameters_file"] is None
    assert "tensorflow_model_server --model_config_file=" in captured.err

    assert main(["serving-config", base_dir, "--batch-timeout-micros", "500"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with open(summary["batching_parameters_file"]) as file:
        assert "batch_timeout_micros { value: 500 }" in file.read()

    assert main(["serving-config", os.path.join(base_dir, "nope")]) == 2
    assert "`base_dir` must be an existing directory" in capsys.readouterr().err
