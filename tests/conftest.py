"""Session fixtures shared by the whole suite: tiny local models, the real MiniLM."""

from __future__ import annotations

import os
import random
import subprocess

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> str:
    """Path of a tiny random sentence-transformer (fast, offline)."""
    return build_tiny_sentence_transformer(str(tmp_path_factory.mktemp("tiny_st")))


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
def tiny_hub_dir(tiny_model_path, tmp_path_factory) -> str:
    """The tiny sentence-transformer as `preprocess/` + `encoder/` TF Hub SavedModels."""
    from keras_rec.hub.export_hub import export_hub

    hub_dir = str(tmp_path_factory.mktemp("tiny_hub") / "hub")
    export_hub(tiny_model_path, hub_dir)
    return hub_dir


# --- A small labelled text file for the classifier scripts -----------------

CLASS_WORDS = {
    "cinema": ["the", "movie", "story", "a", "b", "c"],
    "space": ["toy", "star", "wars", "x", "y", "z"],
    "other": ["of", "1", "2", "3", "!", "?"],
}


def labelled_rows(per_class=40, seed=0):
    """(text, label) rows whose words give the label away: learnable by a tiny encoder."""
    rng = random.Random(seed)
    rows = []
    for label, words in CLASS_WORDS.items():
        seen = set()
        while len(seen) < per_class:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 7)))
            if text not in seen:
                seen.add(text)
                rows.append((text, label))
    rng.shuffle(rows)
    return rows


@pytest.fixture
def write_labelled_csv(tmp_path):
    """`write(per_class=40) -> path`: a CSV of `labelled_rows` (columns body, topic)."""
    import pandas as pd

    def write(per_class: int = 40) -> str:
        path = tmp_path / f"labelled-{per_class}.csv"
        rows = labelled_rows(per_class=per_class)
        pd.DataFrame(rows, columns=["body", "topic"]).to_csv(path, index=False)
        return str(path)

    return write


@pytest.fixture
def labelled_csv(write_labelled_csv):
    return write_labelled_csv()


# --- MovieLens and one reference train-recommender run ----------------------


@pytest.fixture(scope="session")
def movielens_dir():
    """The fetched MovieLens-100K files (from the default keras_rec home)."""
    import keras_rec
    from keras_rec.home import datasets_dir

    keras_rec.data.movielens_100k()
    return str(datasets_dir() / "ml-100k")


@pytest.fixture(scope="session")
def single_worker_recommender(movielens_dir, tiny_model_path, tmp_path_factory) -> dict:
    """The summary of one uninterrupted, single-process `train-recommender` run."""
    from script_runs import recommender_command, script_environment, summary_of

    root = tmp_path_factory.mktemp("single_worker")
    result = subprocess.run(
        recommender_command(movielens_dir, tiny_model_path, root, root / "saved_models"),
        capture_output=True, text=True, env=script_environment(root), timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return summary_of(result.stdout)
