"""Tests for `package_sagemaker`: the model.tar.gz a SageMaker TF Serving endpoint loads."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile

import pytest
import tensorflow as tf

from keras_rec.cli import main
from keras_rec.serving import ServingCompatibilityError
from keras_rec.serving.sagemaker_package import package_sagemaker

# The files `tf.saved_model.save` writes for a variable-free module (TF 2.21).
SAVED_MODEL_MEMBERS = [
    "assets",
    "fingerprint.pb",
    "saved_model.pb",
    "variables",
    "variables/variables.data-00000-of-00001",
    "variables/variables.index",
]


class _Double(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        return {"y": x * 2.0}


class _PythonDouble(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        # `tf.py_function` saves as an `EagerPyFunc` op, which runs Python: no
        # model server can run it.
        return {"y": tf.py_function(lambda t: t * 2.0, [x], tf.float32)}


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("saved_models")
    paths = {"double": str(root / "double"), "python": str(root / "python")}
    tf.saved_model.save(_Double(), paths["double"])
    tf.saved_model.save(_PythonDouble(), paths["python"])
    return paths


@pytest.fixture()
def base_dir(saved_models, tmp_path) -> str:
    base = tmp_path / "models"
    for name, version in [("encoder", "1"), ("encoder", "2"), ("ranker", "7")]:
        shutil.copytree(saved_models["double"], base / name / version)
    extra = base / "encoder" / "2" / "assets.extra"
    extra.mkdir()
    (extra / "tf_serving_warmup_requests").write_bytes(b"warmup")
    # An export in progress: not a version.
    shutil.copytree(saved_models["double"], base / "encoder" / ".tmp-3-1234-ab12")
    return str(base)


def _members(version_prefix: str) -> list[str]:
    return [version_prefix] + [f"{version_prefix}/{name}" for name in SAVED_MODEL_MEMBERS]


def test_packs_latest_versions(base_dir, tmp_path):
    out = tmp_path / "model.tar.gz"
    summary = package_sagemaker(
        [os.path.join(base_dir, "ranker", "7"), os.path.join(base_dir, "encoder")], str(out)
    )
    assert summary["models"] == {"encoder": [2], "ranker": [7]}
    assert summary["bytes"] == out.stat().st_size
    assert summary["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    with tarfile.open(out) as tar:
        names = tar.getnames()
        members = {member.name: member for member in tar.getmembers()}
        assert tar.extractfile("encoder/2/assets.extra/tf_serving_warmup_requests").read() == (
            b"warmup"
        )
    expected = ["encoder"] + _members("encoder/2")
    expected.insert(expected.index("encoder/2/fingerprint.pb"), "encoder/2/assets.extra")
    expected.insert(
        expected.index("encoder/2/fingerprint.pb"),
        "encoder/2/assets.extra/tf_serving_warmup_requests",
    )
    assert names == expected + ["ranker"] + _members("ranker/7")
    assert members["encoder/2/variables"].isdir()
    assert members["encoder/2/saved_model.pb"].size == os.path.getsize(
        os.path.join(base_dir, "encoder", "2", "saved_model.pb")
    )
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]

    # Same inputs, same bytes.
    again = package_sagemaker(
        [os.path.join(base_dir, "encoder"), os.path.join(base_dir, "ranker", "7")],
        str(out),
        overwrite=True,
    )
    assert again["sha256"] == summary["sha256"]


def test_all_versions_and_code(base_dir, tmp_path):
    code = tmp_path / "code"
    (code / "lib").mkdir(parents=True)
    (code / "inference.py").write_text("def input_handler(data, context):\n    return data\n")
    (code / "lib" / "helpers.py").write_text("X = 1\n")
    (code / "notes.md").write_text("not packed\n")
    out = tmp_path / "model.tar.gz"
    summary = package_sagemaker(
        [os.path.join(base_dir, "encoder")], str(out), code_dir=str(code), versions="all"
    )
    assert summary["models"] == {"encoder": [1, 2]}
    assert summary["code"] == ["code/inference.py", "code/lib"]
    with tarfile.open(out) as tar:
        names = tar.getnames()
        assert tar.extractfile("code/inference.py").read().startswith(b"def input_handler")
    assert [name for name in names if not name.startswith("encoder/")] == [
        "encoder",
        "code",
        "code/inference.py",
        "code/lib",
        "code/lib/helpers.py",
    ]
    assert [name for name in names if name.startswith("encoder/1")] == _members("encoder/1")
    assert all(not name.startswith("/") and ".." not in name.split("/") for name in names)

    (code / "requirements.txt").write_text("numpy\n")
    summary = package_sagemaker(
        [os.path.join(base_dir, "encoder", "1")], str(out), code_dir=str(code), overwrite=True
    )
    assert summary["code"] == ["code/inference.py", "code/lib", "code/requirements.txt"]


def test_errors(base_dir, saved_models, tmp_path):
    out = tmp_path / "model.tar.gz"
    empty = tmp_path / "other" / "encoder"
    (empty / ".tmp-1-2-ab").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"holds no version: expected <model_dir>/<version>"):
        package_sagemaker([str(empty)], str(out))

    shutil.copytree(saved_models["double"], empty / "5")
    with pytest.raises(ValueError, match=r"both named 'encoder'"):
        package_sagemaker([os.path.join(base_dir, "encoder"), str(empty)], str(out))

    no_inference = tmp_path / "code"
    no_inference.mkdir()
    (no_inference / "requirements.txt").write_text("numpy\n")
    with pytest.raises(ValueError, match="`code_dir` must be a directory holding inference.py"):
        package_sagemaker([str(empty)], str(out), code_dir=str(no_inference))

    with pytest.raises(ValueError, match="must be a version directory named by a number"):
        package_sagemaker([saved_models["double"]], str(out))
    with pytest.raises(ValueError, match="`versions` must be 'latest' or 'all'"):
        package_sagemaker([str(empty)], str(out), versions="newest")
    with pytest.raises(ValueError, match="`out_path` must lie outside"):
        package_sagemaker([str(empty)], str(empty / "5" / "model.tar.gz"))
    assert not out.exists()

    out.write_bytes(b"previous")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        package_sagemaker([str(empty)], str(out))
    assert out.read_bytes() == b"previous"


def test_refuses_ops_no_server_has(base_dir, saved_models, tmp_path):
    model = tmp_path / "models" / "scorer"
    shutil.copytree(saved_models["python"], model / "4")
    out = tmp_path / "model.tar.gz"
    with pytest.raises(ServingCompatibilityError) as info:
        package_sagemaker([os.path.join(base_dir, "ranker"), str(model)], str(out))
    message = str(info.value)
    assert "model 'scorer' version 4: missing ['EagerPyFunc']" in message
    assert "ranker" not in message
    assert isinstance(info.value, ValueError)
    assert not out.exists()

    summary = package_sagemaker([str(model)], str(out), target=None)
    assert summary["models"] == {"scorer": [4]}


def test_package_sagemaker_command(base_dir, saved_models, tmp_path, capsys):
    out = tmp_path / "model.tar.gz"
    args = ["package-sagemaker", os.path.join(base_dir, "encoder"), "--out", str(out)]
    assert main([*args, "--all-versions", "--target", "tfserving-2.20"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["models"] == {"encoder": [1, 2]}
    assert summary["bytes"] == out.stat().st_size

    assert main(args) == 2
    assert "overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["models"] == {
        "encoder": [2]
    }

    scorer = tmp_path / "scorer"
    shutil.copytree(saved_models["python"], scorer / "1")
    command = ["package-sagemaker", str(scorer), "--out", str(tmp_path / "scorer.tar.gz")]
    assert main(command) == 2
    assert "EagerPyFunc" in capsys.readouterr().err
    assert main([*command, "--target", "none"]) == 0
