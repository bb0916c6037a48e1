"""TF Hub modules of a sentence-transformer, exported once and kept under `KERAS_REC_HOME`."""

from __future__ import annotations

import os


def hub_modules(model: str | None = None, hub_dir: str | None = None, precision: str = "float32"):
    """`(hub_dir, SentenceEncoder or None)`: a `preprocess/` + `encoder/` directory.

    With `hub_dir` (an existing `keras-rec export-hub` output) that directory
    is checked and returned with no encoder. Otherwise the sentence-transformer
    `model` (path or id; None is the embedded all-MiniLM-L6-v2) is loaded and
    exported to `$KERAS_REC_HOME/hub/<name>-<fingerprint>-<max length>/` the
    first time, so later runs reuse the export (a `-bfloat16` suffix for
    that precision).

    Args:
        model: str or None. Sentence-transformer path or id.
        hub_dir: str or None. Existing hub directory; its recorded precision
            must equal `precision`.
        precision: str. `"float32"` or `"bfloat16"` (see `export_hub`).

    Returns:
        The hub directory and the `SentenceEncoder` it came from (None when
        `hub_dir` was given).
    """
    from keras_rec.embeddings.sentence_encoder import SentenceEncoder
    from keras_rec.home import keras_rec_home
    from keras_rec.hub.export_hub import export_hub
    from keras_rec.precision import check_precision
    from keras_rec.serving.versioned_dir import export_lock

    check_precision(precision)
    if hub_dir is not None:
        for part in ("preprocess", "encoder"):
            if not os.path.isdir(os.path.join(hub_dir, part)):
                raise FileNotFoundError(
                    f"`hub_dir` must hold `preprocess/` and `encoder/` (from `keras-rec "
                    f"export-hub`). Missing: {os.path.join(hub_dir, part)}"
                )
        exported = hub_precision(hub_dir)
        if exported != precision:
            raise ValueError(
                f"`hub_dir` holds a {exported} encoder but precision={precision!r} was asked "
                f"for. Export one with `keras-rec export-hub --precision {precision}` or "
                f"pass the matching precision. Received: hub_dir={hub_dir}"
            )
        return hub_dir, None
    encoder = SentenceEncoder(model, device="cpu")
    # A local model by any path (relative, absolute, through a link) is one export.
    name = os.path.realpath(model) if model and os.path.isdir(model) else encoder.model_name
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))
    suffix = "" if precision == "float32" else f"-{precision}"
    hub_dir = os.path.join(
        keras_rec_home(),
        "hub",
        f"{slug[-48:]}-{encoder.fingerprint[:16]}-{encoder.max_seq_length}{suffix}",
    )
    # Several workers on one machine share KERAS_REC_HOME: one exports, the others wait.
    with export_lock(os.path.dirname(hub_dir)):
        if not os.path.isdir(hub_dir):
            export_hub(encoder.model, hub_dir, precision=precision, model_name=encoder.model_name)
    return hub_dir, encoder


def hub_precision(hub_dir: str) -> str:
    """The encoder precision recorded by `export_hub` (`"float32"` when not recorded)."""
    import json

    from keras_rec.hub.export_hub import METADATA_FILE

    path = os.path.join(hub_dir, METADATA_FILE)
    if not os.path.isfile(path):
        return "float32"
    with open(path) as file:
        return json.load(file).get("precision", "float32")
