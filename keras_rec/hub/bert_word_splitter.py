"""`BertWordSplitter`: Hugging Face's BERT normalizer and pre-tokenizer as TF ops."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from keras_rec.hub import codepoint_tables
from keras_rec.hub.codepoint_tables import RunTable

_SPACE = 32


class BertWordSplitter(tf.Module):
    """Splits text into the words Hugging Face's `BertNormalizer` and `BertPreTokenizer` make.

    Works on Unicode codepoints with core TensorFlow ops: every per-character
    decision (drop, whitespace, CJK, nonspacing mark, lowercase, punctuation)
    is a gather from a run-length table compiled from the `tokenizers`
    library (see `keras_rec.hub.codepoint_tables`), and NFD is TF Text's
    `NormalizeUTF8`. The steps run in Hugging Face's order: clean text and
    space out CJK ideographs, strip accents (NFD, drop nonspacing marks),
    lowercase, then split on whitespace and isolate punctuation.

    Args:
        lowercase: bool. Lowercase like Rust's `char::to_lowercase`.
        strip_accents: bool or None. Strip accents; None follows `lowercase`,
            as in Hugging Face.
        clean_text: bool. Drop control characters, map whitespace to spaces.
        handle_chinese_chars: bool. Make every CJK ideograph its own word.

    Call arguments:
        text: tf.string tensor of shape `[N]`.

    Returns:
        A tuple `(words, lengths)` of RaggedTensors of shape `[N, (words)]`:
        the words as UTF-8 strings and their lengths in characters.

    The character tables are compiled on construction (a few seconds, once
    per process and setting).

    Example:

    >>> from keras_rec.hub.bert_word_splitter import BertWordSplitter
    >>> splitter = BertWordSplitter()
    >>> words, _ = splitter(tf.constant(["Héllo,WORLD 東京"]))
    >>> words.to_list()
    [[b'hello', b',', b'world', b'\xe6\x9d\xb1', b'\xe4\xba\xac']]
    """

    def __init__(
        self,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        clean_text: bool = True,
        handle_chinese_chars: bool = True,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.lowercase = bool(lowercase)
        self.strip_accents = self.lowercase if strip_accents is None else bool(strip_accents)
        self.clean_text = bool(clean_text)
        self.handle_chinese_chars = bool(handle_chinese_chars)
        tables = codepoint_tables.build_codepoint_tables(
            clean_text=self.clean_text,
            handle_chinese_chars=self.handle_chinese_chars,
            strip_accents=self.strip_accents,
            lowercase=self.lowercase,
        )
        self._clean = _constant_table(tables.clean)
        self._marks = _constant_table(tables.marks)
        self._lower = _constant_table(tables.lowercase)
        self._classes = _constant_table(tables.pre_tokenizer)
        self._expansions = None
        if tables.lowercase_expansions:
            keys = sorted(tables.lowercase_expansions)
            width = max(len(value) for value in tables.lowercase_expansions.values())
            matrix = np.zeros((len(keys), width), dtype=np.int32)
            for row, key in enumerate(keys):
                expansion = tables.lowercase_expansions[key]
                matrix[row, : len(expansion)] = expansion
            lengths = [len(tables.lowercase_expansions[key]) for key in keys]
            self._expansions = (
                tf.constant(keys, tf.int32),
                tf.constant(matrix),
                tf.constant(lengths, tf.int64),
            )

    def __call__(self, text: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        chars = tf.strings.unicode_decode(text, "UTF-8")
        if self._clean is not None:
            chars = self._clean_and_space_cjk(chars)
        if self.strip_accents:
            nfd = tf_text.normalize_utf8(tf.strings.unicode_encode(chars, "UTF-8"), "NFD")
            chars = tf.strings.unicode_decode(nfd, "UTF-8")
            is_mark = _lookup(self._marks, chars.flat_values) > 0
            chars = _repeat_chars(chars, tf.where(is_mark, 0, 1))[0]
        if self.lowercase:
            chars = self._lowercase(chars)
        return self._split(chars)

    def _clean_and_space_cjk(self, chars: tf.RaggedTensor) -> tf.RaggedTensor:
        actions = _lookup(self._clean, chars.flat_values)
        # Output codepoints per input: KEEP 1, DROP 0, SPACE 1 (" "), ISOLATE 3 (" c ").
        counts = tf.gather(tf.constant([1, 0, 1, 3]), actions)
        chars, source, position = _repeat_chars(chars, counts)
        actions = tf.gather(actions, source)
        to_space = tf.logical_or(
            tf.equal(actions, codepoint_tables.SPACE),
            tf.logical_and(tf.equal(actions, codepoint_tables.ISOLATE), position != 1),
        )
        return chars.with_flat_values(tf.where(to_space, _SPACE, chars.flat_values))

    def _lowercase(self, chars: tf.RaggedTensor) -> tf.RaggedTensor:
        values = chars.flat_values
        lowered = chars.with_flat_values(values + _lookup(self._lower, values))
        if self._expansions is None:
            return lowered
        keys, matrix, lengths = self._expansions
        row = tf.minimum(tf.searchsorted(keys, values), tf.size(keys) - 1)
        expands = tf.equal(tf.gather(keys, row), values)
        counts = tf.where(expands, tf.gather(lengths, row), 1)
        lowered, source, position = _repeat_chars(lowered, counts)
        expanded = tf.gather_nd(
            matrix, tf.stack([tf.gather(row, source), tf.cast(position, tf.int32)], axis=1)
        )
        return lowered.with_flat_values(
            tf.where(tf.gather(expands, source), expanded, lowered.flat_values)
        )

    def _split(self, chars: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """Whitespace ends a word, punctuation is a word of its own."""
        values = chars.flat_values
        classes = _lookup(self._classes, values)
        position = tf.range(tf.size(values, out_type=tf.int64)) - tf.gather(
            chars.row_splits, chars.value_rowids()
        )
        previous = tf.concat([[codepoint_tables.WHITESPACE], classes[:-1]], axis=0)
        previous = tf.where(position == 0, codepoint_tables.WHITESPACE, previous)
        kept = classes != codepoint_tables.WHITESPACE
        starts = tf.logical_and(
            kept,
            tf.logical_or(
                classes == codepoint_tables.PUNCTUATION, previous != codepoint_tables.WORD
            ),
        )
        word_ends = tf.cumsum(tf.cast(starts, tf.int64))
        word_chars = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(values, kept),
            tf.boolean_mask(word_ends - 1, kept),
            nrows=tf.reduce_sum(tf.cast(starts, tf.int64)),
            validate=False,
        )
        word_splits = tf.gather(_prepend_zero(word_ends), chars.row_splits)
        words = tf.RaggedTensor.from_row_splits(
            tf.strings.unicode_encode(word_chars, "UTF-8"), word_splits, validate=False
        )
        return words, words.with_flat_values(word_chars.row_lengths())


def _constant_table(table: RunTable | None) -> tuple[tf.Tensor, tf.Tensor] | None:
    if table is None:
        return None
    return tf.constant(table.starts, tf.int32), tf.constant(table.values, tf.int32)


def _lookup(table: tuple[tf.Tensor, tf.Tensor], codepoints: tf.Tensor) -> tf.Tensor:
    starts, values = table
    return tf.gather(values, tf.searchsorted(starts, codepoints, side="right") - 1)


def _prepend_zero(cumulative: tf.Tensor) -> tf.Tensor:
    """Turns inclusive cumulative counts into row splits."""
    return tf.concat([tf.zeros([1], cumulative.dtype), cumulative], axis=0)


def _repeat_chars(
    chars: tf.RaggedTensor, counts: tf.Tensor
) -> tuple[tf.RaggedTensor, tf.Tensor, tf.Tensor]:
    """Repeats every codepoint `counts` times (0 drops it), row by row.

    Returns:
        `(repeated, source, position)`: the new ragged codepoints, and for each
        new codepoint the index of the codepoint it came from and its place
        among that codepoint's copies.
    """
    counts = tf.cast(counts, tf.int64)
    ends = tf.cumsum(counts)
    source = tf.repeat(tf.range(tf.size(counts, out_type=tf.int64)), counts)
    position = tf.range(tf.size(source, out_type=tf.int64)) - tf.gather(ends - counts, source)
    splits = tf.gather(_prepend_zero(ends), chars.row_splits)
    repeated = tf.RaggedTensor.from_row_splits(
        tf.gather(chars.flat_values, source), splits, validate=False
    )
    return repeated, source, position
