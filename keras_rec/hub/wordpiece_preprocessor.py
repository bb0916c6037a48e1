"""`WordpiecePreprocessor`: a TF Hub BERT-style text preprocessor for sentence-transformers.

It reproduces the Hugging Face tokenizer of a sentence-transformer (BERT
WordPiece as in all-MiniLM-*, or MPNet as in all-mpnet-base-v2) token for
token, and keeps to ops that TF Serving ships: core TensorFlow plus TF Text's
`NormalizeUTF8`, `RegexSplitWithOffsets` and `WordpieceTokenizeWithOffsets`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tensorflow_text as tf_text

from keras_rec.hub.bert_word_splitter import BertWordSplitter
from keras_rec.hub.hf_wordpiece_settings import read_wordpiece_settings

_TOKEN_IDS = tf.RaggedTensorSpec([None, None, None], tf.int32, ragged_rank=2)
_TOKEN_IDS_FLAT = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)
_TEMPLATE_ITEM = re.compile(r"(?P<name>.+?)(?::(?P<type_id>\d+))?")


class WordpiecePreprocessor(tf.Module):
    """Turns strings into BERT inputs exactly as a Hugging Face WordPiece tokenizer does.

    Follows the TF Hub BERT preprocessing conventions: calling the module
    packs one text per row, `tokenize` and `bert_pack_inputs` split the work
    for text pairs. Literal added tokens in the text (`"[CLS]"`, `"<s>"`,
    case-sensitive, as in Hugging Face) become their ids. Pairs are truncated
    with Hugging Face's `longest_first` rule: if both segments do not fit,
    the shorter keeps all of its tokens when it fits in half the budget and the
    longer takes the rest; otherwise each gets half, and the odd token goes to
    the longer one (to the second one on a tie).

    Build one from a sentence-transformer with
    `keras_rec.hub.build_preprocessor`.

    Args:
        vocabulary: list of str. The token of every id, in id order.
        max_seq_length: int. Longest packed sequence that calling the module
            produces, special tokens included.
        unk_token: str. The token of out-of-vocabulary words.
        pad_token: str. The token that pads rows.
        single_template: str. Layout of one segment, in Hugging Face's
            `TemplateProcessing` syntax: `"[CLS] $A [SEP]"`.
        pair_template: str. Layout of two segments, e.g.
            `"[CLS] $A [SEP] $B:1 [SEP]:1"` (`:1` is the type id).
        added_tokens: list of str. Tokens matched verbatim in the raw text.
        lowercase: bool. Lowercase the text.
        strip_accents: bool or None. Strip accents; None follows `lowercase`.
        clean_text: bool. Drop control characters, map whitespace to spaces.
        handle_chinese_chars: bool. Make every CJK ideograph a word.
        suffix_indicator: str. Prefix of word-continuing wordpieces.
        max_chars_per_word: int. Longer words become `unk_token`.
        name: str or None. Name of the module.

    Call arguments:
        text: tf.string tensor of shape `[batch]`.

    Returns:
        A dict of int32 tensors of shape `[batch, seq_length]`, where
        `seq_length` is the longest packed row, at most `max_seq_length`:
        `input_word_ids`, `input_mask` and `input_type_ids`.

    Example:

    >>> preprocessor = keras_rec.hub.build_preprocessor("all-MiniLM-L6-v2")
    >>> inputs = preprocessor(tf.constant(["Hello world!"]))
    >>> inputs["input_word_ids"].numpy()
    array([[ 101, 7592, 2088,  999,  102]], dtype=int32)
    >>> keras_rec.hub.save_preprocessor(preprocessor, "/tmp/preprocessor")
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        max_seq_length: int,
        unk_token: str,
        pad_token: str,
        single_template: str,
        pair_template: str,
        added_tokens: Sequence[str] = (),
        lowercase: bool = True,
        strip_accents: bool | None = None,
        clean_text: bool = True,
        handle_chinese_chars: bool = True,
        suffix_indicator: str = "##",
        max_chars_per_word: int = 100,
        name: str | None = None,
    ):
        super().__init__(name=name)
        vocabulary = list(vocabulary)
        index = _vocabulary_index(vocabulary)
        if not isinstance(max_seq_length, int) or max_seq_length < 2:
            raise ValueError(
                "`max_seq_length` must be an integer >= 2. "
                f"Received: max_seq_length={max_seq_length!r}"
            )
        for argument, token in (("unk_token", unk_token), ("pad_token", pad_token)):
            if token not in index:
                raise ValueError(
                    f"`{argument}` must be in the vocabulary. Received: {argument}={token!r}"
                )
        self.max_seq_length = max_seq_length
        self.unk_token = unk_token
        self.pad_token = pad_token
        self.single_template = single_template
        self.pair_template = pair_template
        self.added_tokens = tuple(added_tokens)
        self.max_chars_per_word = int(max_chars_per_word)
        self._single = _parse_template(single_template, index, ("$A",))
        self._pair = _parse_template(pair_template, index, ("$A", "$B"))
        self._pad_id = index[pad_token]
        for token in self.added_tokens:
            if token not in index:
                raise ValueError(
                    "Every entry of `added_tokens` must be in the vocabulary. "
                    f"Received: added token {token!r}"
                )
        # Longest first, so that the leftmost match is also the longest one.
        self._added_pattern = "|".join(
            rf"\Q{token}\E" for token in sorted(self.added_tokens, key=len, reverse=True)
        )
        self._splitter = BertWordSplitter(
            lowercase=lowercase,
            strip_accents=strip_accents,
            clean_text=clean_text,
            handle_chinese_chars=handle_chinese_chars,
        )
        self.vocabulary_file = tf.saved_model.Asset(_write_vocabulary(self, vocabulary))
        self._vocabulary_table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.vocabulary_file,
                key_dtype=tf.string,
                key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                value_dtype=tf.int64,
                value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=-1,
        )
        self._wordpiece = tf_text.WordpieceTokenizer(
            self._vocabulary_table,
            suffix_indicator=suffix_indicator,
            # The character limit is applied before; a word within it has at
            # most 4 bytes per character.
            max_bytes_per_word=4 * self.max_chars_per_word,
            token_out_type=tf.int64,
            unknown_token=unk_token,
        )

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, max_seq_length: int) -> WordpiecePreprocessor:
        """Reads the vocabulary and settings of a Hugging Face tokenizer.

        Args:
            tokenizer: a transformers `BertTokenizer` or `MPNetTokenizer`
                (tokenizers-backed, as every transformers 5 tokenizer is).
            max_seq_length: int. Longest packed sequence.

        Returns:
            A `WordpiecePreprocessor`.
        """
        return cls(max_seq_length=max_seq_length, **read_wordpiece_settings(tokenizer))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def __call__(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        tokens = self._tokenize(text).merge_dims(1, 2)
        budget = self.max_seq_length - _num_special_tokens(self._single)
        tokens = _truncate(tokens, tf.fill([tokens.nrows()], tf.cast(budget, tf.int64)))
        return self._pack([tokens], self._single, seq_length=None)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Wordpiece ids of shape `[batch, (words), (wordpieces)]`, int32, no special tokens."""
        return self._tokenize(text)

    @tf.function
    def bert_pack_inputs(
        self, segments: Sequence[tf.RaggedTensor], seq_length: int | tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """Truncates and packs 1 or 2 tokenized segments into `seq_length` columns.

        Args:
            segments: list of 1 or 2 int32 RaggedTensors from `tokenize`, of
                shape `[batch, (words), (wordpieces)]` or `[batch, (tokens)]`.
            seq_length: int or scalar int32 tensor. Width of the outputs.

        Returns:
            The dict of `__call__`, with `seq_length` columns.
        """
        if not 1 <= len(segments) <= 2:
            raise ValueError(
                "`segments` must hold 1 or 2 tokenized segments. "
                f"Received: {len(segments)} segments"
            )
        segments = [
            tf.cast(s.merge_dims(1, 2) if s.ragged_rank == 2 else s, tf.int32) for s in segments
        ]
        template = self._single if len(segments) == 1 else self._pair
        seq_length = tf.cast(seq_length, tf.int64)
        budget = tf.maximum(seq_length - _num_special_tokens(template), 0)
        lengths = [segment.row_lengths() for segment in segments]
        if len(segments) == 1:
            keeps = [tf.fill(tf.shape(lengths[0]), budget)]
        else:
            keeps = _longest_first(lengths[0], lengths[1], budget)
        segments = [_truncate(s, keep) for s, keep in zip(segments, keeps)]
        return self._pack(segments, template, seq_length=seq_length)

    def _tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        pieces, is_added = self._split_added_tokens(text)
        flat_pieces = pieces.flat_values
        # Added tokens bypass normalization: they make no words here and are
        # appended as one word each (every piece is one or the other).
        words, lengths = self._splitter(tf.where(is_added, "", flat_pieces))
        added = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(flat_pieces, is_added), tf.cast(is_added, tf.int64)
        )
        words = tf.concat([words, added], axis=1)
        lengths = tf.concat([lengths, tf.zeros_like(added, tf.int64)], axis=1)
        words = pieces.with_flat_values(words).merge_dims(1, 2)
        lengths = pieces.with_flat_values(lengths).merge_dims(1, 2)
        too_long = lengths.flat_values > self.max_chars_per_word
        words = words.with_flat_values(tf.where(too_long, self.unk_token, words.flat_values))
        return tf.cast(self._wordpiece.tokenize(words), tf.int32)

    def _split_added_tokens(self, text: tf.Tensor) -> tuple[tf.RaggedTensor, tf.Tensor]:
        """Cuts the raw text around added tokens: `[batch, (pieces)]` and a flag per piece."""
        if not self.added_tokens:
            pieces = tf.RaggedTensor.from_row_lengths(text, tf.ones_like(text, tf.int64))
            return pieces, tf.zeros_like(text, tf.bool)
        # RegexSplitWithOffsets stops at a NUL byte: split a copy with the NUL
        # bytes replaced, then cut the pieces out of the original text.
        searchable = tf.strings.regex_replace(text, "\x00", "\x01")
        _, begins, ends = tf_text.regex_split_with_offsets(
            searchable, self._added_pattern, self._added_pattern
        )
        source = tf.gather(text, begins.value_rowids())
        flat_pieces = tf.strings.substr(
            source, begins.flat_values, ends.flat_values - begins.flat_values
        )
        is_added = tf.strings.regex_full_match(flat_pieces, self._added_pattern)
        return begins.with_flat_values(flat_pieces), is_added

    def _pack(
        self,
        segments: list[tf.RaggedTensor],
        template: list[tuple[Any, int]],
        seq_length: tf.Tensor | None,
    ) -> dict[str, tf.Tensor]:
        batch_size = segments[0].nrows()
        parts = []
        for item, _ in template:
            if item == "$A" or item == "$B":
                parts.append(segments[0 if item == "$A" else 1])
            else:
                parts.append(tf.RaggedTensor.from_tensor(tf.fill([batch_size, 1], item)))
        type_parts = [tf.ones_like(part) * type_id for part, (_, type_id) in zip(parts, template)]
        word_ids = tf.concat(parts, axis=1)
        type_ids = tf.concat(type_parts, axis=1)
        shape = None if seq_length is None else tf.stack([batch_size, seq_length])
        return {
            "input_word_ids": word_ids.to_tensor(self._pad_id, shape=shape),
            "input_mask": tf.ones_like(word_ids).to_tensor(0, shape=shape),
            "input_type_ids": type_ids.to_tensor(0, shape=shape),
        }


def build_preprocessor(
    model: str | Any | None = None, max_seq_length: int | None = None
) -> WordpiecePreprocessor:
    """Builds the preprocessor of a sentence-transformer's tokenizer.

    Compiling the character tables takes a few seconds the first time in a
    process.

    Args:
        model: str, `SentenceTransformer` or None. A local directory, a Hugging
            Face model id, or a loaded model; None (and the all-MiniLM-L6-v2
            ids) mean the embedded all-MiniLM-L6-v2.
        max_seq_length: int or None. Longest packed sequence; None takes the
            model's `max_seq_length` (256 for all-MiniLM-L6-v2).

    Returns:
        A `WordpiecePreprocessor`.

    Example:

    >>> preprocessor = keras_rec.hub.build_preprocessor()
    >>> keras_rec.hub.save_preprocessor(preprocessor, "/tmp/minilm_preprocessor")
    """
    if model is None or isinstance(model, str):
        from keras_rec.embeddings.sentence_encoder import load_sentence_transformer

        model = load_sentence_transformer(model, device="cpu")
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError(
            "`model` must be a path, a model id or a `SentenceTransformer` with a text "
            f"tokenizer. Received: model={model!r}"
        )
    if max_seq_length is None:
        max_seq_length = getattr(model, "max_seq_length", None) or tokenizer.model_max_length
    return WordpiecePreprocessor.from_tokenizer(tokenizer, max_seq_length)


def save_preprocessor(preprocessor: WordpiecePreprocessor, export_dir: str) -> str:
    """Writes `preprocessor` as a TF2 SavedModel with the vocabulary in `assets/`.

    The SavedModel has a `serving_default` signature (input `text`, tf.string
    `[batch]`) and keeps `tokenize` and `bert_pack_inputs` (1 or 2 segments of
    rank 2 or 3, scalar int32 `seq_length`) callable after
    `tf.saved_model.load`.

    Args:
        preprocessor: `WordpiecePreprocessor`. The module to save.
        export_dir: str. The SavedModel directory.

    Returns:
        `export_dir`.
    """
    if not isinstance(preprocessor, WordpiecePreprocessor):
        raise ValueError(
            "`preprocessor` must be a `WordpiecePreprocessor`. "
            f"Received: preprocessor={preprocessor!r}"
        )
    seq_length = tf.TensorSpec([], tf.int32, name="seq_length")
    for spec in (_TOKEN_IDS, _TOKEN_IDS_FLAT):
        for num_segments in (1, 2):
            preprocessor.bert_pack_inputs.get_concrete_function([spec] * num_segments, seq_length)
    tf.saved_model.save(
        preprocessor,
        export_dir,
        signatures={"serving_default": preprocessor.__call__.get_concrete_function()},
    )
    return export_dir


def _vocabulary_index(vocabulary: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for token_id, token in enumerate(vocabulary):
        if not isinstance(token, str) or not token or "\n" in token or "\r" in token:
            raise ValueError(
                "Every vocabulary entry must be a non-empty string without line breaks. "
                f"Received: vocabulary[{token_id}]={token!r}"
            )
        if token in index:
            raise ValueError(
                "`vocabulary` must not repeat a token. "
                f"Received: {token!r} at ids {index[token]} and {token_id}"
            )
        index[token] = token_id
    return index


def _write_vocabulary(module: tf.Module, vocabulary: list[str]) -> str:
    """Writes vocab.txt to a temporary folder that lives as long as `module`."""
    directory = tempfile.mkdtemp(prefix="keras_rec_vocab_")
    weakref.finalize(module, shutil.rmtree, directory, ignore_errors=True)
    path = os.path.join(directory, "vocab.txt")
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        file.write("\n".join(vocabulary) + "\n")
    return path


def _parse_template(
    template: str, index: dict[str, int], segments: tuple[str, ...]
) -> list[tuple[Any, int]]:
    """`"[CLS] $A [SEP]:0"` -> `[(101, 0), ("$A", 0), (102, 0)]`."""
    items = []
    for part in template.split():
        match = _TEMPLATE_ITEM.fullmatch(part)
        name, type_id = match["name"], int(match["type_id"] or 0)
        if name.startswith("$"):
            items.append((name, type_id))
        elif name in index:
            items.append((index[name], type_id))
        else:
            raise ValueError(
                f"Template tokens must be in the vocabulary or be one of {segments}. "
                f"Received: {name!r} in template {template!r}"
            )
    names = sorted(item for item, _ in items if isinstance(item, str))
    if names != sorted(segments):
        raise ValueError(
            f"The template must hold {' and '.join(segments)} once each. "
            f"Received: template={template!r}"
        )
    return items


def _num_special_tokens(template: list[tuple[Any, int]]) -> int:
    return sum(1 for item, _ in template if not isinstance(item, str))


def _longest_first(
    length_a: tf.Tensor, length_b: tf.Tensor, budget: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Hugging Face's `longest_first` truncation of a pair (per row)."""
    short = tf.minimum(length_a, length_b)
    long = tf.maximum(length_a, length_b)
    keep_short = short
    keep_long = tf.where(short > budget, short, tf.maximum(short, budget - short))
    halve = keep_short + keep_long > budget
    keep_short = tf.where(halve, budget // 2, keep_short)
    keep_long = tf.where(halve, budget // 2 + budget % 2, keep_long)
    fits = short + long <= budget
    a_is_longer = length_a > length_b
    keep_a = tf.where(fits, length_a, tf.where(a_is_longer, keep_long, keep_short))
    keep_b = tf.where(fits, length_b, tf.where(a_is_longer, keep_short, keep_long))
    return keep_a, keep_b


def _truncate(tokens: tf.RaggedTensor, keep: tf.Tensor) -> tf.RaggedTensor:
    """Keeps the first `keep[i]` tokens of row `i`."""
    rows = tokens.value_rowids()
    position = tf.range(tf.size(rows, out_type=tf.int64)) - tf.gather(tokens.row_starts(), rows)
    kept = position < tf.gather(keep, rows)
    return tf.RaggedTensor.from_row_lengths(
        tf.boolean_mask(tokens.flat_values, kept),
        tf.minimum(tokens.row_lengths(), keep),
        validate=False,
    )
