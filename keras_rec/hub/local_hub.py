"""TF Hub modules of a sentence-transformer, exported once and kept under `KERAS_REC_HOME`."""

from __future__ import annotations

import os


def hub_modules(model: str | None = None, hub_dir: str | None = None):
    """`(hub_dir, SentenceEncoder or None)`: a `preprocess/` + `encoder/` directory.

    With `hub_dir` (an existing `keras-rec export-hub` output) that directory
    is checked and returned with no encoder. Otherwise the sentence-transformer
    `model` (path or id; None is the embedded all-MiniLM-L6-v2) is loaded and
    exported to `$KERAS_REC_HOME/hub/<name>-<fingerprint>-<max length>/` the
    first time, so later runs reuse the export.

    Args:
        model: str or None. Sentence-transformer path or id.
        hub_dir: str or None. Existing hub directory.

    Returns:
        The hub directory and the `SentenceEncoder` it came from (None when
        `hub_dir` was given).
    """
    from keras_rec.embeddings.sentence_encoder import SentenceEncoder
    from keras_rec.home import keras_rec_home
    from keras_rec.hub.export_hub import export_hub
    from keras_rec.serving.versioned_dir import export_lock

    if hub_dir is not None:
        for part in ("preprocess", "encoder"):
            if not os.path.isdir(os.path.join(hub_dir, part)):
                raise FileNotFoundError(
                    f"`hub_dir` must hold `preprocess/` and `encoder/` (from `keras-rec "
                    f"export-hub`). Missing: {os.path.join(hub_dir, part)}"
                )
        return hub_dir, None
    encoder = SentenceEncoder(model, device="cpu")
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(encoder.model_name))
    hub_dir = os.path.join(
        keras_rec_home(), "hub", f"{slug[-48:]}-{encoder.fingerprint[:16]}-{encoder.max_seq_length}"
    )
    # Several workers on one machine share KERAS_REC_HOME: one exports, the others wait.
    with export_lock(os.path.dirname(hub_dir)):
        if not os.path.isdir(hub_dir):
            export_hub(encoder.model, hub_dir)
    return hub_dir, encoder
