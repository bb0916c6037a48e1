"""Tests for the SageMaker training conventions in `keras_rec.training.sagemaker_job`."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re

import pytest

from keras_rec.training.sagemaker_job import parse_training_args, sagemaker_settings
from keras_rec.training.tf_config import is_chief


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("SM_HPS", "SM_MODEL_DIR", "SM_CHANNEL_TRAINING", "TF_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--loss", choices=["softmax", "bce"], default="softmax")
    parser.add_argument("--normalize", action="store_true")
    parser.add_argument("--no-cache", dest="cache", action="store_false")
    parser.add_argument("--tag", action="append", default=None)
    parser.add_argument("--output-dir", type=pathlib.Path, default=pathlib.Path("out"))
    parser.add_argument("--data", default=None)
    return parser


def _hps(monkeypatch, **values) -> None:
    monkeypatch.setenv("SM_HPS", json.dumps(values))


def test_without_sagemaker_it_is_parse_args():
    args = parse_training_args(_parser(), ["--epochs", "3"])
    assert (args.epochs, args.learning_rate, args.normalize, args.cache) == (3, 0.1, False, True)
    assert args.output_dir == pathlib.Path("out") and args.data is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "3", "--extra", "x"], "unrecognized arguments: --extra x"),
        (["--epoch", "5"], r"arguments: --epoch 5 \(--epoch: did you mean --epochs\?\)"),
        (["--learnin_rate=0.1"], "--learnin_rate: did you mean --learning-rate"),
        (["--no-such-flag", "1"], r"unrecognized arguments: --no-such-flag 1$"),
    ],
)
def test_unknown_or_misspelt_arguments_exit_2_naming_them(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_training_args(_parser(), argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.search(message, error), error


def test_sagemaker_underscore_spellings_are_aliases():
    args = parse_training_args(_parser(), ["--learning_rate", "0.01", "--output_dir=x"])
    assert (args.learning_rate, args.output_dir) == (0.01, pathlib.Path("x"))


def test_hyperparameters_are_converted_defaults(monkeypatch):
    hyperparameters = {
        "epochs": "4",  # SageMaker strings go through `type`.
        "learning_rate": 0.01,  # `_` for `-`.
        "loss": "bce",
        "normalize": "true",
        "no-cache": True,  # Spelled as the flag: the flag is given.
        "tag": ["a", "b"],
        "model_dir": "s3://bucket/job/model",  # Added by SageMaker: ignored.
        "sagemaker_program": "train.py",
    }
    _hps(monkeypatch, **hyperparameters)
    # SageMaker also passes hyperparameters as arguments, keys as spelled.
    args = parse_training_args(_parser(), ["--learning_rate", "0.01"])
    assert args.epochs == 4 and isinstance(args.epochs, int)
    assert args.learning_rate == 0.01
    assert (args.loss, args.normalize, args.cache, args.tag) == ("bce", True, False, ["a", "b"])

    # Explicit arguments win, including for an `append` option.
    args = parse_training_args(_parser(), ["--epochs", "9", "--loss", "softmax", "--tag", "c"])
    assert (args.epochs, args.loss, args.tag) == (9, "softmax", ["c"])

    _hps(monkeypatch, normalize=False, cache=False, epochs=2)
    args = parse_training_args(_parser(), [])
    # `cache` is the dest of `--no-cache`: its value is taken as it is.
    assert (args.normalize, args.cache, args.epochs) == (False, False, 2)


@pytest.mark.parametrize(
    "hyperparameters, message",
    [
        ({"epochs": 3, "batch_sise": 8, "warmup": 1}, r"does not know: \['batch_sise', 'warmup'\]"),
        ({"epoch": 3}, r"does not know: \['epoch'\] \('epoch': did you mean 'epochs'\?\)"),
        ({"epochs": "three"}, r"`SM_HPS\['epochs'\]` must be a valid int"),
        ({"epochs": 2.5}, r"must be a valid int .*Received: 2.5"),
        ({"loss": "mse"}, r"must be one of \['softmax', 'bce'\]"),
        ({"normalize": "yes"}, r"is a flag: it must be true or false"),
        ({"epochs": {"value": 3}}, r"must be a string, number or boolean"),
    ],
)
def test_bad_hyperparameters(monkeypatch, hyperparameters, message):
    _hps(monkeypatch, **hyperparameters)
    with pytest.raises(ValueError, match=message):
        parse_training_args(_parser(), [])


def test_sm_hps_must_be_a_json_object(monkeypatch):
    monkeypatch.setenv("SM_HPS", "[1, 2]")
    with pytest.raises(ValueError, match="`SM_HPS` must be a JSON object"):
        parse_training_args(_parser(), [])
    monkeypatch.setenv("SM_HPS", "{epochs: 3}")
    with pytest.raises(ValueError, match="`SM_HPS` must be JSON"):
        parse_training_args(_parser(), [])


def test_model_dir_and_training_channel(monkeypatch):
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    monkeypatch.setenv("SM_CHANNEL_TRAINING", "/opt/ml/input/data/training")
    args = parse_training_args(_parser(), [])
    assert args.output_dir == pathlib.Path("/opt/ml/model")  # Through `type`.
    assert args.data == "/opt/ml/input/data/training"

    args = parse_training_args(_parser(), ["--output-dir", "here", "--data=there"])
    assert (args.output_dir, args.data) == (pathlib.Path("here"), "there")

    _hps(monkeypatch, output_dir="/opt/ml/output/data/model")
    args = parse_training_args(_parser(), [])
    assert args.output_dir == pathlib.Path("/opt/ml/output/data/model")

    # A parser without these options is left alone.
    other = argparse.ArgumentParser()
    other.add_argument("--epochs", type=int, default=1)
    monkeypatch.delenv("SM_HPS")
    assert vars(parse_training_args(other, [])) == {"epochs": 1}


def test_environment_satisfies_required_options(monkeypatch):
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    with pytest.raises(SystemExit):
        parse_training_args(parser, [])
    monkeypatch.setenv("SM_CHANNEL_TRAINING", "/opt/ml/input/data/training")
    _hps(monkeypatch, epochs=2)
    args = parse_training_args(parser, [])
    assert (args.data, args.epochs) == ("/opt/ml/input/data/training", 2)
    # The parser is left as it was.
    assert all(action.required for action in parser._actions if action.dest != "help")


@pytest.mark.parametrize(
    "tf_config, chief",
    [
        (None, True),
        ({"task": {"type": "worker", "index": 1}}, True),  # No cluster: one process.
        ({"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "chief"}}, True),
        (
            {
                "cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                "task": {"type": "worker", "index": 0},
            },
            False,
        ),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": "1"}}, False),
        (
            {"cluster": {"worker": ["a:1"], "ps": ["a:2"]}, "task": {"type": "ps", "index": 0}},
            False,
        ),
        (
            {"cluster": {"master": ["a:1"], "ps": ["a:2"]}, "task": {"type": "master", "index": 0}},
            True,
        ),
    ],
)
def test_is_chief(monkeypatch, tf_config, chief):
    if tf_config is not None:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert is_chief() is chief


@pytest.mark.parametrize(
    "text, message",
    [
        ("{'cluster': {}}", "`TF_CONFIG` must be JSON"),
        ('["worker"]', "`TF_CONFIG` must be a JSON object"),
        ('{"cluster": {"worker": ["a:1"]}}', "'task' object with a 'type'"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "x"}}', "index"),
    ],
)
def test_malformed_tf_config(monkeypatch, text, message):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(ValueError, match=message):
        is_chief()


def test_sagemaker_settings(monkeypatch):
    for name in [name for name in os.environ if name.startswith("SM_")]:
        monkeypatch.delenv(name)
    assert sagemaker_settings()["on_sagemaker"] is False

    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    monkeypatch.setenv("SM_CHANNEL_TRAINING", "/opt/ml/input/data/training")
    monkeypatch.setenv("SM_CHANNEL_EVAL", "/opt/ml/input/data/eval")
    monkeypatch.setenv("SM_HOSTS", '["algo-1", "algo-2"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-2")
    monkeypatch.setenv("SM_NUM_GPUS", "0")
    _hps(monkeypatch, epochs=3)
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps(
            {
                "cluster": {"worker": ["algo-1:2222", "algo-2:2222"]},
                "task": {"type": "worker", "index": 1},
            }
        ),
    )
    summary = sagemaker_settings()
    assert summary["on_sagemaker"] is True
    assert summary["model_dir"] == "/opt/ml/model"
    assert summary["channels"] == {
        "eval": "/opt/ml/input/data/eval",
        "training": "/opt/ml/input/data/training",
    }
    assert summary["hosts"] == ["algo-1", "algo-2"] and summary["current_host"] == "algo-2"
    assert (summary["num_gpus"], summary["num_cpus"]) == (0, None)
    assert summary["hyperparameters"] == {"epochs": 3}
    assert summary["is_chief"] is False
    assert "SM_CHANNEL_EVAL" in summary["variables"]

    monkeypatch.setenv("SM_HOSTS", "algo-1")
    with pytest.raises(ValueError, match="`SM_HOSTS` must be JSON"):
        sagemaker_settings()
