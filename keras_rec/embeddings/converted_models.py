"""Sentence-transformers converted to OpenVINO or ONNX once, kept under `KERAS_REC_HOME`.

`SentenceTransformer(..., backend="openvino" | "onnx")` exports the torch
model on every construction (~8 s for all-MiniLM-L6-v2). Here the export
happens once per model: the first construction writes
`<home>/converted/<fingerprint[:16]>-<backend>/` (a directory written by
`SentenceTransformer.save`, renamed into place only when complete, under a
lock shared by the processes on one machine), and later ones load it.

The directory is named by the fingerprint of the torch weights it was
converted from, so an encoder's identity stays the model's.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The backends that need a conversion, and the package each one needs.
_BACKEND_MODULES = {"openvino": "optimum.intel.openvino", "onnx": "optimum.onnxruntime"}
_BACKEND_PACKAGES = {"openvino": "optimum-intel", "onnx": "optimum-onnx"}
# OpenVINO's `INFERENCE_PRECISION_HINT` for each keras_rec precision, and back.
_OPENVINO_HINTS = {"float32": "f32", "bfloat16": "bf16"}
_OPENVINO_PRECISIONS = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}
# Written last into a converted directory: what it was converted from, and with what.
METADATA_FILE = "keras_rec_conversion.json"

# Loggers whose warnings don't apply here: sentence-transformers' advice to save an
# exported model (`convert` does), and optimum-intel's, offline, that it found no hub
# cache entry for a local directory (it then reads the directory it was given).
_SAVE_ADVICE_LOGGER = "sentence_transformers.backend.utils"
_OFFLINE_LOOKUP_LOGGER = "optimum.intel.openvino.modeling_base"


def converted_models_dir() -> Path:
    """Returns `<keras_rec home>/converted`."""
    from keras_rec.home import keras_rec_home

    return keras_rec_home() / "converted"


def converted_model_dir(fingerprint: str, backend: str) -> Path:
    """Returns `<home>/converted/<fingerprint[:16]>-<backend>`."""
    return converted_models_dir() / f"{fingerprint[:16]}-{backend}"


def check_backend_available(backend: str) -> None:
    """Raises an `ImportError` that says what to install when `backend` can't run."""
    module = _BACKEND_MODULES[backend]
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:  # The parent package (`optimum`) is missing.
        found = False
    if found:
        return
    message = (
        f"`backend={backend!r}` needs the `{_BACKEND_PACKAGES[backend]}` package "
        f"(module `{module}`), which is not installed."
    )
    if backend == "onnx":
        message += (
            " sentence-transformers loads ONNX models through `optimum-onnx`; its releases "
            "so far pin `transformers<4.58`, which sentence-transformers 6 (transformers>=5) "
            "cannot use, so the two may not install together. Use `backend='openvino'` "
            "(optimum-intel), which runs the same graph on CPU."
        )
    else:
        message += " Install it with `pip install keras_rec[openvino]`."
    raise ImportError(message)


def load_converted(
    torch_model,
    fingerprint: str,
    backend: str,
    precision: str = "float32",
    device: str | None = None,
):
    """Loads `torch_model` as a `SentenceTransformer` on `backend`, converting it once.

    Args:
        torch_model: `SentenceTransformer` with the torch backend: what to convert.
        fingerprint: str. `SentenceEncoder` fingerprint of `torch_model`; names
            the converted directory.
        backend: str. `"openvino"` or `"onnx"`.
        precision: str. `"float32"` or (OpenVINO only) `"bfloat16"`.
        device: str or None. Passed to `SentenceTransformer`.

    Returns:
        The `SentenceTransformer` loaded from the converted directory.
    """
    from keras_rec.serving.versioned_dir import export_lock

    check_backend_available(backend)
    target = converted_model_dir(fingerprint, backend)
    # Several workers on one machine share KERAS_REC_HOME: one converts, the others wait.
    with export_lock(str(target.parent)):
        if not (target / METADATA_FILE).is_file():
            convert(torch_model, fingerprint, backend, target)
    return _load(target, backend, precision, device)


def convert(torch_model, fingerprint: str, backend: str, target: Path) -> None:
    """Exports `torch_model` to `backend` and publishes it at `target` (call under the lock)."""
    from sentence_transformers import SentenceTransformer

    from keras_rec.serving.versioned_dir import make_temp_dir

    temp_dir = make_temp_dir(str(target.parent))
    try:
        # Export from a saved copy: the weights converted are the ones fingerprinted,
        # whether the model came from a path, a hub id or memory.
        source = os.path.join(temp_dir, "source")
        torch_model.save(source)
        # Saving the exported model (the backend's advice) is what follows.
        with _quiet(_SAVE_ADVICE_LOGGER, _OFFLINE_LOOKUP_LOGGER):
            exported = SentenceTransformer(
                source,
                device="cpu",
                backend=backend,
                local_files_only=True,
                model_kwargs={"export": True},
            )
        staged = os.path.join(temp_dir, "model")
        exported.save(staged)
        metadata = {
            "model_fingerprint": fingerprint,
            "backend": backend,
            "versions": _versions(backend),
        }
        with open(os.path.join(staged, METADATA_FILE), "w") as file:
            json.dump(metadata, file, indent=2, sort_keys=True)
        if target.exists():  # Left without its metadata file: not a finished conversion.
            shutil.rmtree(target)
        os.rename(staged, target)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def effective_precision(model, requested: str) -> str:
    """The precision OpenVINO compiled `model` with (it may ignore the hint)."""
    try:
        compiled = model[0].auto_model.request
        hint = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    except Exception:  # Not an OpenVINO model, or not compiled yet: trust the request.
        return requested
    return _OPENVINO_PRECISIONS.get(hint, hint)


def _load(target: Path, backend: str, precision: str, device: str | None):
    from sentence_transformers import SentenceTransformer

    model_kwargs: dict[str, Any] = {}
    if backend == "openvino":
        model_kwargs["ov_config"] = {"INFERENCE_PRECISION_HINT": _OPENVINO_HINTS[precision]}
    with _quiet(_OFFLINE_LOOKUP_LOGGER):
        return SentenceTransformer(
            str(target),
            device=device,
            backend=backend,
            local_files_only=True,
            model_kwargs=model_kwargs,
        )


def _versions(backend: str) -> dict[str, str]:
    packages = ["sentence-transformers", "transformers", _BACKEND_PACKAGES[backend]]
    packages.append("openvino" if backend == "openvino" else "onnxruntime")
    versions = {}
    for package in packages:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return versions


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Hides the warnings of the loggers `names` inside the block."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for each, level in zip(loggers, levels):
            each.setLevel(level)
