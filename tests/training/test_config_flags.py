"""Flags generated from the training config dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from keras_rec.training.classifier_config import ClassifierTrainingConfig
from keras_rec.training.classifier_script import build_argument_parser as classifier_parser
from keras_rec.training.config_flags import add_config_flags, config_from_args, flag
from keras_rec.training.recommender_config import RecommenderTrainingConfig
from keras_rec.training.recommender_script import build_argument_parser as recommender_parser
from keras_rec.training.run_config import RunConfig
from keras_rec.training.sagemaker_job import parse_training_args

SCRIPTS = [
    (RecommenderTrainingConfig, recommender_parser),
    (ClassifierTrainingConfig, classifier_parser),
]


@pytest.fixture(autouse=True)
def no_sagemaker(monkeypatch):
    for name in ("SM_HPS", "SM_MODEL_DIR", "SM_CHANNEL_TRAINING"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("config_cls, build", SCRIPTS)
def test_every_field_is_one_flag_and_no_flags_give_the_defaults(config_cls, build):
    parser = build()
    dests = {a.dest for a in parser._actions if a.option_strings and a.dest != "help"}
    assert dests == {field.name for field in dataclasses.fields(config_cls)}
    assert config_from_args(config_cls, parse_training_args(parser, [])) == config_cls()
    # The run settings are shared, the model's own come first in --help.
    options = [a.option_strings[0] for a in parser._actions if a.option_strings][1:]
    assert options[-len(dataclasses.fields(RunConfig)) :][0] == "--seed"


def test_flag_kinds_follow_the_annotations():
    args = parse_training_args(
        recommender_parser(),
        [
            "--no-log-q",
            "--hidden-units",
            "512,64",
            "--max-ratings",
            "6000",
            "--mlflow",
            "--loss",
            "sampled_bce",
            "--temperature",
            "0.1",
        ],
    )
    config = config_from_args(RecommenderTrainingConfig, args)
    assert config == RecommenderTrainingConfig(
        log_q=False,
        hidden_units=(512, 64),
        max_ratings=6000,
        mlflow=True,
        loss="sampled_bce",
        temperature=0.1,
    )
    empty = parse_training_args(classifier_parser(), ["--hidden-units", "", "--trainable"])
    assert (empty.hidden_units, empty.trainable) == ((), True)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--hidden-units", "512,x"], "--hidden-units: must be comma-separated integers"),
        (["--loss", "hinge"], "--loss: invalid choice: 'hinge'"),
        (["--epochs", "2.5"], "--epochs: invalid int value: '2.5'"),
        (["--encoder-precision", "float16"], "--encoder-precision: invalid choice"),
        (["--index", "hnsw"], "--index: invalid choice: 'hnsw'"),
        (["--index-storage", "float16"], "--index-storage: invalid choice"),
    ],
)
def test_bad_values_exit_2_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_training_args(recommender_parser(), argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bfloat16_encoder_is_refused_for_fine_tuning():
    assert ClassifierTrainingConfig(encoder_precision="bfloat16").encoder_precision == "bfloat16"
    with pytest.raises(ValueError, match="must be 'float32' when fine-tuning"):
        ClassifierTrainingConfig(trainable=True, encoder_precision="bfloat16")


def test_sagemaker_hyperparameters_go_through_the_same_flags(monkeypatch):
    monkeypatch.setenv(
        "SM_HPS", json.dumps({"hidden_units": "64", "log_q": "false", "epochs": "3"})
    )
    config = config_from_args(
        RecommenderTrainingConfig, parse_training_args(recommender_parser(), [])
    )
    assert (config.hidden_units, config.log_q, config.epochs) == ((64,), False, 3)


def test_a_field_type_without_a_flag_is_refused():
    @dataclasses.dataclass
    class Odd:
        mapping: dict = flag(None, "no flag for this")

    with pytest.raises(TypeError, match="Config field 'mapping' has type 'dict'"):
        add_config_flags(argparse.ArgumentParser(), Odd)
