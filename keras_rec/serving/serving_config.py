"""Writes the config files that make one TF Serving process serve several models."""

from __future__ import annotations

import os
import shlex
from typing import Any

from keras_rec.serving.model_layout import check_model_name, servable_versions

MODEL_CONFIG_FILE = "models.config"
DOCKER_MODEL_CONFIG_FILE = "models.docker.config"
BATCHING_PARAMETERS_FILE = "batching_parameters.txt"
DOCKER_IMAGE = "tensorflow/serving:2.19.1"
REST_API_PORT = 8501
GRPC_PORT = 8500
_DOCKER_MODELS = "/models"
_DOCKER_CONFIG = "/config"


def write_serving_config(
    base_dir: str,
    out_dir: str | None = None,
    base_path_prefix: str | None = None,
    batching: bool = True,
    max_batch_size: int = 64,
    batch_timeout_micros: int = 2000,
    num_batch_threads: int | None = None,
    max_enqueued_batches: int = 100,
) -> dict[str, Any]:
    """Writes `models.config` (and batching parameters) for every model under `base_dir`.

    A model is a directory `base_dir/<name>` with at least one version
    directory `<name>/<version>/` (digits only) holding a `saved_model.pb`.
    Directories whose names are not numbers, such as `.tmp-*` exports in
    progress, are ignored, as TF Serving ignores them.

    Writes, atomically, into `out_dir`:
    - `models.config`: a text `ModelServerConfig`, one entry per model, sorted
      by name, whose `base_path` is the absolute path of the model directory,
      or `<base_path_prefix>/<name>` when a prefix is given.
    - `models.docker.config`: the same with the prefix `/models`, for the
      `docker run` command returned, which mounts `base_dir` at `/models`.
    - `batching_parameters.txt`, when `batching` is on: a text
      `BatchingParameters` message.

    Args:
        base_dir: str. The directory holding one directory per model.
        out_dir: str, optional. Where to write the files (default: `base_dir`).
        base_path_prefix: str, optional. An absolute path such as `"/models"`
            under which the server sees `base_dir` (a container mount).
        batching: bool. Whether to batch requests server-side.
        max_batch_size: int. Largest batch the server forms.
        batch_timeout_micros: int. How long a batch waits to fill up.
        num_batch_threads: int, optional. Threads running batches in parallel
            (default: `os.cpu_count()`).
        max_enqueued_batches: int. Batches queued before requests are refused.

    Returns:
        A dict with the files written (`model_config_file`,
        `docker_model_config_file`, `batching_parameters_file`), the models
        found (`{name: [versions]}`), the directories `skipped` (no version
        with a `saved_model.pb`), and the `command` (a `tensorflow_model_server`
        command line) and `docker_command` that serve them.

    Example:

    >>> summary = keras_rec.serving.write_serving_config("/srv/models")
    >>> summary["models"]
    {'encoder': [1, 2], 'recommender': [3]}
    >>> print(summary["docker_command"])
    docker run --rm -p 8500:8500 -p 8501:8501 ...
    """
    from fsspec.implementations.local import LocalFileSystem

    from keras_rec.atomic_io import write_bytes_atomic

    base_dir = os.fspath(base_dir)
    if not os.path.isdir(base_dir):
        raise ValueError(
            f"`base_dir` must be an existing directory. Received: base_dir={base_dir!r}"
        )
    base_dir = os.path.abspath(base_dir)
    out_dir = base_dir if out_dir is None else os.path.abspath(os.fspath(out_dir))
    if base_path_prefix is not None:
        if not isinstance(base_path_prefix, str) or not base_path_prefix.startswith("/"):
            raise ValueError(
                "`base_path_prefix` must be an absolute path such as '/models'. "
                f"Received: base_path_prefix={base_path_prefix!r}"
            )
        base_path_prefix = base_path_prefix.rstrip("/") or "/"
    if num_batch_threads is None:
        num_batch_threads = os.cpu_count() or 1
    batching_values = {
        "max_batch_size": (max_batch_size, 1),
        "batch_timeout_micros": (batch_timeout_micros, 0),
        "max_enqueued_batches": (max_enqueued_batches, 1),
        "num_batch_threads": (num_batch_threads, 1),
    }
    for name, (value, minimum) in batching_values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            kind = "a positive integer" if minimum else "a non-negative integer"
            raise ValueError(f"`{name}` must be {kind}. Received: {name}={value!r}")

    models, skipped = _find_models(base_dir)
    fs = LocalFileSystem()
    host_prefix = base_dir if base_path_prefix is None else base_path_prefix
    model_config_file = os.path.join(out_dir, MODEL_CONFIG_FILE)
    docker_model_config_file = os.path.join(out_dir, DOCKER_MODEL_CONFIG_FILE)
    write_bytes_atomic(fs, model_config_file, model_server_config_text(models, host_prefix))
    write_bytes_atomic(
        fs, docker_model_config_file, model_server_config_text(models, _DOCKER_MODELS)
    )
    batching_parameters_file = None
    if batching:
        batching_parameters_file = os.path.join(out_dir, BATCHING_PARAMETERS_FILE)
        text = "".join(
            f"{name} {{ value: {value} }}\n" for name, (value, _) in batching_values.items()
        )
        text += "pad_variable_length_inputs: true\n"
        write_bytes_atomic(fs, batching_parameters_file, text.encode("utf-8"))

    def flags(config_file: str, batching_file: str | None) -> list[str]:
        arguments = [f"--model_config_file={config_file}"]
        if batching_file is not None:
            arguments += ["--enable_batching", f"--batching_parameters_file={batching_file}"]
        return arguments

    command = [
        "tensorflow_model_server",
        *flags(model_config_file, batching_parameters_file),
        f"--rest_api_port={REST_API_PORT}",
        f"--port={GRPC_PORT}",
    ]
    # The image's entrypoint already passes --port=8500 --rest_api_port=8501.
    docker_command = [
        "docker", "run", "--rm",
        "-p", f"{GRPC_PORT}:{GRPC_PORT}",
        "-p", f"{REST_API_PORT}:{REST_API_PORT}",
        "-v", f"{base_dir}:{_DOCKER_MODELS}:ro",
        "-v", f"{out_dir}:{_DOCKER_CONFIG}:ro",
        DOCKER_IMAGE,
        *flags(
            f"{_DOCKER_CONFIG}/{DOCKER_MODEL_CONFIG_FILE}",
            None if batching_parameters_file is None
            else f"{_DOCKER_CONFIG}/{BATCHING_PARAMETERS_FILE}",
        ),
    ]  # fmt: skip
    return {
        "base_dir": base_dir,
        "models": models,
        "skipped": skipped,
        "model_config_file": model_config_file,
        "docker_model_config_file": docker_model_config_file,
        "batching_parameters_file": batching_parameters_file,
        "command": shlex.join(command),
        "docker_command": shlex.join(docker_command),
    }


def model_server_config_text(models: dict[str, list[int]], base_path_prefix: str) -> bytes:
    """Returns a text-format `ModelServerConfig` serving `models` from `base_path_prefix`.

    Args:
        models: dict. Model names (mapped to their versions, unused here).
        base_path_prefix: str. The directory holding the model directories, as
            the server sees it.

    Returns:
        The UTF-8 text, with one `config` entry per model, sorted by name.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name in sorted(models):
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = f"{base_path_prefix.rstrip('/')}/{name}"
        entry.model_platform = "tensorflow"
    return text_format.MessageToString(config).encode("utf-8")


def _find_models(base_dir: str) -> tuple[dict[str, list[int]], list[str]]:
    models, skipped = {}, []
    with os.scandir(base_dir) as entries:
        directories = sorted(
            entry.name for entry in entries if entry.is_dir() and not entry.name.startswith(".")
        )
    for name in directories:
        path = os.path.join(base_dir, name)
        versions = servable_versions(path)
        if not versions:
            skipped.append(name)
            continue
        check_model_name(name, path)
        models[name] = versions
    if not models:
        raise ValueError(
            f"No servable model found in {base_dir}. Expected the layout "
            "<base_dir>/<model_name>/<version>/saved_model.pb, with <version> a "
            "number such as 1 (directories with other names are ignored)"
            + (f"; these directories hold no such version: {skipped}." if skipped else ".")
        )
    return models, skipped
