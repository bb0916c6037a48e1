"""Atomic writes on local disks and fsspec object stores.

Locally a file is written under a temporary name in the same directory,
fsynced and renamed into place, so readers see all of it or nothing. Object
stores (S3, GCS, memory) publish an object in a single PUT, which is atomic
already, so the file is written in place.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import IO

from fsspec.implementations.local import LocalFileSystem


@contextlib.contextmanager
def open_atomic(fs, path: str) -> Iterator[IO[bytes]]:
    """Opens `path` on `fs` for binary writing; it appears only on success."""
    if not isinstance(fs, LocalFileSystem):
        with fs.open(path, "wb") as file:
            yield file
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".tmp-{os.path.basename(path)}-{uuid.uuid4().hex}")
    try:
        with open(temporary, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_bytes_atomic(fs, path: str, data: bytes) -> None:
    """Writes `data` to `path` on `fs` so that readers see all of it or nothing."""
    if isinstance(fs, LocalFileSystem):
        with open_atomic(fs, path) as file:
            file.write(data)
    else:
        fs.pipe_file(path, data)
