"""The on-disk layout TF Serving reads: `<base>/<model_name>/<version>/saved_model.pb`.

A version is a directory named by a number alone (`1`, `42`). Anything else in
a model directory, such as the `.tmp-3-1234-ab12` directory of an export in
progress, is not a version: TF Serving skips it, and so does everything here.
"""

from __future__ import annotations

import os
import re

_VERSION_NAME = re.compile(r"[0-9]+")
# The rule the exporter applies to model names.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_version_name(name: str) -> bool:
    """Returns whether `name` names a version directory: digits only, e.g. `"3"`."""
    return _VERSION_NAME.fullmatch(name) is not None


def version_dirs(model_dir: str) -> dict[int, str]:
    """Maps each version of a model directory to its directory name.

    Args:
        model_dir: str. A directory `<base>/<model_name>`.

    Returns:
        `{version: name}` for every subdirectory named by digits only, whether
        or not it holds a `saved_model.pb`, sorted by version.

    Example:

    >>> keras_rec.serving.model_layout.version_dirs("/tmp/models/encoder")
    {1: '1', 2: '2'}
    """
    found: dict[int, str] = {}
    with os.scandir(model_dir) as entries:
        for entry in entries:
            if not (is_version_name(entry.name) and entry.is_dir()):
                continue
            version = int(entry.name)
            if version in found:
                first, second = sorted([found[version], entry.name])
                raise ValueError(
                    f"Directories {first!r} and {second!r} of {model_dir} both name "
                    f"version {version}: TF Serving would load only one. Remove one."
                )
            found[version] = entry.name
    return dict(sorted(found.items()))


def servable_versions(model_dir: str) -> list[int]:
    """Returns the versions of a model directory that hold a `saved_model.pb`.

    Args:
        model_dir: str. A directory `<base>/<model_name>`.

    Returns:
        The versions, ascending; `[]` when the directory holds none.

    Raises:
        ValueError: when the highest version directory has no `saved_model.pb`
            while a lower one has: TF Serving serves the highest version, so it
            would try to load the incomplete one and fail.

    Example:

    >>> keras_rec.serving.model_layout.servable_versions("/tmp/models/encoder")
    [1, 2]
    """
    names = version_dirs(model_dir)
    versions = [
        version
        for version, name in names.items()
        if os.path.isfile(os.path.join(model_dir, name, "saved_model.pb"))
    ]
    if versions and max(names) not in versions:
        latest = os.path.join(model_dir, names[max(names)])
        raise ValueError(
            f"Version directory {latest} has no saved_model.pb, but it is the "
            "highest version, which TF Serving loads (and would fail to). Finish "
            "or remove that export; an export in progress belongs in a directory "
            "whose name is not a number."
        )
    return versions


def check_model_name(name: str, path: str) -> None:
    """Raises `ValueError` unless TF Serving can serve a model under `name`.

    Args:
        name: str. The model name, i.e. the name of the model directory.
        path: str. The model directory, for the error message.
    """
    if not MODEL_NAME.fullmatch(name):
        raise ValueError(
            "Model names must start with a letter or digit and hold only letters, "
            "digits, '.', '_' and '-' (at most 128 characters): TF Serving's REST API takes "
            f"the name in the URL /v1/models/<name>:predict. Rename the directory {path}. "
            f"Received: name={name!r}"
        )
