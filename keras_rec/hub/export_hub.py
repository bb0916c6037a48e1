"""`export_hub`: a sentence-transformer as TF Hub preprocessor + encoder SavedModels."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from typing import Any

SENTENCE_EMBEDDING_KEY = "sentence_embedding"
METADATA_FILE = "keras_rec_hub.json"


def export_hub(
    model: Any,
    out_dir: str,
    max_seq_length: int | None = None,
    target: str | None = "tfserving-2.19",
    overwrite: bool = False,
    precision: str = "float32",
    model_name: str | None = None,
) -> dict[str, Any]:
    """Writes `out_dir/preprocess/` and `out_dir/encoder/` from a sentence-transformer.

    Both are TF2 SavedModels following the TF Hub text conventions, loadable
    with `keras_rec.hub.HubLayer` in Keras 3 (and `hub.KerasLayer` in
    tf_keras):

    - `preprocess`: `__call__(strings)` -> `input_word_ids`, `input_mask`,
      `input_type_ids` (int32 [B, T], T = longest row up to the max length),
      `.tokenize(strings)` and `.bert_pack_inputs(segments, seq_length)`;
      token ids equal to the model's Hugging Face tokenizer.
    - `encoder`: `__call__(inputs, training)` -> `pooled_output`,
      `sequence_output`, `encoder_outputs`, `default`, and the
      sentence-transformer's own embedding (its pooling and normalization)
      under `"sentence_embedding"`.

    The two are written into a temporary sibling directory, checked (their
    ops against `target`; each loaded through TF Serving's Session loader and
    `tf.saved_model.load` in a TensorFlow-only process, answering
    `serving_default` as in memory at two batch sizes), and renamed into
    place: an interrupted or failed export leaves nothing at `out_dir`.
    `out_dir/keras_rec_hub.json` records the source model and its fingerprint.

    Args:
        model: str, `SentenceTransformer` or None. Local path, Hugging Face
            model id, or loaded model; `None` is the embedded all-MiniLM-L6-v2.
        out_dir: str. Directory to create.
        max_seq_length: int or None. Token limit; `None` keeps the model's.
        target: str or None. TF Serving build whose op set both SavedModels
            must fit (see `keras_rec.serving.available_targets()`); `None`
            skips the check.
        overwrite: bool. Replace an existing `out_dir`.
        precision: str. `"float32"` (default: equal to the PyTorch model
            within float rounding) or `"bfloat16"` (the transformer layers'
            kernels and matmuls in bfloat16, for CPUs with AMX: faster, and
            embeddings within ~1e-3 cosine; see `keras_rec.hub.build_encoder`).
        model_name: str or None. The model's name recorded in
            `keras_rec_hub.json`; None takes the path or id `model` names (a
            loaded model passed without it is recorded by its class name).

    Returns:
        A summary dict (paths, model, dimensions, seconds).

    Example:

    >>> keras_rec.hub.export_hub(None, "/tmp/minilm_hub")
    >>> preprocess = keras_rec.hub.HubLayer("/tmp/minilm_hub/preprocess")
    """
    from keras_rec.embeddings.sentence_encoder import (
        DEFAULT_MODEL,
        SentenceEncoder,
        load_sentence_transformer,
    )
    from keras_rec.hub.encoder_export import save_encoder
    from keras_rec.hub.wordpiece_preprocessor import build_preprocessor, save_preprocessor
    from keras_rec.precision import SERVING_TOLERANCE, check_precision

    start = time.perf_counter()
    check_precision(precision)
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir) and not overwrite and os.listdir(out_dir):
        raise FileExistsError(
            f"`out_dir` already exists and is not empty: {out_dir}. "
            "Pass `overwrite=True` (`--overwrite`) to replace it."
        )
    if model_name is None:
        model_name = model if isinstance(model, str) else DEFAULT_MODEL if model is None else None
    if model is None or isinstance(model, str):
        model = load_sentence_transformer(model, device="cpu")
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    identity = SentenceEncoder(model).identity()

    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.partial-", dir=parent)
    try:
        preprocess_dir = os.path.join(staging, "preprocess")
        encoder_dir = os.path.join(staging, "encoder")
        preprocessor = build_preprocessor(model)
        save_preprocessor(preprocessor, preprocess_dir)
        encoder = save_encoder(model, encoder_dir, precision)
        if target is not None:
            from keras_rec.serving.op_check import assert_servable

            assert_servable(preprocess_dir, target)
            assert_servable(encoder_dir, target)
        serving_checks = _check_serving(
            preprocessor, preprocess_dir, encoder, encoder_dir, SERVING_TOLERANCE[precision]
        )
        metadata = {
            "model": model_name or identity["model_name"],
            "model_fingerprint": identity["model_fingerprint"],
            "max_seq_length": identity["max_seq_length"],
            "embedding_dim": identity["embedding_dim"],
            "sentence_embedding_key": SENTENCE_EMBEDDING_KEY,
            "precision": precision,
            "serving_target": target,
        }
        with open(os.path.join(staging, METADATA_FILE), "w") as file:
            json.dump(metadata, file, indent=2)
        os.chmod(staging, 0o755)
        _replace_directory(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {
        "out_dir": out_dir,
        "preprocess": os.path.join(out_dir, "preprocess"),
        "encoder": os.path.join(out_dir, "encoder"),
        **metadata,
        "serving_check_seconds": serving_checks,
        "seconds": round(time.perf_counter() - start, 1),
    }


# Rows the two modules are checked on in serving (the check's second batch is row 0).
_CHECK_TEXTS = ("A film about toys that come to life.", "", "naïve café, 東京 🎬")


def _check_serving(
    preprocessor, preprocess_dir, encoder, encoder_dir, tolerance: float
) -> dict[str, float]:
    """Both SavedModels answer `serving_default` as in memory (within `tolerance`),
    through TF Serving's loader, in one fresh process."""
    import numpy as np

    from keras_rec.serving.saved_model_ops import serving_signature_specs
    from keras_rec.serving.serving_check import ServingCheck, check_serving_all
    from keras_rec.serving.serving_signature import call_signature, take_rows

    text = {"text": np.array([t.encode() for t in _CHECK_TEXTS], dtype=object)}
    preprocess_fn = preprocessor.__call__.get_concrete_function()
    encoder_fn = encoder.serve.get_concrete_function(
        **serving_signature_specs(encoder_dir, "serving_default")
    )
    checks = []
    for directory, function, inputs in (
        (preprocess_dir, preprocess_fn, text),
        (encoder_dir, encoder_fn, call_signature(preprocess_fn, text)),
    ):
        batches = {size: take_rows(inputs, size) for size in (len(_CHECK_TEXTS), 1)}
        expected = {size: call_signature(function, batch) for size, batch in batches.items()}
        checks.append(ServingCheck(directory, batches, expected, atol=tolerance, rtol=tolerance))
    reports = check_serving_all(checks)
    return {os.path.basename(c.saved_model_dir): r["seconds"] for c, r in zip(checks, reports)}


def _replace_directory(source: str, destination: str) -> None:
    """Renames `source` to `destination`, moving an old `destination` aside first."""
    if not os.path.exists(destination):
        os.rename(source, destination)
        return
    old = f"{destination}.old-{os.getpid()}"
    os.rename(destination, old)
    try:
        os.rename(source, destination)
    except BaseException:
        os.rename(old, destination)
        raise
    with contextlib.suppress(OSError):
        shutil.rmtree(old)
