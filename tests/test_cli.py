import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keras_rec.cli import main
from keras_rec.embeddings.embed_table import read_embeddings_parquet

REPO = Path(__file__).resolve().parents[1]


def _last_json(capsys):
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def _write_csv(path, rows):
    pd.DataFrame(rows, columns=["doc_id", "body"]).to_csv(path, index=False)


def test_embed_writes_parquet_and_reuses_the_cache(tiny_model_path, tiny_encoder, tmp_path, capsys):
    source = tmp_path / "docs.csv"
    _write_csv(source, [("d1", "the toy story"), ("d2", "star wars"), ("d3", "the movie")])
    output = tmp_path / "out" / "embeddings.parquet"
    args = [
        "embed",
        "--input",
        str(source),
        "--text-column",
        "body",
        "--id-column",
        "doc_id",
        "--cache",
        str(tmp_path / "cache"),
        "--output",
        str(output),
        "--model",
        tiny_model_path,
    ]
    assert main(args) == 0
    summary = _last_json(capsys)
    assert (summary["rows"], summary["num_encoded"], summary["embedding_dim"]) == (3, 3, 32)

    frame, vectors = read_embeddings_parquet(output)
    assert frame["doc_id"].tolist() == ["d1", "d2", "d3"]
    assert frame["text"].tolist() == ["the toy story", "star wars", "the movie"]
    np.testing.assert_allclose(vectors, tiny_encoder.encode(frame["text"].tolist()), atol=1e-5)

    assert main(args) == 0
    assert _last_json(capsys)["num_encoded"] == 0


def test_embed_bad_input_fails_before_touching_the_output(tiny_model_path, tmp_path, capsys):
    source = tmp_path / "docs.csv"
    _write_csv(source, [("d1", "a"), ("d2", "b"), ("d1", "c")])
    output = tmp_path / "embeddings.parquet"
    output.write_bytes(b"previous result")
    code = main(
        [
            "embed",
            "--input",
            str(source),
            "--text-column",
            "body",
            "--id-column",
            "doc_id",
            "--cache",
            str(tmp_path / "cache"),
            "--output",
            str(output),
            "--model",
            tiny_model_path,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "doc_id" in err and "docs.csv" in err and "1, 3" in err
    assert output.read_bytes() == b"previous result"
    assert not list(tmp_path.glob("*.tmp-*"))

    code = main(
        [
            "embed",
            "--input",
            str(source),
            "--text-column",
            "missing_col",
            "--cache",
            str(tmp_path / "cache"),
            "--output",
            str(output),
            "--model",
            tiny_model_path,
        ]
    )
    assert code == 2
    assert "missing_col" in capsys.readouterr().err


def test_embed_shards_fill_the_cache_for_a_final_run(tiny_model_path, tmp_path, capsys):
    source = tmp_path / "docs.csv"
    _write_csv(source, [(f"d{i}", f"the movie {i}") for i in range(30)])
    common = [
        "--input",
        str(source),
        "--text-column",
        "body",
        "--cache",
        str(tmp_path / "cache"),
        "--model",
        tiny_model_path,
    ]
    encoded = 0
    for index in range(2):
        assert main(["embed", *common, "--shard", f"{index}/2"]) == 0
        encoded += _last_json(capsys)["num_encoded"]
    assert encoded == 30
    assert main(["embed", *common, "--output", str(tmp_path / "all.parquet")]) == 0
    assert _last_json(capsys)["num_encoded"] == 0


def test_embed_movielens_on_the_real_data(tiny_model_path, tmp_path, capsys):
    args = [
        "embed-movielens",
        "--model",
        tiny_model_path,
        "--cache",
        str(tmp_path / "cache"),
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    summary = _last_json(capsys)
    assert (summary["items"], summary["users"], summary["ratings"]) == (1682, 943, 100000)
    # 18 movies appear twice under two ids (same title and year): 1664 distinct texts.
    assert summary["unique_item_texts"] == 1664
    assert summary["items_encoded"] == 1664 and summary["users_encoded"] == 943
    assert len(summary["nearest_items"]) == 5
    items, item_vectors = read_embeddings_parquet(tmp_path / "out" / "items.parquet")
    assert items["item_id"].tolist()[:2] == [1, 2]
    assert items["text"][0] == "Toy Story (1995). Animation, Children's, Comedy"
    assert item_vectors.shape == (1682, 32)

    assert main(args) == 0
    again = _last_json(capsys)
    assert again["items_encoded"] == 0 and again["users_encoded"] == 0


def test_script_wrappers_reach_the_cli():
    for script, command in [
        ("embed.py", "embed"),
        ("embed_movielens.py", "embed-movielens"),
        ("train_classifier.py", "train-classifier"),
        ("train_recommender.py", "train-recommender"),
    ]:
        result = subprocess.run(
            [sys.executable, str(REPO / "scripts" / script), "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert f"keras-rec {command}" in result.stdout


# === Unknown flags stop a training run before any work ===

TRAINING_COMMANDS = ["train-recommender", "train-classifier"]


def _rejected(argv, tmp_path, capsys) -> str:
    """Runs `keras-rec ARGV --output-dir TMP/out`; asserts exit 2 and nothing written."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--output-dir", str(out)])
    assert exit_info.value.code == 2
    assert not out.exists()
    return capsys.readouterr().err


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_unknown_flag_exits_2_naming_it(command, tmp_path, capsys):
    err = _rejected([command, "--clicks", "my_clicks.csv", "--epochs", "5"], tmp_path, capsys)
    assert f"keras-rec {command}: error: unrecognized arguments: --clicks my_clicks.csv" in err


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_misspelt_flag_exits_2_with_the_closest_flag(command, tmp_path, capsys):
    # `--epoch` was accepted as an abbreviation of `--epochs` before.
    err = _rejected([command, "--epoch", "5"], tmp_path, capsys)
    assert "unrecognized arguments: --epoch 5 (--epoch: did you mean --epochs?)" in err


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_unknown_sagemaker_hyperparameter_fails_at_start(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SM_HPS", json.dumps({"epoch": 3, "batch_size": 16}))
    out = tmp_path / "out"
    assert main([command, "--output-dir", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "`SM_HPS` holds hyperparameters the parser does not know: ['epoch']" in err
    assert "('epoch': did you mean 'epochs'?)" in err


def test_sagemaker_underscore_spellings_are_accepted():
    from keras_rec.training.classifier_script import build_argument_parser as classifier
    from keras_rec.training.recommender_script import build_argument_parser as recommender
    from keras_rec.training.sagemaker_job import parse_training_args

    for build in (recommender, classifier):
        args = parse_training_args(
            build(),
            ["--batch_size", "16", "--learning_rate=0.5"]
            if build is recommender
            else ["--batch_size", "16"],
        )
        assert args.batch_size == 16


def test_a_rejected_flag_needs_no_tensorflow(tmp_path):
    script = (
        "import sys\n"
        "from keras_rec.cli import main\n"
        "try:\n"
        "    main(['train-recommender', '--no-such-flag', '1',\n"
        f"          '--output-dir', {str(tmp_path)!r}])\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code, 'tensorflow' in sys.modules, 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "exit 2 False False", result.stderr[-2000:]
    assert "unrecognized arguments: --no-such-flag 1" in result.stderr


# The main inputs each subcommand's line of `keras-rec --help` names.
MAIN_INPUTS = {
    "train-classifier": ["labelled CSV/Parquet", "tweets", "sentence-transformer"],
    "train-recommender": ["MovieLens", "interactions", "items", "users", "CSV/Parquet"],
    "embed": ["text column", "CSV/TSV/Parquet/JSON Lines", "URL"],
    "embed-movielens": ["MovieLens-100K"],
    "export-hub": ["sentence-transformer"],
    "check-serving": ["SavedModel"],
    "serving-config": ["SavedModels of a directory"],
    "package-sagemaker": ["SavedModel versions"],
    "build-index": ["item vectors (Parquet)", "queries"],
    "add-items": ["new items (CSV/TSV/Parquet)", "retrieval or next_items model"],
}


def test_each_command_line_of_the_help_names_its_main_inputs():
    """`keras-rec --help` as a user types it: one entry per subcommand, naming its inputs."""
    result = subprocess.run(
        [sys.executable, "-m", "keras_rec.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("COMMAND\n", 1)[1].split("\noptions:", 1)[0]
    entries, name = {}, None
    for line in listing.splitlines():
        words = line.split()
        if line.startswith("    ") and not line.startswith("     ") and words:
            name = words[0]
            entries[name] = " ".join(words[1:])
        elif name and words:
            entries[name] += " " + " ".join(words)
    assert sorted(entries) == sorted(MAIN_INPUTS)
    for command, inputs in MAIN_INPUTS.items():
        for words in inputs:
            assert words in entries[command], (command, words, entries[command])
    assert "the MovieLens two-tower recommender" not in result.stdout  # the old scope
