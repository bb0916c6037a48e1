"""`EmbeddingCache`: content-addressed vector storage on any fsspec filesystem.

Layout under the root (a local directory or a URL such as `s3://bucket/prefix`):

    <root>/<namespace>/namespace.json        what produced the vectors
    <root>/<namespace>/shards/<id>.npy       float32 [count, dim], immutable
    <root>/<namespace>/manifest/<id>.json    keys, count, dim, sha256 of the shard

A namespace is the hash of the encoder identity (model weights hash, max
sequence length, normalization), and a key is the sha256 of the text, so a
vector's address is (model identity, max length, normalization, text).

Writes are append-only and each file is written atomically (temporary file
+ rename locally; a single PUT on object stores). The shard is written before
its manifest entry, so a reader only ever sees complete shards, and a run
killed at any point leaves at most an unreferenced file behind. Writers never
modify a file another process may be writing, so several processes can fill
one cache at once. Every shard is checked against its sha256 when read; a
corrupt or missing shard is dropped from the manifest and its texts count as
missing, to be encoded again.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import fsspec
import numpy as np

from keras_rec.atomic_io import write_bytes_atomic
from keras_rec.home import default_embedding_cache_dir

logger = logging.getLogger(__name__)

_FORMAT_VERSION = 1


def text_key(text: str) -> str:
    """The cache key of one text: sha256 of its UTF-8 bytes, in hex."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def namespace_key(identity: dict[str, Any]) -> str:
    """The directory name for vectors produced by one encoder identity."""
    canonical = json.dumps(
        {"format": _FORMAT_VERSION, **identity}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class EmbeddingCache:
    """Persistent storage of text vectors, keyed by encoder identity and text.

    Args:
        root: str, path or None. A local directory or any fsspec URL
            (`s3://bucket/prefix`, `gs://...`, `memory://...`). `None` uses
            `~/.keras_rec/embeddings` (or `$KERAS_REC_HOME/embeddings`).
        storage_options: dict or None. Passed to the fsspec filesystem, e.g.
            `{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}`
            for an S3-compatible server.

    Example:

    >>> cache = keras_rec.embeddings.EmbeddingCache("/tmp/vectors")
    >>> store = cache.namespace(encoder.identity())
    >>> found, vectors = store.lookup(["some text"])
    """

    def __init__(self, root: Any = None, storage_options: dict[str, Any] | None = None):
        if root is None:
            root = default_embedding_cache_dir()
        root = os.fspath(root)
        if not root:
            raise ValueError(f"`root` must be a directory or URL. Received: root={root!r}")
        self.root = root
        self.storage_options = dict(storage_options or {})
        self.fs, self._root_path = fsspec.core.url_to_fs(root, **self.storage_options)

    def namespace(self, identity: dict[str, Any]) -> "CacheNamespace":
        """Returns the store for vectors made by the encoder `identity`."""
        return CacheNamespace(self, identity)

    def namespaces(self) -> list[dict[str, Any]]:
        """Lists the identities of all namespaces in this cache."""
        identities = []
        if not self.fs.exists(self._root_path):
            return identities
        for entry in self.fs.ls(self._root_path, detail=False):
            meta_path = f"{entry.rstrip('/')}/namespace.json"
            if self.fs.exists(meta_path):
                identities.append(json.loads(self.fs.cat_file(meta_path)))
        return identities

    def _join(self, *parts: str) -> str:
        return "/".join([self._root_path.rstrip("/"), *parts])

    def __repr__(self) -> str:
        return f"EmbeddingCache(root={self.root!r})"


class CacheNamespace:
    """The vectors of one encoder identity inside an `EmbeddingCache`.

    Use `EmbeddingCache.namespace(identity)` to get one.
    """

    def __init__(self, cache: EmbeddingCache, identity: dict[str, Any]):
        self.cache = cache
        self.identity = dict(identity)
        self.name = namespace_key(self.identity)
        self.embedding_dim = int(self.identity["embedding_dim"])
        self._fs = cache.fs
        self._dir = cache._join(self.name)
        # key -> (shard_id, row), built from manifest entries.
        self._index: dict[str, tuple[str, int]] = {}
        self._entries: dict[str, dict[str, Any]] = {}
        self._shard_vectors: dict[str, np.ndarray] = {}
        self._identity_written = False

    # --- Reading -----------------------------------------------------------

    def refresh(self) -> None:
        """Reads manifest entries written since the last refresh."""
        manifest_dir = f"{self._dir}/manifest"
        try:
            names = self._fs.ls(manifest_dir, detail=False)
        except FileNotFoundError:
            return
        new_paths = [p for p in names if p.endswith(".json") and _shard_id(p) not in self._entries]
        if not new_paths:
            return
        contents = self._fs.cat(new_paths, on_error="return")
        for path in new_paths:
            raw = contents.get(path)
            if isinstance(raw, BaseException) or raw is None:
                continue  # Deleted between ls and cat by another process.
            try:
                entry = json.loads(raw)
                self._check_entry(entry)
            except (ValueError, KeyError, TypeError) as error:
                logger.warning("Ignoring unreadable manifest entry %s: %s", path, error)
                continue
            shard_id = entry["shard_id"]
            self._entries[shard_id] = entry
            for row, key in enumerate(entry["keys"]):
                self._index.setdefault(key, (shard_id, row))

    def __len__(self) -> int:
        self.refresh()
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def lookup(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Returns `(found, vectors)` for text keys.

        `found` is a bool array; `vectors[i]` is valid where `found[i]`. A
        shard that fails its checksum is dropped (with a warning) and its
        keys are reported as not found.
        """
        self.refresh()
        vectors = np.zeros((len(keys), self.embedding_dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for position, key in enumerate(keys):
            location = self._index.get(key)
            if location is not None:
                by_shard.setdefault(location[0], []).append((position, location[1]))
        for shard_id, pairs in by_shard.items():
            shard = self._load_shard(shard_id)
            if shard is None:
                continue
            positions = np.fromiter((p for p, _ in pairs), dtype=np.int64, count=len(pairs))
            rows = np.fromiter((r for _, r in pairs), dtype=np.int64, count=len(pairs))
            vectors[positions] = shard[rows]
            found[positions] = True
        return found, vectors

    def _load_shard(self, shard_id: str) -> np.ndarray | None:
        if shard_id in self._shard_vectors:
            return self._shard_vectors[shard_id]
        entry = self._entries[shard_id]
        path = f"{self._dir}/shards/{shard_id}.npy"
        try:
            raw = self._fs.cat_file(path)
        except FileNotFoundError:
            self._drop_shard(shard_id, "its file is missing")
            return None
        digest = hashlib.sha256(raw).hexdigest()
        if digest != entry["sha256"]:
            self._drop_shard(
                shard_id,
                f"sha256 {digest[:12]}... does not match the manifest's {entry['sha256'][:12]}...",
            )
            return None
        vectors = np.load(io.BytesIO(raw), allow_pickle=False)
        if vectors.shape != (entry["count"], self.embedding_dim) or vectors.dtype != np.float32:
            self._drop_shard(shard_id, f"it holds {vectors.dtype}{vectors.shape}")
            return None
        self._shard_vectors[shard_id] = vectors
        return vectors

    def _drop_shard(self, shard_id: str, reason: str) -> None:
        logger.warning(
            "Embedding cache shard %s/shards/%s.npy is corrupt (%s); dropping it, "
            "its texts will be encoded again.",
            self._dir,
            shard_id,
            reason,
        )
        entry = self._entries.pop(shard_id)
        for key in entry["keys"]:
            if self._index.get(key, (None,))[0] == shard_id:
                del self._index[key]
        # Re-point keys that another shard also holds.
        for other_id, other in self._entries.items():
            for row, key in enumerate(other["keys"]):
                self._index.setdefault(key, (other_id, row))
        # Manifest entry first: once it is gone no reader looks for the shard.
        for path in (
            f"{self._dir}/manifest/{shard_id}.json",
            f"{self._dir}/shards/{shard_id}.npy",
        ):
            try:
                self._fs.rm(path)
            except FileNotFoundError:
                pass

    def release_vectors(self) -> None:
        """Forgets the shard vectors read so far (they are read again when asked for).

        A long-lived reader that looks up many texts calls this between
        batches, so memory holds one batch's shards rather than the cache.
        """
        self._shard_vectors.clear()

    # --- Writing -----------------------------------------------------------

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> str:
        """Stores `vectors` under `keys` as one new shard; returns its id."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(keys), self.embedding_dim):
            raise ValueError(
                f"`vectors` must have shape (len(keys), {self.embedding_dim}) = "
                f"({len(keys)}, {self.embedding_dim}). Received: shape={vectors.shape}"
            )
        if not len(keys):
            raise ValueError("`keys` must not be empty.")
        if not np.isfinite(vectors).all():
            bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))[:10].tolist()
            raise ValueError(
                f"Refusing to cache non-finite vectors (rows {bad}). The encoder "
                "produced NaN or inf."
            )
        self._write_identity()
        shard_id = uuid.uuid4().hex
        buffer = io.BytesIO()
        np.save(buffer, vectors, allow_pickle=False)
        shard_bytes = buffer.getvalue()
        entry = {
            "format": _FORMAT_VERSION,
            "shard_id": shard_id,
            "count": int(len(keys)),
            "dim": self.embedding_dim,
            "sha256": hashlib.sha256(shard_bytes).hexdigest(),
            "keys": list(keys),
        }
        # Shard first, then the manifest entry that makes it visible.
        write_bytes_atomic(self._fs, f"{self._dir}/shards/{shard_id}.npy", shard_bytes)
        write_bytes_atomic(
            self._fs,
            f"{self._dir}/manifest/{shard_id}.json",
            json.dumps(entry, separators=(",", ":")).encode(),
        )
        self._entries[shard_id] = entry
        self._shard_vectors[shard_id] = vectors
        for row, key in enumerate(keys):
            self._index.setdefault(key, (shard_id, row))
        return shard_id

    def _write_identity(self) -> None:
        if self._identity_written:
            return
        path = f"{self._dir}/namespace.json"
        payload = json.dumps(self.identity, sort_keys=True, indent=2).encode()
        if self._fs.exists(path):
            stored = json.loads(self._fs.cat_file(path))
            if stored != json.loads(payload):
                raise ValueError(
                    f"The cache namespace {self._dir} was written by a different "
                    f"encoder: {stored} != {self.identity}."
                )
        else:
            write_bytes_atomic(self._fs, path, payload)
        self._identity_written = True

    # --- Maintenance -------------------------------------------------------

    def verify(self) -> list[str]:
        """Reads every shard, drops the corrupt ones; returns their ids."""
        self.refresh()
        before = set(self._entries)
        for shard_id in list(self._entries):
            self._load_shard(shard_id)
        return sorted(before - set(self._entries))

    def _check_entry(self, entry: dict[str, Any]) -> None:
        if entry["dim"] != self.embedding_dim:
            raise ValueError(f"entry has dim={entry['dim']}, the namespace {self.embedding_dim}")
        if len(entry["keys"]) != entry["count"]:
            raise ValueError(f"{len(entry['keys'])} keys for count={entry['count']}")


def _shard_id(path: str) -> str:
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def iter_chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
