"""`<base>/<model_name>/<version>/` directories, published atomically.

TF Serving polls `<base>/<model_name>/` (every second by default) and loads
any directory whose name is an integer. So an export is written into a
sibling whose name is not (`.tmp-<pid>-<random>`), and renamed to its
integer version only once complete. A crash leaves only the temporary
directory, which TF Serving ignores and the next export removes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterator

from keras_rec.serving.model_layout import MODEL_NAME, version_dirs

_TEMP_PREFIX = ".tmp-"
_TEMP_NAME = re.compile(r"^\.tmp-([0-9]+)-[0-9a-f]+$")
_LOCK_FILE = ".keras_rec_export.lock"


def validate_model_name(model_name: str) -> str:
    """Returns `model_name` if TF Serving and a file system both accept it."""
    if not isinstance(model_name, str) or not MODEL_NAME.fullmatch(model_name):
        raise ValueError(
            "`model_name` must start with a letter or digit and contain only letters, "
            "digits, '_', '-' and '.' (at most 128 characters): it is a directory name "
            f"and TF Serving's model name. Received: model_name={model_name!r}"
        )
    return model_name


def model_dir(base_dir: str, model_name: str) -> str:
    """Returns the absolute `<base_dir>/<model_name>` of a local `base_dir`."""
    base_dir = os.fspath(base_dir)
    if "://" in base_dir and not base_dir.startswith("file://"):
        raise ValueError(
            "`base_dir` must be a local directory (export there, then copy or "
            "package the version, e.g. `keras-rec package-sagemaker`). "
            f"Received: base_dir={base_dir!r}"
        )
    base_dir = base_dir.removeprefix("file://")
    return os.path.join(os.path.abspath(base_dir), validate_model_name(model_name))


def list_versions(path: str) -> list[int]:
    """The integer version directories in `path`, ascending (none if it is missing)."""
    if not os.path.isdir(path):
        return []
    return list(version_dirs(path))


def next_version(path: str) -> int:
    """The version the next export to `path` takes: the latest + 1 (1 for the first)."""
    existing = list_versions(path)
    return existing[-1] + 1 if existing else 1


def check_version(path: str, version: int | None) -> int | None:
    """Validates an explicit `version` against the versions already in `path`."""
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive integer. Received: version={version!r}")
    existing = list_versions(path)
    if version in existing:
        raise FileExistsError(
            f"Version {version} already exists at {os.path.join(path, str(version))}; "
            "an exported version is never overwritten. Leave `version` unset to take "
            f"the next one ({existing[-1] + 1})."
        )
    if existing and version < existing[-1]:
        raise ValueError(
            f"`version` must be greater than the latest version {existing[-1]} in {path} "
            f"(TF Serving serves the highest number). Received: version={version}"
        )
    return version


@contextlib.contextmanager
def export_lock(path: str) -> Iterator[None]:
    """Holds an exclusive `flock` on `<path>/.keras_rec_export.lock`."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, _LOCK_FILE), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def make_temp_dir(path: str) -> str:
    """Creates `<path>/.tmp-<pid>-<random>` (after removing stale ones) and returns it."""
    os.makedirs(path, exist_ok=True)
    remove_stale_temp_dirs(path)
    temp_dir = os.path.join(path, f"{_TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(temp_dir)
    return temp_dir


def remove_stale_temp_dirs(path: str) -> list[str]:
    """Removes the temporary directories of exports whose process is gone."""
    removed = []
    for name in os.listdir(path) if os.path.isdir(path) else []:
        match = _TEMP_NAME.match(name)
        if match and not _process_alive(int(match.group(1))):
            shutil.rmtree(os.path.join(path, name), ignore_errors=True)
            removed.append(name)
    return removed


def publish(temp_dir: str, version: int | None) -> tuple[int, str]:
    """Renames `temp_dir` to its integer version; returns `(version, path)`.

    Under the export lock: `version=None` takes the latest version + 1 (1 for
    the first), so versions only grow, even after one is deleted by hand.
    """
    path = os.path.dirname(temp_dir)
    with export_lock(path):
        if version is None:
            version = next_version(path)
        else:
            check_version(path, version)
        final_dir = os.path.join(path, str(version))
        try:
            # Fails on an existing non-empty directory; an empty one (made by
            # hand) has no saved_model.pb, so replacing it loses nothing.
            os.rename(temp_dir, final_dir)
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise FileExistsError(
                    f"Version {version} appeared at {final_dir} during the export; "
                    "it was not overwritten."
                ) from error
            raise
        _fsync_dir(path)
    return version, final_dir


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
