"""Packs SavedModel versions into the `model.tar.gz` a SageMaker TF Serving endpoint loads."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterable, Sequence
from typing import Any

from keras_rec.serving.model_layout import (
    check_model_name,
    is_version_name,
    servable_versions,
    version_dirs,
)
from keras_rec.serving.op_check import (
    DEFAULT_TARGET,
    ServingCompatibilityError,
    check_serving_ops,
    load_op_set,
)

# Every member gets this time stamp (2000-01-01), so that the same models give
# the same bytes and the same sha256.
_MTIME = 946684800
# The SageMaker TF Serving container reads these from `code/`.
_CODE_FILES = ("inference.py", "requirements.txt")
_CODE_LIB = "lib"


def package_sagemaker(
    model_dirs: str | Sequence[str],
    out_path: str,
    code_dir: str | None = None,
    versions: str = "latest",
    target: str | None = DEFAULT_TARGET,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Writes a `model.tar.gz` for the SageMaker TensorFlow Serving container.

    The archive holds `<name>/<version>/` (the whole SavedModel directory:
    `saved_model.pb`, `variables/`, `assets/`, `assets.extra/`, ...) for each
    model, which the container finds and serves under `<name>`, and, with
    `code_dir`, `code/inference.py`, `code/requirements.txt` and `code/lib/`
    (pre- and post-processing the container runs). Members are sorted, with
    fixed owners, modes and time stamps: the same inputs give the same bytes.

    Args:
        model_dirs: str or list of str. Model directories (`<base>/<name>`),
            whose versions `versions` picks, or version directories
            (`<base>/<name>/<version>`), packed as they are.
        out_path: str. The `.tar.gz` file to write; written beside itself under
            a temporary name, then renamed.
        code_dir: str, optional. A directory holding `inference.py` and,
            optionally, `requirements.txt` and `lib/`.
        versions: str. `"latest"` (the highest version of each model directory)
            or `"all"`.
        target: str or None. The TF Serving build every SavedModel must fit
            (one of `keras_rec.serving.available_targets()`; the SageMaker
            container 2.19 is `"tfserving-2.19"`), or `None` to skip the check.
        overwrite: bool. Whether to replace an existing `out_path`.

    Returns:
        A dict with `out_path`, `models` (`{name: [versions]}`), `code` (the
        code files packed), `bytes` and `sha256` of the archive.

    Example:

    >>> summary = keras_rec.serving.package_sagemaker(
    ...     ["/srv/models/encoder", "/srv/models/recommender/3"], "/tmp/model.tar.gz"
    ... )
    >>> summary["models"]
    {'encoder': [2], 'recommender': [3]}
    """
    if isinstance(model_dirs, (str, os.PathLike)):
        model_dirs = [model_dirs]
    model_dirs = [os.fspath(path) for path in model_dirs]
    if not model_dirs:
        raise ValueError("`model_dirs` must name at least one directory. Received: model_dirs=[]")
    if versions not in ("latest", "all"):
        raise ValueError(f"`versions` must be 'latest' or 'all'. Received: versions={versions!r}")
    if target is not None:
        load_op_set(target)  # Fails early on an unknown target.
    out_path = os.path.abspath(os.fspath(out_path))
    if os.path.isdir(out_path):
        raise ValueError(f"`out_path` must be a file path, not a directory. Received: {out_path}")
    if os.path.exists(out_path) and not overwrite:
        raise FileExistsError(
            f"{out_path} exists. Pass overwrite=True (--overwrite) to replace it."
        )

    models = _collect_versions(model_dirs, versions)
    code = _code_files(code_dir) if code_dir is not None else {}
    sources = [path for found in models.values() for path in found.values()]
    sources += [os.path.dirname(path) for path in code.values()]
    for source in sources:
        if _is_within(out_path, source):
            raise ValueError(
                f"`out_path` must lie outside the directories it packs. Received: "
                f"out_path={out_path!r}, which is inside {source}"
            )
    if target is not None:
        _check_ops(models, target)

    from fsspec.implementations.local import LocalFileSystem

    from keras_rec.atomic_io import open_atomic

    with open_atomic(LocalFileSystem(), out_path) as file:
        digest = _DigestWriter(file)
        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=digest, mtime=0) as compressed,
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for name, found in models.items():
                _add_directory(tar, name)
                for version_dir in found.values():
                    _add_tree(tar, version_dir, f"{name}/{os.path.basename(version_dir)}")
            if code:
                _add_directory(tar, "code")
                for arcname, path in code.items():
                    if os.path.isdir(path):
                        _add_tree(tar, path, arcname)
                    else:
                        _add_file(tar, path, arcname)
    return {
        "out_path": out_path,
        "models": {name: list(found) for name, found in models.items()},
        "code": list(code),
        "bytes": digest.size,
        "sha256": digest.sha256.hexdigest(),
    }


def _collect_versions(model_dirs: Iterable[str], versions: str) -> dict[str, dict[int, str]]:
    """Returns `{name: {version: version directory}}`, sorted by name and version."""
    models: dict[str, dict[int, str]] = {}
    model_paths: dict[str, str] = {}
    for entry in model_dirs:
        path = os.path.abspath(entry)
        if not os.path.isdir(path):
            raise ValueError(
                f"Each of `model_dirs` must be an existing directory. Received: {entry!r}"
            )
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            model_path, version_name = os.path.split(path)
            if not is_version_name(version_name):
                raise ValueError(
                    "A SavedModel directory in `model_dirs` must be a version directory "
                    "named by a number, e.g. <base>/<name>/1 (move it there). "
                    f"Received: {entry!r}"
                )
            found = {int(version_name): path}
        else:
            model_path = path
            names = version_dirs(path)
            chosen = servable_versions(path)
            if not chosen:
                raise ValueError(
                    f"{entry} holds no version: expected <model_dir>/<version>/"
                    "saved_model.pb with <version> a number such as 1 (directories "
                    "with other names, such as exports in progress, are ignored)."
                )
            if versions == "latest":
                chosen = chosen[-1:]
            found = {version: os.path.join(path, names[version]) for version in chosen}
        name = os.path.basename(model_path)
        check_model_name(name, model_path)
        if name == "code":
            raise ValueError(
                f"A model may not be named 'code': the SageMaker container reads its "
                f"inference code from code/. Rename {model_path}."
            )
        previous = model_paths.setdefault(name, os.path.realpath(model_path))
        if previous != os.path.realpath(model_path):
            raise ValueError(
                f"Two models in `model_dirs` are both named {name!r}: {previous} and "
                f"{model_path}. The archive holds one directory per name; rename one."
            )
        models.setdefault(name, {}).update(found)
    return {name: dict(sorted(models[name].items())) for name in sorted(models)}


def _code_files(code_dir: str) -> dict[str, str]:
    """Returns `{member name: path}` for the code files the container reads."""
    code_dir = os.path.abspath(os.fspath(code_dir))
    if not os.path.isfile(os.path.join(code_dir, "inference.py")):
        raise ValueError(
            "`code_dir` must be a directory holding inference.py (and optionally "
            f"requirements.txt and lib/). Received: code_dir={code_dir!r}"
        )
    files = {}
    for name in (*_CODE_FILES, _CODE_LIB):
        path = os.path.join(code_dir, name)
        if os.path.isfile(path) or (name == _CODE_LIB and os.path.isdir(path)):
            files[f"code/{name}"] = path
    return dict(sorted(files.items()))


def _check_ops(models: dict[str, dict[int, str]], target: str) -> None:
    failures = []
    for name, found in models.items():
        for version, path in found.items():
            result = check_serving_ops(path, target)
            if not result.ok:
                failures.append(
                    f"model {name!r} version {version}: missing {sorted(result.missing)}\n"
                    + result.explain()
                )
    if failures:
        raise ServingCompatibilityError(
            f"Refusing to package SavedModels that {target} cannot serve (pass "
            "target=None / --target none to skip this check):\n" + "\n".join(failures)
        )


def _is_within(path: str, directory: str) -> bool:
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory


def _add_directory(tar: tarfile.TarFile, arcname: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _MTIME
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, path: str, arcname: str) -> None:
    with open(path, "rb") as file:
        info = tarfile.TarInfo(arcname)
        info.size, info.mode, info.mtime = os.fstat(file.fileno()).st_size, 0o644, _MTIME
        tar.addfile(info, file)


def _add_tree(tar: tarfile.TarFile, directory: str, arcname: str) -> None:
    _add_directory(tar, arcname)
    with os.scandir(directory) as iterator:
        entries = sorted(iterator, key=lambda entry: entry.name)
    for entry in entries:
        member = f"{arcname}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            _add_tree(tar, entry.path, member)
        elif entry.is_file():
            _add_file(tar, entry.path, member)
        else:
            raise ValueError(
                f"Cannot pack {entry.path}: only regular files and directories (not "
                "links to directories, sockets or pipes) go into the archive."
            )


class _DigestWriter(io.RawIOBase):
    """Writes through to a file, counting the bytes and hashing them."""

    def __init__(self, file):
        super().__init__()
        self._file = file
        self.size = 0
        self.sha256 = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._file.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)
