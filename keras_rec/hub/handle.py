"""`resolve_handle`: turns a TF Hub / Kaggle handle into a local SavedModel path."""

from __future__ import annotations

import os
import re
import warnings

_URL_PREFIXES = ("http://", "https://", "gs://")

# `owner/model/framework/variation/version`, e.g.
# `google/bert/tensorFlow2/en-uncased-l-12-h-768-a-12/3`.
_KAGGLE_HANDLE = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+){3}/\d+")

# The address a Kaggle model page shows in the browser:
# `https://www.kaggle.com/models/OWNER/MODEL/frameworks/FW/variations/VAR/versions/N`.
_KAGGLE_PAGE_URL = re.compile(
    r"https://(www\.)?kaggle\.com/models/([^/]+)/([^/]+)/frameworks/([^/]+)"
    r"/variations/([^/]+)/versions/(\d+)/?"
)

_KAGGLE_MODELS_URL = "https://www.kaggle.com/models/"


def _kaggle_url(handle: str) -> str:
    """Returns the download URL that `tensorflow_hub` understands for a Kaggle handle.

    Args:
        handle: str. A Kaggle model handle `owner/model/framework/variation/version`
            or the address of a Kaggle model page
            (`https://www.kaggle.com/models/.../frameworks/.../variations/.../versions/N`).
            Any other string is returned unchanged.

    Returns:
        `https://www.kaggle.com/models/owner/model/framework/variation/version`.
    """
    match = _KAGGLE_PAGE_URL.fullmatch(handle)
    if match:
        return _KAGGLE_MODELS_URL + "/".join(match.groups()[1:])
    if _KAGGLE_HANDLE.fullmatch(handle):
        return _KAGGLE_MODELS_URL + handle
    return handle


def resolve_handle(handle: str | os.PathLike) -> str:
    """Resolves a TF Hub handle to the local directory of its SavedModel.

    - A local path (or any path `tf.io.gfile` can see) is returned as it is.
    - A URL (`https://tfhub.dev/...`, `https://www.kaggle.com/models/...`, a
      `.tar.gz` URL, `gs://...`) and a Kaggle model handle
      (`owner/model/framework/variation/version`) are downloaded once by
      `tensorflow_hub.resolve`, which caches them under `$TFHUB_CACHE_DIR`
      (default: `<tmp>/tfhub_modules`); later calls read the cache, offline too.

    Args:
        handle: str or `os.PathLike`. The handle to resolve.

    Returns:
        The path of a directory that holds a SavedModel.

    Raises:
        ValueError: if `handle` is not a non-empty string or path.
        FileNotFoundError: if `handle` is neither an existing path, a URL nor a
            Kaggle handle.
        OSError: if the download fails (e.g. offline and not in the cache).

    Example:

    ```python
    path = keras_rec.hub.resolve_handle(
        "https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3"
    )
    ```
    """
    if isinstance(handle, os.PathLike):
        handle = os.fspath(handle)
    if not isinstance(handle, str) or not handle.strip():
        raise ValueError(
            "`handle` must be a non-empty string: a URL, a Kaggle model handle "
            f"or a local path. Received: handle={handle!r}"
        )
    if not handle.startswith(_URL_PREFIXES):
        import tensorflow as tf

        if tf.io.gfile.exists(handle):
            return handle
        url = _kaggle_url(handle)
        if url == handle:
            raise FileNotFoundError(
                f"`handle` is neither an existing path, a URL nor a Kaggle model "
                "handle (`owner/model/framework/variation/version`). "
                f"Received: handle={handle!r}"
            )
    else:
        url = _kaggle_url(handle)
    return _download(url, handle)


def _download(url: str, handle: str) -> str:
    with warnings.catch_warnings():
        # tensorflow_hub 0.16 imports the deprecated `pkg_resources`.
        warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
        import tensorflow_hub as hub
        from tensorflow_hub import resolver

    try:
        return hub.resolve(url)
    except Exception as error:  # urllib, HTTP, tarfile and tf.errors alike.
        cache_dir = resolver.tfhub_cache_dir(use_temp=True)
        raise OSError(
            f"Could not resolve the TF Hub handle {handle!r} (URL {url!r}): "
            f"{type(error).__name__}: {error}. Downloading needs network access; "
            f"once downloaded, the module is cached under {cache_dir!r} "
            "(set TFHUB_CACHE_DIR to choose the directory) and resolves offline. "
            "Without network, pass the path of a local SavedModel directory "
            "instead."
        ) from error
