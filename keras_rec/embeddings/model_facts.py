"""A local sentence-transformer's fingerprint, remembered by the files it came from.

Fingerprinting a model (`SentenceEncoder.fingerprint`) needs the model loaded,
and loading it needs PyTorch and sentence-transformers: seconds before the
first vector. A run whose texts are all in the embedding cache needs neither,
only the cache's namespace, which is the fingerprint. So the first
`SentenceEncoder` built from a local directory records what it found in
`$KERAS_REC_HOME/model_facts/<key>.json`, keyed by the directory's real path,
each file's name, size and modification time, and the `max_seq_length`
asked for. A later encoder of the same files reads them back and loads the
model only when it must encode. A file written since (a new save, a fine-tuned
checkpoint) changes the key, and the model is loaded and fingerprinted again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from typing import Any

# Bump when `SentenceEncoder`'s fingerprint changes definition: old records are then ignored.
FACTS_VERSION = 1
FACT_NAMES = ("fingerprint", "max_seq_length", "embedding_dim")

logger = logging.getLogger(__name__)


def model_facts_key(model_dir: str, max_seq_length: int | None) -> str | None:
    """The record's key for the files in `model_dir`; None when it is not a local directory."""
    if not os.path.isdir(model_dir):
        return None
    root = os.path.realpath(model_dir)
    files = []
    for directory, subdirs, names in os.walk(root, followlinks=True):
        subdirs.sort()
        for name in sorted(names):
            path = os.path.join(directory, name)
            try:
                stat = os.stat(path)
            except OSError:  # A dangling link: it takes part in no load either.
                continue
            files.append([os.path.relpath(path, root), stat.st_size, stat.st_mtime_ns])
    text = json.dumps([FACTS_VERSION, root, max_seq_length, files])
    return hashlib.sha256(text.encode()).hexdigest()


def recall_model_facts(key: str | None) -> dict[str, Any] | None:
    """The facts recorded under `key`, or None (never recorded, or unreadable)."""
    if key is None:
        return None
    try:
        with open(_facts_path(key)) as file:
            facts = json.load(file)
    except (OSError, ValueError):
        return None
    if not isinstance(facts, dict) or any(name not in facts for name in FACT_NAMES):
        return None
    return {name: facts[name] for name in FACT_NAMES}


def record_model_facts(key: str | None, facts: dict[str, Any]) -> None:
    """Records `facts` under `key`; a home that cannot be written only costs a later load."""
    if key is None:
        return
    from fsspec.implementations.local import LocalFileSystem

    from keras_rec.atomic_io import write_bytes_atomic

    data = json.dumps({name: facts[name] for name in FACT_NAMES}).encode()
    try:
        write_bytes_atomic(LocalFileSystem(), _facts_path(key), data)
    except OSError as error:
        logger.debug("Could not record the model's facts (%s); the next run loads it.", error)


def forget_model_facts(key: str | None) -> None:
    """Removes the record under `key`, if any."""
    if key is not None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(_facts_path(key))


def _facts_path(key: str) -> str:
    from keras_rec.home import keras_rec_home

    return os.path.join(keras_rec_home(), "model_facts", f"{key}.json")
