"""Per-codepoint tables that replay Hugging Face's `BertNormalizer` and `BertPreTokenizer`.

The tables are compiled by asking the `tokenizers` library itself how it treats
every Unicode scalar value, one normalization step at a time, so the graph
that gathers from them reproduces the Rust implementation exactly (its
character classes, its Unicode version, its CJK ranges), not Python's
`unicodedata` or TF Text's ICU case folding.

Each table is run-length encoded: `starts` holds the first codepoint of every
run of equal values (`starts[0] == 0`), `values` the value of the run. A
lookup is `values[searchsorted(starts, codepoint, side="right") - 1]`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

# Actions of the `clean_text` / `handle_chinese_chars` step on raw codepoints.
KEEP = 0
DROP = 1  # control, format and private-use characters, U+0000, U+FFFD
SPACE = 2  # whitespace, replaced by " "
ISOLATE = 3  # CJK ideographs, surrounded by " "

# Classes of the pre-tokenizer on normalized codepoints.
WORD = 0
WHITESPACE = 1
PUNCTUATION = 2

_NUM_CODEPOINTS = 0x110000
_SURROGATES = range(0xD800, 0xE000)
_PROBE_CHUNK = 65536
# Joins probed characters: a noncharacter that no normalization step changes,
# produces or reorders across (it is a starter).
_SEPARATOR = "\U0010ffff"


@dataclasses.dataclass(frozen=True)
class RunTable:
    """A run-length encoded map from codepoint to int32.

    Args:
        starts: int32 array. First codepoint of each run, ascending, from 0.
        values: int32 array. Value of each run.
    """

    starts: np.ndarray
    values: np.ndarray

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> RunTable:
        """Compresses a value-per-codepoint array into runs."""
        dense = np.asarray(dense, dtype=np.int32)
        starts = np.concatenate([[0], np.flatnonzero(np.diff(dense)) + 1])
        return cls(starts=starts.astype(np.int32), values=dense[starts])


@dataclasses.dataclass(frozen=True)
class CodepointTables:
    """Everything the in-graph normalizer needs, for one normalizer setting.

    Args:
        clean: `RunTable` or None. Actions (`KEEP`, `DROP`, `SPACE`,
            `ISOLATE`) on raw codepoints; None when `clean_text` and
            `handle_chinese_chars` are both off.
        marks: `RunTable` or None. 1 for the nonspacing marks that accent
            stripping removes after NFD; None when accents are kept.
        lowercase: `RunTable` or None. `lower(c) - c` for codepoints that
            lowercase to one codepoint; None when case is kept.
        lowercase_expansions: dict. Codepoints whose lowercase is several
            codepoints (U+0130 -> "i" U+0307) to those codepoints.
        pre_tokenizer: `RunTable`. `WORD`, `WHITESPACE` or `PUNCTUATION` for
            every normalized codepoint.
    """

    clean: RunTable | None
    marks: RunTable | None
    lowercase: RunTable | None
    lowercase_expansions: dict[int, tuple[int, ...]]
    pre_tokenizer: RunTable


@functools.lru_cache(maxsize=8)
def build_codepoint_tables(
    clean_text: bool = True,
    handle_chinese_chars: bool = True,
    strip_accents: bool = True,
    lowercase: bool = True,
) -> CodepointTables:
    """Compiles the tables of one `BertNormalizer` setting (a few seconds).

    Args:
        clean_text: bool. Drop control characters, map whitespace to " ".
        handle_chinese_chars: bool. Surround CJK ideographs with spaces.
        strip_accents: bool. NFD, then drop nonspacing marks. (Resolve HF's
            `strip_accents=None` to the value of `lowercase` first.)
        lowercase: bool. Lowercase every codepoint (Rust `char::to_lowercase`,
            which has no final-sigma rule).

    Returns:
        A `CodepointTables`.
    """
    from tokenizers.normalizers import BertNormalizer

    codepoints = np.array(
        [c for c in range(_NUM_CODEPOINTS) if c not in _SURROGATES], dtype=np.int64
    )
    chars = [chr(c) for c in codepoints]

    def probe(**flags) -> list[str]:
        settings = dict(
            clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=False
        )
        return _normalize_each(BertNormalizer(**{**settings, **flags}).normalize_str, chars)

    clean = None
    if clean_text or handle_chinese_chars:
        outputs = probe(clean_text=clean_text, handle_chinese_chars=handle_chinese_chars)
        clean = RunTable.from_dense(_scatter(codepoints, _clean_actions(chars, outputs)))

    marks = None
    stripped = chars
    if strip_accents:
        stripped = probe(strip_accents=True)
        dropped = np.fromiter(map(len, stripped), np.int32, len(chars)) == 0
        marks = RunTable.from_dense(_scatter(codepoints, dropped))

    lower = None
    expansions: dict[int, tuple[int, ...]] = {}
    if lowercase:
        outputs = probe(lowercase=True)
        single = np.fromiter(map(len, outputs), np.int32, len(outputs)) == 1
        lowered = np.fromiter(
            (ord(out) if ok else 0 for out, ok in zip(outputs, single)), np.int64, len(outputs)
        )
        deltas = np.where(single, lowered - codepoints, 0)
        for i in np.flatnonzero(~single):
            # Accent stripping runs first: a character it decomposes (U+0130)
            # never reaches the lowercase step.
            if stripped[i] == chars[i]:
                expansions[int(codepoints[i])] = tuple(map(ord, outputs[i]))
        lower = RunTable.from_dense(_scatter(codepoints, deltas))

    classes = _pre_tokenizer_classes(chars)
    return CodepointTables(
        clean=clean,
        marks=marks,
        lowercase=lower,
        lowercase_expansions=expansions,
        pre_tokenizer=RunTable.from_dense(_scatter(codepoints, classes)),
    )


def _scatter(codepoints: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A dense value-per-codepoint array; surrogates (never decoded) take 0."""
    dense = np.zeros(_NUM_CODEPOINTS, dtype=np.int32)
    dense[codepoints] = values
    return dense


def _normalize_each(normalize, chars: list[str]) -> list[str]:
    """`[normalize(char) for char in chars]`, one call per chunk of characters.

    The normalizer works character by character (NFD only reorders marks
    between two starters), so normalizing "c1|c2|..." and splitting on the
    separator gives each character's output; the separator itself is probed
    alone.
    """
    outputs = []
    for begin in range(0, len(chars), _PROBE_CHUNK):
        chunk = chars[begin : begin + _PROBE_CHUNK]
        joined = [char for char in chunk if char != _SEPARATOR]
        pieces = normalize(_SEPARATOR.join(joined)).split(_SEPARATOR)
        if len(pieces) != len(joined):
            raise RuntimeError(
                f"The normalizer changed the separator U+{ord(_SEPARATOR):04X}; "
                "this `tokenizers` version is not supported."
            )
        pieces = iter(pieces)
        outputs.extend(normalize(char) if char == _SEPARATOR else next(pieces) for char in chunk)
    return outputs


def _clean_actions(chars: list[str], outputs: list[str]) -> np.ndarray:
    actions = np.full(len(chars), KEEP, dtype=np.int32)
    changed = np.fromiter(map(str.__ne__, outputs, chars), bool, len(chars))
    for i in np.flatnonzero(changed):
        char, out = chars[i], outputs[i]
        action = {"": DROP, " ": SPACE, f" {char} ": ISOLATE}.get(out)
        if action is None:
            raise RuntimeError(
                f"Unexpected BertNormalizer output {out!r} for U+{ord(char):04X}; "
                "this `tokenizers` version is not supported."
            )
        actions[i] = action
    return actions


def _pre_tokenizer_classes(chars: list[str]) -> np.ndarray:
    """Classifies codepoints by how `BertPreTokenizer` splits "a<c>a<c>...a".

    Every probed character sits between two "a"s: a punctuation character
    comes back as a one-character piece of its own, a whitespace character is
    covered by no piece, any other character is glued to its neighbours.
    """
    from tokenizers.pre_tokenizers import BertPreTokenizer

    split = BertPreTokenizer().pre_tokenize_str
    classes = np.empty(len(chars), dtype=np.int32)
    for begin in range(0, len(chars), _PROBE_CHUNK):
        chunk = chars[begin : begin + _PROBE_CHUNK]
        text = "a" + "".join(char + "a" for char in chunk)
        coverage = np.zeros(len(text) + 1, dtype=np.int32)
        alone = np.zeros(len(text), dtype=bool)
        for _, (start, end) in split(text):
            coverage[start] += 1
            coverage[end] -= 1
            if end - start == 1:
                alone[start] = True
        covered = np.cumsum(coverage)[:-1] > 0
        positions = 2 * np.arange(len(chunk)) + 1
        chunk_classes = np.where(covered[positions], WORD, WHITESPACE)
        chunk_classes[alone[positions]] = PUNCTUATION
        classes[begin : begin + len(chunk)] = chunk_classes
    return classes
