"""`WordpiecePreprocessor`: token-for-token parity with Hugging Face, serving-safe ops."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from parity_corpus import parity_corpus

from keras_rec.hub.bert_word_splitter import BertWordSplitter
from keras_rec.hub.wordpiece_preprocessor import (
    WordpiecePreprocessor,
    build_preprocessor,
    save_preprocessor,
)
from keras_rec.serving.saved_model_ops import list_core_ops, list_saved_model_ops

SERVING_SAFE_TF_TEXT_OPS = {
    "NormalizeUTF8",
    "CaseFoldUTF8",
    "RegexSplitWithOffsets",
    "WordpieceTokenizeWithOffsets",
}
# The TF Text libraries that register the four ops above.
TF_TEXT_OP_LIBRARIES = ("_normalize_ops.so", "_regex_split_ops.so", "_wordpiece_tokenizer.so")
BATCH_SIZE = 64
CORPUS = parity_corpus()


def batches(texts: list[str], size: int = BATCH_SIZE) -> list[list[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def hf_encode(tokenizer, texts, pairs=None, max_length=None, padding=True) -> dict:
    """The reference: the Hugging Face tokenizer, as numpy int32, with type ids."""
    encoded = tokenizer(
        texts,
        pairs,
        truncation="longest_first",
        max_length=max_length,
        padding=padding,
        return_tensors="np",
        # The type ids of the tokenizer's own template, also for models that
        # ignore them (MPNet's template marks the second segment with 1 from
        # transformers 5.5 on, 0 before).
        return_token_type_ids=True,
    )
    ids = encoded["input_ids"].astype(np.int32)
    type_ids = encoded["token_type_ids"]
    return {
        "input_word_ids": ids,
        "input_mask": encoded["attention_mask"].astype(np.int32),
        "input_type_ids": type_ids.astype(np.int32),
    }


def assert_same_inputs(actual: dict, expected: dict, texts: list[str]) -> None:
    actual = {key: np.asarray(value) for key, value in actual.items()}
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key].dtype == np.int32, key
        assert actual[key].shape == value.shape, (key, actual[key].shape, value.shape)
        rows = np.flatnonzero((actual[key] != value).any(axis=1))
        assert rows.size == 0, f"{key} differs for {[texts[i][:80] for i in rows]}"


@pytest.fixture(scope="module")
def minilm():
    from keras_rec.embeddings.sentence_encoder import load_sentence_transformer

    return load_sentence_transformer(None, device="cpu")


@pytest.fixture(scope="module")
def minilm_preprocessor(minilm):
    return build_preprocessor(minilm)


@pytest.fixture(scope="module")
def minilm_export(minilm_preprocessor, tmp_path_factory) -> str:
    return save_preprocessor(
        minilm_preprocessor, str(tmp_path_factory.mktemp("export") / "minilm_preprocessor")
    )


@pytest.fixture(scope="module")
def mpnet_tokenizer(minilm, tmp_path_factory):
    """An `MPNetTokenizer` laid out like all-mpnet-base-v2's, on MiniLM's vocabulary.

    all-mpnet-base-v2 puts `<s> <pad> </s> <unk>` before the BERT uncased
    vocabulary and `<mask>` after it; its unknown token is the BERT `[UNK]`.
    """
    from transformers import MPNetTokenizer

    bert_vocabulary = sorted(minilm.tokenizer.get_vocab(), key=minilm.tokenizer.get_vocab().get)
    vocabulary = ["<s>", "<pad>", "</s>", "<unk>", *bert_vocabulary, "<mask>"]
    path = tmp_path_factory.mktemp("mpnet") / "vocab.txt"
    path.write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary file as `vocab=`; `vocab_file=` is ignored.
    tokenizer = MPNetTokenizer(vocab=str(path))
    # hello = 7592 and world = 2088 in BERT, shifted by the 4 MPNet specials.
    assert tokenizer("Hello world")["input_ids"] == [0, 7596, 2092, 2]
    return tokenizer


@pytest.fixture(scope="module")
def mpnet_preprocessor(mpnet_tokenizer):
    return WordpiecePreprocessor.from_tokenizer(mpnet_tokenizer, max_seq_length=128)


def test_corpus_is_large_and_fixed():
    assert len(CORPUS) >= 500
    assert parity_corpus() == CORPUS
    assert any(len(text.split()) > 300 for text in CORPUS)


def test_call_matches_sentence_transformers_on_corpus(minilm, minilm_preprocessor):
    assert minilm.max_seq_length == 256
    for texts in batches(CORPUS):
        features = minilm.preprocess(texts)
        expected = {
            "input_word_ids": features["input_ids"].numpy().astype(np.int32),
            "input_mask": features["attention_mask"].numpy().astype(np.int32),
            "input_type_ids": features["token_type_ids"].numpy().astype(np.int32),
        }
        assert_same_inputs(minilm_preprocessor(tf.constant(texts)), expected, texts)


def test_saved_model_matches_hf_after_loading(minilm, minilm_export):
    loaded = tf.saved_model.load(minilm_export)
    serving = loaded.signatures["serving_default"]
    for texts in batches(CORPUS):
        expected = hf_encode(minilm.tokenizer, texts, max_length=256)
        assert_same_inputs(loaded(tf.constant(texts)), expected, texts)
        assert_same_inputs(serving(text=tf.constant(texts)), expected, texts)
    vocabulary = (
        open(os.path.join(minilm_export, "assets", "vocab.txt"), encoding="utf-8")
        .read()
        .splitlines()
    )
    assert {token: i for i, token in enumerate(vocabulary)} == minilm.tokenizer.get_vocab()


def test_saved_model_runs_in_a_fresh_process_without_tensorflow_text(
    minilm, minilm_export, tmp_path
):
    ops_dir = os.path.join(
        importlib.util.find_spec("tensorflow_text").submodule_search_locations[0], "python", "ops"
    )
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(CORPUS))
    script = textwrap.dedent(
        """
        import json, os, sys
        import numpy as np
        import tensorflow as tf

        export_dir, ops_dir, texts_file, out_file = sys.argv[1:5]
        for library in %r:
            tf.load_op_library(os.path.join(ops_dir, library))
        serving = tf.saved_model.load(export_dir).signatures["serving_default"]
        texts = json.load(open(texts_file))
        outputs = {}
        for size in map(int, sys.argv[5:]):
            for i in range(0, len(texts), size):
                for key, value in serving(text=tf.constant(texts[i : i + size])).items():
                    outputs[f"{size}/{i}/{key}"] = value.numpy()
        np.savez(out_file, **outputs)
        assert "tensorflow_text" not in sys.modules
        """
        % (TF_TEXT_OP_LIBRARIES,)
    )
    out_file = tmp_path / "outputs.npz"
    batch_sizes = (BATCH_SIZE, 200)
    subprocess.run(
        [sys.executable, "-c", script, minilm_export, ops_dir, str(texts_file), str(out_file)]
        + [str(size) for size in batch_sizes],
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    outputs = np.load(out_file)
    for size in batch_sizes:
        for start, texts in zip(range(0, len(CORPUS), size), batches(CORPUS, size)):
            actual = {
                key: outputs[f"{size}/{start}/{key}"]
                for key in ("input_word_ids", "input_mask", "input_type_ids")
            }
            assert_same_inputs(actual, hf_encode(minilm.tokenizer, texts, max_length=256), texts)


def test_mpnet_matches_hf_on_corpus(mpnet_tokenizer, mpnet_preprocessor):
    for texts in batches(CORPUS):
        expected = hf_encode(mpnet_tokenizer, texts, max_length=128)
        assert_same_inputs(mpnet_preprocessor(tf.constant(texts)), expected, texts)
    # Literal "<s>" is MPNet's added token, "[CLS]" is plain text there.
    ids = mpnet_preprocessor(tf.constant(["<s>[CLS]"]))["input_word_ids"].numpy()
    assert ids.tolist() == [[0, 0, 1035, 18860, 2019, 1037, 2]]


# all-MiniLM and all-mpnet lowercase and strip accents; the other settings take
# other paths through the graph (no NFD, multi-codepoint lowercase of U+0130).
NORMALIZER_SETTINGS = [
    pytest.param(dict(lowercase=True, strip_accents=False), id="lowercase-keep-accents"),
    pytest.param(dict(lowercase=False), id="cased", marks=pytest.mark.large),
    pytest.param(
        dict(lowercase=False, strip_accents=True), id="cased-strip-accents", marks=pytest.mark.large
    ),
    pytest.param(
        dict(clean_text=False, handle_chinese_chars=False), id="raw", marks=pytest.mark.large
    ),
]


@pytest.mark.parametrize("settings", NORMALIZER_SETTINGS)
def test_word_splitter_matches_hf_normalizer_and_pre_tokenizer(settings):
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    settings = {"clean_text": True, "handle_chinese_chars": True, **settings}
    normalize = BertNormalizer(**settings).normalize_str
    pre_tokenize = BertPreTokenizer().pre_tokenize_str
    words, lengths = BertWordSplitter(**settings)(tf.constant(CORPUS))
    for text, actual, actual_lengths in zip(CORPUS, words.to_list(), lengths.to_list()):
        expected = [word for word, _ in pre_tokenize(normalize(text))]
        assert [word.decode("utf-8") for word in actual] == expected, text[:80]
        assert actual_lengths == [len(word) for word in expected], text[:80]


@pytest.mark.parametrize("settings", NORMALIZER_SETTINGS[:2])
def test_other_bert_settings_match_hf(settings):
    from transformers import BertTokenizer

    from keras_rec.embeddings.sentence_encoder import embedded_model_path

    vocabulary_file = os.path.join(embedded_model_path(), "vocab.txt")
    tokenizer = BertTokenizer(
        vocab=vocabulary_file,
        do_lower_case=settings["lowercase"],
        strip_accents=settings.get("strip_accents"),
    )
    preprocessor = WordpiecePreprocessor.from_tokenizer(tokenizer, max_seq_length=64)
    for texts in batches(CORPUS):
        expected = hf_encode(tokenizer, texts, max_length=64)
        assert_same_inputs(preprocessor(tf.constant(texts)), expected, texts)


def test_tokenize_groups_wordpieces_by_word(minilm, minilm_preprocessor):
    tokens = minilm_preprocessor.tokenize(tf.constant(CORPUS))
    assert isinstance(tokens, tf.RaggedTensor)
    assert tokens.shape.rank == 3 and tokens.ragged_rank == 2
    assert tokens.dtype == tf.int32
    encoded = minilm.tokenizer(CORPUS, add_special_tokens=False)
    for row, (text, actual) in enumerate(zip(CORPUS, tokens.to_list())):
        expected, previous = [], None
        for token_id, word in zip(encoded["input_ids"][row], encoded.word_ids(row)):
            if not expected or word != previous:
                expected.append([])
            expected[-1].append(token_id)
            previous = word
        assert actual == expected, text[:80]


def test_bert_pack_inputs_single_segment(minilm, minilm_preprocessor):
    for seq_length in (8, 64):
        for texts in batches(CORPUS, 128):
            packed = minilm_preprocessor.bert_pack_inputs(
                [minilm_preprocessor.tokenize(tf.constant(texts))], seq_length
            )
            expected = hf_encode(
                minilm.tokenizer, texts, max_length=seq_length, padding="max_length"
            )
            assert_same_inputs(packed, expected, texts)


@pytest.mark.parametrize("family", ["bert", "mpnet"])
def test_bert_pack_inputs_pairs_truncate_like_hf_longest_first(
    family, minilm, minilm_preprocessor, mpnet_tokenizer, mpnet_preprocessor
):
    tokenizer, preprocessor = {
        "bert": (minilm.tokenizer, minilm_preprocessor),
        "mpnet": (mpnet_tokenizer, mpnet_preprocessor),
    }[family]
    # Every pair of lengths 0..12 against budgets that cut one, both or none.
    grid = [(a, b) for a in range(13) for b in range(13)]
    firsts = [" ".join(["a"] * a) for a, _ in grid]
    seconds = [" ".join(["b"] * b) for _, b in grid]
    # Real texts of all lengths, including the empty ones.
    firsts += CORPUS[:200]
    seconds += CORPUS[200:400]
    segments = [preprocessor.tokenize(tf.constant(texts)) for texts in (firsts, seconds)]
    for seq_length in (7, 8, 13, 20, 128):
        packed = preprocessor.bert_pack_inputs(segments, tf.constant(seq_length))
        expected = hf_encode(
            tokenizer, firsts, seconds, max_length=seq_length, padding="max_length"
        )
        assert_same_inputs(packed, expected, [f"{a!r} + {b!r}" for a, b in zip(firsts, seconds)])


def test_bert_pack_inputs_after_loading(minilm, minilm_export):
    loaded = tf.saved_model.load(minilm_export)
    firsts, seconds = CORPUS[100:140], CORPUS[300:340]
    first = loaded.tokenize(tf.constant(firsts))
    second = loaded.tokenize(tf.constant(seconds))
    expected = hf_encode(minilm.tokenizer, firsts, seconds, max_length=24, padding="max_length")
    assert_same_inputs(loaded.bert_pack_inputs([first, second], 24), expected, firsts)
    assert_same_inputs(
        loaded.bert_pack_inputs([first.merge_dims(1, 2), second.merge_dims(1, 2)], tf.constant(24)),
        expected,
        firsts,
    )
    single = hf_encode(minilm.tokenizer, firsts, max_length=16, padding="max_length")
    assert_same_inputs(loaded.bert_pack_inputs([first], 16), single, firsts)


def test_saved_model_uses_only_serving_safe_ops(minilm_export):
    ops = list_saved_model_ops(minilm_export)
    extension_ops = ops - list_core_ops()
    # The check sees inside the function library, where the TF Text ops live.
    assert {"NormalizeUTF8", "WordpieceTokenizeWithOffsets"} <= extension_ops
    assert extension_ops <= SERVING_SAFE_TF_TEXT_OPS, extension_ops - SERVING_SAFE_TF_TEXT_OPS
    assert not [op for op in ops if op.startswith("TFText>")]


def test_empty_batch_and_hand_computed_ids(minilm_preprocessor):
    empty = minilm_preprocessor(tf.constant([], tf.string))
    assert empty["input_word_ids"].shape[0] == 0
    # [CLS]=101 un ##aff ##able=14477 20961 3468 ,=1010 [SEP]=102, then padding 0.
    inputs = minilm_preprocessor(tf.constant(["Unaffable,", "é"]))
    assert inputs["input_word_ids"].numpy().tolist() == [
        [101, 14477, 20961, 3468, 1010, 102],
        [101, 1041, 102, 0, 0, 0],
    ]
    assert inputs["input_mask"].numpy().tolist() == [[1] * 6, [1, 1, 1, 0, 0, 0]]


def test_rejects_other_tokenizers():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend)
    with pytest.raises(ValueError, match=type(tokenizer).__name__):
        WordpiecePreprocessor.from_tokenizer(tokenizer, max_seq_length=16)


def test_validates_arguments(minilm_preprocessor):
    arguments = dict(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"],
        max_seq_length=8,
        unk_token="[UNK]",
        pad_token="[PAD]",
        single_template="[CLS] $A [SEP]",
        pair_template="[CLS] $A [SEP] $B:1 [SEP]:1",
    )
    with pytest.raises(ValueError, match="max_seq_length=1"):
        WordpiecePreprocessor(**{**arguments, "max_seq_length": 1})
    with pytest.raises(ValueError, match="'<s>'"):
        WordpiecePreprocessor(**{**arguments, "single_template": "<s> $A [SEP]"})
    with pytest.raises(ValueError, match=r"\$A and \$B"):
        WordpiecePreprocessor(**{**arguments, "pair_template": "[CLS] $A [SEP]"})
    with pytest.raises(ValueError, match="repeat"):
        WordpiecePreprocessor(**{**arguments, "vocabulary": ["[PAD]", "[UNK]", "[PAD]"]})
    segment = minilm_preprocessor.tokenize(tf.constant(["a"]))
    with pytest.raises(ValueError, match="Received: 3 segments"):
        minilm_preprocessor.bert_pack_inputs([segment] * 3, 8)


@pytest.mark.large
def test_every_codepoint_matches_hf(minilm, minilm_preprocessor):
    """Each Unicode scalar value, between two letters, tokenizes as in Hugging Face."""
    codepoints = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    for start in range(0, len(codepoints), 65536):
        texts = [f"a{chr(c)}b" for c in codepoints[start : start + 65536]]
        actual = minilm_preprocessor.tokenize(tf.constant(texts)).merge_dims(1, 2).to_list()
        expected = minilm.tokenizer(texts, add_special_tokens=False)["input_ids"]
        wrong = [hex(ord(text[1])) for text, a, e in zip(texts, actual, expected) if a != e]
        assert not wrong, wrong[:20]
