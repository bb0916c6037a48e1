"""`export`: one SavedModel version for TF Serving, checked and published atomically."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from keras_rec.serving import versioned_dir
from keras_rec.serving.export_root import serving_root
from keras_rec.serving.op_check import DEFAULT_TARGET, OpCheckResult, assert_servable
from keras_rec.serving.serving_check import ServingCheck, check_serving_all

logger = logging.getLogger(__name__)

METADATA_FILE = os.path.join("assets.extra", "keras_rec_export.json")


@dataclasses.dataclass
class ExportResult:
    """What `export` wrote.

    Args:
        model_name: str. TF Serving's model name.
        version: int or None. The version directory (None when not written).
        path: str or None. `<base>/<model_name>/<version>`.
        written: bool. False on a non-chief worker, which writes nothing.
        op_check: the `OpCheckResult`, or None when `target=None`.
        serving_check: the report of `keras_rec.serving.check_serving`, or
            None when skipped.
        files: list of str. Files written beside the graph (`assets.extra/`).
        seconds: float. Wall time of the export.
    """

    model_name: str
    version: int | None
    path: str | None
    written: bool
    op_check: OpCheckResult | None
    serving_check: dict[str, Any] | None
    files: list[str]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable summary."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "path": self.path,
            "written": self.written,
            "target": self.op_check.target if self.op_check else None,
            "ops": len(self.op_check.ops) if self.op_check else None,
            "serving_check": self.serving_check,
            "files": self.files,
            "seconds": round(self.seconds, 2),
        }


def export(
    model: Any,
    base_dir: str,
    model_name: str,
    *,
    examples: Any,
    signatures: Mapping[str, Any] | None = None,
    version: int | None = None,
    target: str | None = DEFAULT_TARGET,
    serving_check: bool = True,
    warmup: bool = True,
    assets_extra: Mapping[str, str | bytes] | None = None,
    metadata: Mapping[str, Any] | None = None,
    chief: bool | None = None,
    atol: float = 1e-5,
) -> ExportResult:
    """Exports `model` to `<base_dir>/<model_name>/<version>/` for TF Serving.

    Steps, all in a temporary sibling directory that TF Serving ignores:

    1. `tf.saved_model.save` with the `signatures` (for a Keras model,
       `serving_default` over its named inputs and outputs) from a root that
       tracks the `tf.Variable`s the signatures read and the resources
       (lookup tables) they use (`serving_root`): each weight is stored
       once, no optimizer state is shipped, and TF Serving's Session loader
       restores every variable.
    2. The op check against `target`: every op of the graph and its function
       library must exist in that model server.
    3. `assets.extra/`: `tf_serving_warmup_requests` (PredictionLogs of the
       `examples`, replayed by TF Serving at load), REST request/response
       examples in both formats, `keras_rec_export.json`, and `assets_extra`.
    4. `check_serving`: a fresh process with TensorFlow only (no Keras, TF
       Hub, TF Text Python or keras_rec; TF Text kernels loaded as libraries)
       loads the SavedModel through TF Serving's Session-based loader and
       through `tf.saved_model.load`; each must reproduce the in-memory
       outputs at two batch sizes, answer every warmup record, and answer
       the REST example requests with the stored responses.

    Then the directory is renamed to the next integer version (or `version`),
    under a lock. A crash at any point leaves no integer directory behind;
    an existing version is never overwritten. To export several models with
    one fresh process for all their checks (a training run's exports),
    `stage_export` each, then `publish_exports` them together.

    Args:
        model: a functional Keras model, or a trackable (`tf.Module`) with
            `signatures` given.
        base_dir: str. Local directory holding one folder per model (what
            TF Serving's `--model_base_path` parent or `models.config` names).
        model_name: str. Folder and TF Serving model name.
        examples: a few real inputs: a dict `{input name: rows}`, or the rows
            for a one-input signature (e.g. a list of strings). At least 2 rows.
        signatures: dict of signature name -> `tf.function` with named
            `input_signature` (or concrete function) returning a dict. Must
            include `"serving_default"`. Default: built from the Keras model.
        version: int or None. None takes the latest version + 1.
        target: str or None. TF Serving build for the op check
            (`keras_rec.serving.available_targets()`); None skips it.
        serving_check: bool. Run step 4.
        warmup: bool. Write the warmup requests.
        assets_extra: dict of file name -> contents written to `assets.extra/`.
        metadata: dict recorded in `assets.extra/keras_rec_export.json`.
        chief: bool or None. Whether this worker writes; None reads `TF_CONFIG`
            (only the chief writes when several workers train together; the
            others save to a temporary directory that is deleted, since saving
            a distributed model involves every worker).
        atol: float. Tolerance of the serving check's comparisons.

    Returns:
        An `ExportResult`.

    Example:

    >>> result = keras_rec.serving.export(
    ...     classifier, "saved_models", "sentiment", examples=["great movie", "meh"]
    ... )
    >>> result.path
    '/.../saved_models/sentiment/1'
    """
    staged = stage_export(
        model,
        base_dir,
        model_name,
        examples=examples,
        signatures=signatures,
        version=version,
        target=target,
        serving_check=serving_check,
        warmup=warmup,
        assets_extra=assets_extra,
        metadata=metadata,
        chief=chief,
        atol=atol,
    )
    return publish_exports([staged])[0]


@dataclasses.dataclass
class StagedExport:
    """An export written to its temporary directory, not yet checked nor published.

    `stage_export` makes it; `publish_exports` checks a list of them in one
    fresh process and publishes each. Its fields are that machinery's.
    """

    model_name: str
    model_dir: str
    version: int | None
    temp_dir: str | None
    op_check: OpCheckResult | None
    files: list[str]
    serving_check: bool
    inputs_by_batch: dict[int, Any]
    expected_by_batch: dict[int, Any]
    atol: float
    seconds: float
    published: bool = False

    @property
    def written(self) -> bool:
        """False on a non-chief worker, which writes nothing."""
        return self.temp_dir is not None

    def discard(self) -> None:
        """Removes the temporary directory of an export that will not be published."""
        if self.temp_dir is not None and not self.published:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def stage_export(
    model: Any,
    base_dir: str,
    model_name: str,
    *,
    examples: Any,
    signatures: Mapping[str, Any] | None = None,
    version: int | None = None,
    target: str | None = DEFAULT_TARGET,
    serving_check: bool = True,
    warmup: bool = True,
    assets_extra: Mapping[str, str | bytes] | None = None,
    metadata: Mapping[str, Any] | None = None,
    chief: bool | None = None,
    atol: float = 1e-5,
) -> StagedExport:
    """Steps 1-3 of `export` (save, op check, `assets.extra/`), in a temporary directory.

    The in-memory outputs the serving check compares with are computed here,
    so `model` may be released before `publish_exports` runs. Takes the
    arguments of `export`. A staged export that is never published must be
    `discard()`ed (`publish_exports` does it when a check fails).
    """
    import tensorflow as tf

    from keras_rec.serving import serving_signature

    start = time.perf_counter()
    path = versioned_dir.model_dir(base_dir, model_name)
    versioned_dir.check_version(path, version)
    exported, signatures = _exported_and_signatures(model, signatures)
    concrete = serving_signature.concrete_signatures(signatures)
    root = serving_root(exported, concrete.values())
    default = concrete[serving_signature.SERVING_DEFAULT]
    specs = serving_signature.input_specs(default)
    inputs = serving_signature.normalize_examples(examples, specs)
    rows = len(next(iter(inputs.values())))
    if rows < 2:
        raise ValueError(
            f"`examples` must have at least 2 rows (the export is checked at two batch "
            f"sizes). Received: {rows}"
        )
    if chief is None:
        from keras_rec.training.tf_config import is_chief

        chief = is_chief()
    if not chief:
        scratch = tempfile.mkdtemp(prefix="keras_rec_worker_export_")
        try:
            tf.saved_model.save(root, scratch, signatures=concrete)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return StagedExport(
            model_name, path, version, None, None, [], False, {}, {}, atol,
            time.perf_counter() - start,
        )  # fmt: skip

    batch_sizes = [rows, 1]
    inputs_by_batch = {size: serving_signature.take_rows(inputs, size) for size in batch_sizes}
    expected_by_batch = {
        size: serving_signature.call_signature(default, batch)
        for size, batch in inputs_by_batch.items()
    }

    temp_dir = versioned_dir.make_temp_dir(path)
    try:
        tf.saved_model.save(root, temp_dir, signatures=concrete)
        op_check = assert_servable(temp_dir, target) if target is not None else None
        files = _write_assets_extra(
            temp_dir, model_name, inputs, expected_by_batch[rows], warmup, assets_extra
        )
        record = {
            "model_name": model_name,
            "signatures": {
                key: _describe_signature(function) for key, function in concrete.items()
            },
            "target": target,
            "tensorflow": tf.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "metadata": dict(metadata or {}),
        }
        metadata_path = os.path.join(temp_dir, METADATA_FILE)
        _write_file(metadata_path, (json.dumps(record, indent=1) + "\n").encode())
        files.append(metadata_path)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return StagedExport(
        model_name, path, version, temp_dir, op_check, files, serving_check, inputs_by_batch,
        expected_by_batch, atol, time.perf_counter() - start,
    )  # fmt: skip


def publish_exports(staged: Sequence[StagedExport]) -> list[ExportResult]:
    """Checks staged exports in one fresh process (step 4 of `export`), then publishes each.

    One TensorFlow start-up serves every check, as a model server holding
    the models would load them. When any check fails, none is published and
    every temporary directory is removed. Each is then renamed to its next
    integer version (or its `version`) under a lock, in order.

    Args:
        staged: `StagedExport`s from `stage_export`.

    Returns:
        One `ExportResult` per staged export, in order (`written=False`, no
        path, for a non-chief worker's).

    Raises:
        ServingCheckError: a SavedModel did not load or answer as in memory.
    """
    start = time.perf_counter()
    pending = [item for item in staged if item.written]
    try:
        checked = [item for item in pending if item.serving_check]
        reports = check_serving_all(
            [
                ServingCheck(item.temp_dir, item.inputs_by_batch, item.expected_by_batch,
                             atol=item.atol, rtol=item.atol)
                for item in checked
            ]  # fmt: skip
        ) if checked else []  # fmt: skip
        reports_by_dir = {item.temp_dir: report for item, report in zip(checked, reports)}
        check_seconds = time.perf_counter() - start
        results = []
        for item in staged:
            if not item.written:
                results.append(
                    ExportResult(item.model_name, None, None, False, None, None, [], item.seconds)
                )
                continue
            version, final_dir = versioned_dir.publish(item.temp_dir, item.version)
            files = [os.path.join(final_dir, os.path.relpath(f, item.temp_dir)) for f in item.files]
            seconds = item.seconds + check_seconds / max(len(checked), 1)
            results.append(
                ExportResult(item.model_name, version, final_dir, True, item.op_check,
                             reports_by_dir.get(item.temp_dir), files, seconds)
            )  # fmt: skip
            item.published = True
            logger.info("Exported %s version %d to %s", item.model_name, version, final_dir)
    except BaseException:
        for item in pending:
            item.discard()
        raise
    return results


def _exported_and_signatures(model: Any, signatures: Mapping[str, Any] | None):
    import keras
    import tensorflow as tf

    from keras_rec.serving.serving_signature import SERVING_DEFAULT, keras_serving_function

    if isinstance(model, keras.Model):
        if signatures is None:
            signatures = {SERVING_DEFAULT: keras_serving_function(model)}
        return model, signatures
    if signatures is None:
        raise ValueError(
            "`signatures` is required unless `model` is a Keras model: pass "
            "{'serving_default': tf.function(..., input_signature=[...])}. "
            f"Received: model of type {type(model).__name__}"
        )
    if not isinstance(model, tf.__internal__.tracking.Trackable):
        raise TypeError(
            "`model` must be a Keras model or a trackable object (`tf.Module`). "
            f"Received: {type(model).__name__}"
        )
    return model, signatures


def _write_assets_extra(temp_dir, model_name, inputs, outputs, warmup, assets_extra) -> list[str]:
    from keras_rec.serving.rest_examples import write_rest_examples
    from keras_rec.serving.warmup_requests import write_warmup_requests

    extra_dir = os.path.join(temp_dir, "assets.extra")
    os.makedirs(extra_dir, exist_ok=True)
    files = write_rest_examples(extra_dir, inputs, outputs)
    if warmup:
        files.append(write_warmup_requests(temp_dir, model_name, inputs))
    for name, contents in (assets_extra or {}).items():
        if os.path.basename(name) != name or name.startswith("."):
            raise ValueError(f"`assets_extra` keys must be plain file names. Received: {name!r}")
        data = contents.encode("utf-8") if isinstance(contents, str) else bytes(contents)
        _write_file(os.path.join(extra_dir, name), data)
        files.append(os.path.join(extra_dir, name))
    return files


def _describe_signature(function) -> dict[str, Any]:
    from keras_rec.serving.serving_signature import input_specs

    def describe(tensor) -> dict[str, Any]:
        shape = tensor.shape.as_list() if tensor.shape.rank is not None else None
        return {"dtype": tensor.dtype.name, "shape": shape}

    return {
        "inputs": {name: describe(spec) for name, spec in input_specs(function).items()},
        "outputs": {name: describe(t) for name, t in function.structured_outputs.items()},
    }


def _write_file(path: str, data: bytes) -> None:
    # Written inside an export's temporary directory, published whole.
    with open(path, "wb") as file:
        file.write(data)
