"""Tiny random sentence-transformers (BERT and MPNet) for the hub tests.

Test modules reach the builder through the `build_tiny_hub_model` fixture.
Tests that `from conftest import ...` may get this file instead of
`tests/conftest.py` (both directories are on `sys.path`), so the root
conftest's helpers are re-exported here under their own names.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def _load_root_conftest():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conftest.py")
    spec = importlib.util.spec_from_file_location("_keras_rec_tests_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ROOT = _load_root_conftest()
TINY_VOCAB = _ROOT.TINY_VOCAB
build_tiny_sentence_transformer = _ROOT.build_tiny_sentence_transformer

WORDS = [
    "the", "movie", "story", "toy", "star", "wars", "of", "a", "is", "good", "bad",
    "great", "film", "space", "love", "war", "time", "man", "day", "night",
]  # fmt: skip
WORD_PIECES = ["##s", "##ing", "##ed", "##ly"]
CHARACTERS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'")
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# MPNet's embeddings hard-code padding index 1, so "<pad>" must be id 1.
MPNET_SPECIALS = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]


def _perturb(model, seed: int, scale: float = 0.2) -> None:
    """Adds noise to every weight so layer norms, biases and the pooler matter."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)


def build_tiny_hub_model(
    directory: str,
    architecture: str = "bert",
    pooling_mode: str | tuple[str, ...] = "mean",
    normalize: bool = False,
    dense_features: int | None = None,
    seed: int = 0,
    hidden_size: int = 32,
):
    """Builds (and saves to `directory`) a 2-layer random sentence-transformer.

    Args:
        directory: str. Where the Hugging Face model and the
            sentence-transformer are written.
        architecture: str. `"bert"` or `"mpnet"`.
        pooling_mode: str or tuple. The `Pooling` module's mode(s).
        normalize: bool. Append a `Normalize` module.
        dense_features: int or None. Append a `Dense(tanh)` module to this width.
        seed: int. Torch seed of the weights.
        hidden_size: int.

    Returns:
        `(model, path)`: the loaded `SentenceTransformer` and its saved path.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Transformer,
    )

    base = os.path.join(directory, "hf")
    os.makedirs(base, exist_ok=True)
    vocab_file = os.path.join(base, "vocab.txt")
    specials = BERT_SPECIALS if architecture == "bert" else MPNET_SPECIALS
    vocab = specials + CHARACTERS + WORDS + WORD_PIECES
    with open(vocab_file, "w") as file:
        file.write("\n".join(vocab) + "\n")
    torch.manual_seed(seed)
    common = dict(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=80,
    )
    # transformers 5 takes the vocabulary file as `vocab=`; `vocab_file=` is ignored.
    if architecture == "bert":
        from transformers import BertConfig, BertModel, BertTokenizer

        hf_model = BertModel(BertConfig(**common))
        tokenizer = BertTokenizer(vocab=vocab_file)
    elif architecture == "mpnet":
        from transformers import MPNetConfig, MPNetModel, MPNetTokenizer

        hf_model = MPNetModel(MPNetConfig(**common, relative_attention_num_buckets=32))
        tokenizer = MPNetTokenizer(vocab=vocab_file)
    else:
        raise ValueError(f"Unknown architecture {architecture!r}")
    _perturb(hf_model, seed)
    hf_model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    modules = [Transformer(base, max_seq_length=64), Pooling(hidden_size, pooling_mode)]
    if dense_features:
        modules.append(
            Dense(
                modules[1].get_embedding_dimension(),
                dense_features,
                activation_function=torch.nn.Tanh(),
            )
        )
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, device="cpu")
    model.eval()
    path = os.path.join(directory, "sentence-transformer")
    model.save(path)
    return model, path


@pytest.fixture(scope="session")
def build_tiny_hub_model_fn():
    """The `build_tiny_hub_model` function."""
    return build_tiny_hub_model


@pytest.fixture(scope="session")
def tiny_bert_model(tmp_path_factory):
    """`(model, path)` of a tiny BERT sentence-transformer: mean pooling + Normalize."""
    return build_tiny_hub_model(
        str(tmp_path_factory.mktemp("tiny_bert")), "bert", "mean", normalize=True
    )


@pytest.fixture(scope="session")
def tiny_bert_encoder_dir(tiny_bert_model, tmp_path_factory) -> str:
    """The tiny BERT sentence-transformer saved as a TF Hub encoder SavedModel."""
    from keras_rec.hub.encoder_export import save_encoder

    export_dir = str(tmp_path_factory.mktemp("tiny_bert_encoder") / "encoder")
    save_encoder(tiny_bert_model[1], export_dir)
    return export_dir
