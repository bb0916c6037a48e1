"""Reads a Hugging Face WordPiece tokenizer into `WordpiecePreprocessor` arguments."""

from __future__ import annotations

import json
from typing import Any

_SUPPORTED_TOKENIZERS = (
    "BertTokenizer",
    "BertTokenizerFast",
    "MPNetTokenizer",
    "MPNetTokenizerFast",
)


def read_wordpiece_settings(tokenizer: Any) -> dict[str, Any]:
    """Reads the `WordpiecePreprocessor` arguments of a transformers tokenizer.

    Everything comes from the tokenizer's `tokenizer.json` (what its Rust
    backend runs): the normalizer flags (`lowercase` is `do_lower_case`,
    `handle_chinese_chars` is `tokenize_chinese_chars`), the WordPiece
    vocabulary and limits, the added tokens and the post-processor's
    special-token layout.

    Args:
        tokenizer: a tokenizers-backed `BertTokenizer` or `MPNetTokenizer`.

    Returns:
        A dict of `WordpiecePreprocessor` constructor arguments, all but
        `max_seq_length`.
    """
    class_name = type(tokenizer).__name__
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if class_name not in _SUPPORTED_TOKENIZERS or backend is None:
        raise ValueError(
            "The tokenizer must be a tokenizers-backed WordPiece tokenizer, one of "
            f"{', '.join(_SUPPORTED_TOKENIZERS)}. Received: a tokenizer of class {class_name}"
        )
    config = json.loads(backend.to_str())
    normalizer = _component(config, "normalizer", "BertNormalizer", class_name)
    _component(config, "pre_tokenizer", "BertPreTokenizer", class_name)
    model = _component(config, "model", "WordPiece", class_name)
    split_special = bool(getattr(tokenizer, "split_special_tokens", False))
    added = [t for t in config["added_tokens"] if not (split_special and t["special"])]
    for token in added:
        # lstrip/rstrip only swallow whitespace next to the token, which makes
        # no tokens anyway; single_word and normalized change the matching.
        if token["single_word"] or token["normalized"]:
            raise ValueError(
                "Added tokens with `single_word=True` or `normalized=True` are not "
                f"supported. Received: {token}"
            )
    vocabulary = _merge_vocabulary(model["vocab"], config["added_tokens"])
    single, pair = _templates(config.get("post_processor") or {}, vocabulary, class_name)
    if tokenizer.pad_token is None:
        raise ValueError(
            f"The tokenizer must have a pad token. Received: a {class_name} without one"
        )
    return dict(
        vocabulary=vocabulary,
        unk_token=model["unk_token"],
        pad_token=tokenizer.pad_token,
        single_template=single,
        pair_template=pair,
        added_tokens=[token["content"] for token in added],
        lowercase=normalizer["lowercase"],
        strip_accents=normalizer["strip_accents"],
        clean_text=normalizer["clean_text"],
        handle_chinese_chars=normalizer["handle_chinese_chars"],
        suffix_indicator=model["continuing_subword_prefix"],
        max_chars_per_word=model["max_input_chars_per_word"],
    )


def _component(config: dict, key: str, expected: str, class_name: str) -> dict:
    component = config.get(key) or {}
    if component.get("type") != expected:
        raise ValueError(
            f"The tokenizer's {key} must be a {expected}. Received: {class_name} with "
            f"{key} {component.get('type')!r}"
        )
    return component


def _merge_vocabulary(vocab: dict[str, int], added_tokens: list[dict]) -> list[str]:
    """The token of every id: the WordPiece vocabulary plus the added tokens."""
    by_id = {token_id: token for token, token_id in vocab.items()}
    for added in added_tokens:
        known = vocab.get(added["content"], added["id"])
        if known != added["id"] or by_id.get(added["id"], added["content"]) != added["content"]:
            raise ValueError(
                f"Added token {added['content']!r} has id {added['id']} but the "
                f"vocabulary disagrees (id {known}, token {by_id.get(added['id'])!r})."
            )
        by_id[added["id"]] = added["content"]
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(
            f"Token ids must run from 0 to {len(by_id) - 1} without gaps. "
            f"Received: ids from {min(by_id)} to {max(by_id)}"
        )
    return [by_id[token_id] for token_id in range(len(by_id))]


def _templates(processor: dict, vocabulary: list[str], class_name: str) -> tuple[str, str]:
    """Single and pair templates in `TemplateProcessing` syntax."""
    kind = processor.get("type")
    if kind in ("BertProcessing", "RobertaProcessing"):
        (cls, cls_id), (sep, sep_id) = processor["cls"], processor["sep"]
        _check_special(vocabulary, cls, cls_id)
        _check_special(vocabulary, sep, sep_id)
        if kind == "BertProcessing":
            return f"{cls} $A {sep}", f"{cls} $A {sep} $B:1 {sep}:1"
        return f"{cls} $A {sep}", f"{cls} $A {sep} {sep} $B {sep}"
    if kind == "TemplateProcessing":
        specials = processor["special_tokens"]

        def render(items: list[dict]) -> str:
            parts = []
            for item in items:
                if "Sequence" in item:
                    parts.append(f"${item['Sequence']['id']}:{item['Sequence']['type_id']}")
                    continue
                special = specials[item["SpecialToken"]["id"]]
                for token, token_id in zip(special["tokens"], special["ids"]):
                    _check_special(vocabulary, token, token_id)
                    parts.append(f"{token}:{item['SpecialToken']['type_id']}")
            return " ".join(parts)

        return render(processor["single"]), render(processor["pair"])
    raise ValueError(
        "The tokenizer's post_processor must be a TemplateProcessing, BertProcessing or "
        f"RobertaProcessing. Received: {class_name} with post_processor {kind!r}"
    )


def _check_special(vocabulary: list[str], token: str, token_id: int) -> None:
    if not 0 <= token_id < len(vocabulary) or vocabulary[token_id] != token or " " in token:
        raise ValueError(
            f"Special token {token!r} with id {token_id} does not match the vocabulary."
        )
