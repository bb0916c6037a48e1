"""Session fixtures shared by the whole suite: tiny local models, the real MiniLM, and
the training runs several modules read (each built once, through the `keras-rec`
command a user types: `movielens_run`, `frozen_classifier_runs`, `tuned_classifier_run`)."""

from __future__ import annotations

import os
import pathlib
import sys

# Line coverage of keras_rec (tests/coverage_startup): its plugin is on the path
# before anything imports keras_rec.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "coverage_startup"))

import pytest  # noqa: E402
from labelled_texts import write_labelled_csv_file
from script_runs import (
    CLASSIFIER_FLAGS,
    FROZEN_EPOCHS,
    TUNED_CLASSIFIER_FLAGS,
    TUNED_PER_CLASS,
    recommender_args,
    run_cli,
    shared_base,
    shared_run,
)

pytest_plugins = ("line_coverage_plugin",)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --- Tiers: the default suite, and `large` tests run with --run-large ---------


def pytest_addoption(parser):
    parser.addoption(
        "--run-large",
        "--run_large",
        action="store_true",
        default=False,
        help="also run the tests marked `large` (inherently slow; .ci/run runs them)",
    )


# Tests that read one shared run go to one pytest-xdist worker (`--dist loadgroup`),
# which builds it while the other worker runs other tests; every other test goes
# with its module, whose fixtures are then built once.
SHARED_RUN_GROUPS = {
    "movielens_run": "movielens_run",
    "frozen_classifier_runs": "classifier_runs",
    "tuned_classifier_run": "classifier_runs",
}


# The groups of more than about 15 s, longest first (`--no-loadscope-reorder` keeps
# this order; the rest follow in file order), so the two workers finish together
# instead of one running a long group handed out last. The second worker starts with
# `test_encoder_export`, which needs none of the session's tiny models: it does not
# wait on their locks while the first worker builds them. Seconds from a CI run's
# JUnit file (`build/ci/default.xml`, summed per group) set the order.
LONG_GROUPS = (
    "classifier_runs", "test_encoder_export", "test_notebooks", "test_export_hub",
    "test_user_data", "movielens_run", "test_export", "test_cached_encoder",
    "test_strategy_fit", "test_ivf_index", "test_text_classifier",
    "test_wordpiece_preprocessor", "test_sentence_encoder_backends", "test_beam_pipeline",
    "test_hub_layer", "test_retrieval_serving", "test_tensorflow_startup",
)  # fmt: skip


# Large tests each go alone to a worker, longest first: in `.ci/run` the shared runs
# they read exist already (the default tier built them), and two of them on one
# worker would be the tier's critical path. (Run alone, the first test to need a
# shared run builds it while the other worker waits on its lock.)
LONG_LARGE_TESTS = (
    "test_two_workers_train_like_one_and_resume_at_the_epoch_a_killed_worker_reached",
    "test_a_killed_run_resumes_from_its_last_checkpoint",
    "test_two_workers_fine_tune_the_classifier_like_one",
    "test_bfloat16_export_is_close_servable_and_recorded",
)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    groups = {}
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        group = next((g for name, g in SHARED_RUN_GROUPS.items() if name in fixtures), None)
        if "large" in item.keywords:
            group = item.name
        groups[item.nodeid] = group or item.path.stem
        item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    rank = {group: index for index, group in enumerate(LONG_GROUPS + LONG_LARGE_TESTS)}
    items.sort(key=lambda item: rank.get(groups[item.nodeid], len(rank)))  # stable
    if config.getoption("--run-large"):
        return
    skip_large = pytest.mark.skip(reason="large: run with --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip_large)


TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'")
    + ["the", "movie", "story", "toy", "star", "wars", "##s", "##ing", "##ed", "of"]
)


def build_tiny_sentence_transformer(directory: str, seed: int = 0, hidden_size: int = 32) -> str:
    """Writes a 2-layer random BERT + mean pooling sentence-transformer to `directory`."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizer

    base = os.path.join(directory, "hf")
    os.makedirs(base, exist_ok=True)
    vocab_file = os.path.join(base, "vocab.txt")
    with open(vocab_file, "w") as file:
        file.write("\n".join(TINY_VOCAB) + "\n")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(base)
    # transformers 5 takes the vocabulary file as `vocab=`; `vocab_file=` is ignored.
    BertTokenizer(vocab=vocab_file).save_pretrained(base)
    transformer = Transformer(base, max_seq_length=48)
    model = SentenceTransformer(modules=[transformer, Pooling(hidden_size, "mean")], device="cpu")
    path = os.path.join(directory, "sentence-transformer")
    model.save(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def session_temp_dir(tmp_path_factory):
    """`TMPDIR` for the session and every process it starts.

    Whatever a test leaves in the temporary directory (a notebook's outputs, a
    killed worker's checkpoints) then lies under pytest's base temporary
    directory, which pytest prunes to the last few sessions, instead of
    piling up in the machine's `/tmp`.
    """
    import tempfile

    directory = tmp_path_factory.mktemp("tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(directory))
        patch.setattr(tempfile, "tempdir", None)  # Read `TMPDIR` again.
        yield directory


@pytest.fixture(scope="session", autouse=True)
def keras_rec_home(tmp_path_factory):
    """One `KERAS_REC_HOME` for the session: its processes, xdist workers included.

    Its `hub/` keeps each encoder's TF Hub export (made once, then found by every
    script run); `datasets/` is the default home's, so datasets are fetched once
    per machine as a user's are.
    """
    from keras_rec.home import keras_rec_home as default_home

    datasets = default_home() / "datasets"
    datasets.mkdir(parents=True, exist_ok=True)
    home = shared_base(tmp_path_factory) / "keras_rec_home"
    home.mkdir(exist_ok=True)
    try:
        (home / "datasets").symlink_to(datasets, target_is_directory=True)
    except FileExistsError:
        pass
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_REC_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> str:
    """Path of a tiny random sentence-transformer (fast, offline), one per session."""
    built = shared_run(
        tmp_path_factory, "tiny_st", lambda root: {"path": build_tiny_sentence_transformer(root)}
    )
    return built["path"]


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_path):
    from keras_rec.embeddings import SentenceEncoder

    return SentenceEncoder(tiny_model_path, device="cpu", batch_size=8)


@pytest.fixture(scope="session")
def minilm_encoder():
    """The embedded all-MiniLM-L6-v2, loaded once per session."""
    from keras_rec.embeddings import SentenceEncoder

    return SentenceEncoder(device="cpu")


@pytest.fixture(scope="session")
def tiny_hub_dir(tiny_model_path, keras_rec_home) -> str:
    """The tiny sentence-transformer as `preprocess/` + `encoder/` TF Hub SavedModels.

    The export every script run with `--model <tiny>` finds in the session's home.
    """
    from keras_rec.hub.local_hub import hub_modules

    return hub_modules(tiny_model_path)[0]


# --- A small labelled text file for the classifier scripts -----------------


@pytest.fixture
def write_labelled_csv(tmp_path):
    """`write(per_class=40) -> path`: a CSV of `labelled_rows` (columns body, topic)."""
    return lambda per_class=40: write_labelled_csv_file(
        tmp_path / f"labelled-{per_class}.csv", per_class
    )


@pytest.fixture
def labelled_csv(write_labelled_csv):
    return write_labelled_csv()


@pytest.fixture(scope="session")
def frozen_classifier_runs(tiny_model_path, tiny_hub_dir, tmp_path_factory) -> dict:
    """Two `keras-rec train-classifier` runs of a frozen encoder, one cache.

    `first`: `--mlflow` (experiment `topics-exp`), an empty embedding cache.
    `again`: the same command without `--mlflow`: every embedding from the
    cache, the export's version 2. Each summary has `root` and the data file.
    """

    def build(root):
        data = write_labelled_csv_file(root / "labelled.csv")
        common = [
            "train-classifier", "--data", data, "--model", tiny_model_path, *CLASSIFIER_FLAGS,
            "--epochs", FROZEN_EPOCHS, "--head-learning-rate", "1e-2",
            "--output-dir", root / "saved_models", "--cache", root / "cache",
        ]  # fmt: skip
        first = run_cli([*common, "--mlflow", "--mlflow-experiment", "topics-exp"], root)
        again_root = root / "again"
        again_root.mkdir()
        again = run_cli(common, again_root)
        return {"first": first, "again": again, "root": str(root), "data": data}

    return shared_run(tmp_path_factory, "frozen_classifier", build)


@pytest.fixture(scope="session")
def tuned_classifier_run(tiny_model_path, tiny_hub_dir, tmp_path_factory) -> dict:
    """`keras-rec train-classifier` fine-tuning, `--distribute mirrored`: `{"summary", "data"}`.

    360 labelled texts (a test split of 90, enough to compare with the two-worker
    run of the same settings in tests/training/test_multi_worker.py).
    """

    def build(root):
        data = write_labelled_csv_file(root / "labelled.csv", per_class=TUNED_PER_CLASS)
        summary = run_cli(
            [
                "train-classifier",
                "--data",
                data,
                "--model",
                tiny_model_path,
                *CLASSIFIER_FLAGS,
                *TUNED_CLASSIFIER_FLAGS,
                "--distribute",
                "mirrored",
                "--output-dir",
                root / "saved_models",
                "--cache",
                root / "cache",
            ],  # fmt: skip
            root,
        )
        return {"summary": summary, "data": data}

    return shared_run(tmp_path_factory, "tuned_classifier", build)


# --- MovieLens and the suite's train-recommender run ------------------------


@pytest.fixture(scope="session")
def movielens_dir():
    """The fetched MovieLens-100K files (from the keras_rec home's datasets)."""
    import keras_rec
    from keras_rec.home import datasets_dir

    keras_rec.data.movielens_100k()
    return str(datasets_dir() / "ml-100k")


@pytest.fixture(scope="session")
def movielens_run(movielens_dir, tiny_model_path, tiny_hub_dir, tmp_path_factory) -> dict:
    """The suite's one MovieLens `keras-rec train-recommender` run (`RECOMMENDER_FLAGS`).

    `{"summary", "root", "tracking_uri"}`. Its exports live in
    `root/saved_models`; a test that changes them works on a copy.
    """

    def build(root):
        summary = run_cli(
            recommender_args(movielens_dir, tiny_model_path, root, root / "saved_models"), root
        )
        return {
            "summary": summary,
            "root": str(root),
            "tracking_uri": f"sqlite:///{pathlib.Path(root) / 'mlruns.db'}",
        }

    return shared_run(tmp_path_factory, "movielens_run", build)
