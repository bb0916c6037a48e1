"""Regenerates the TF Serving op sets in `keras_rec/serving/op_sets/`.

TF Serving cannot be installed here, so what a model server can run is taken
from the releases it is built from:

- the core ops of the TensorFlow release the server is built on: every op
  registered in a process that imports only `tensorflow` (read with
  `TF_GetAllOpList`);
- the TF Text ops the server links in (TF Serving links
  `@org_tensorflow_text//tensorflow_text:ops_lib`, whose parts are the op
  libraries that the `tensorflow-text` wheel ships as
  `tensorflow_text/python/ops/*.so` and `tensorflow_text/python/metrics/*.so`):
  every op those libraries register when loaded with `tf.load_op_library`.

Each environment is a throwaway venv under `--work-dir` with `tensorflow-cpu`
(a smaller download; its registry is that of `tensorflow` minus the internal
`_CopyFromGpuToHost` / `_CopyFromHostToGpu` of GPU builds) and, where needed,
`tensorflow-text` installed with `--no-deps` (it depends on the GPU
`tensorflow` package). A TF Text wheel only loads in the TensorFlow minor
release it was built for, so TF Text 2.12.1 (linked by TF Serving 2.12-2.19)
is listed in a TensorFlow 2.12.1 venv, and the core ops in a 2.19.1 venv.

The versions below are those pinned by the TF Serving release tags
(`tensorflow_serving/workspace.bzl`: `text-2.12.1` for 2.19.x, `text-2.20.0`
for 2.20.0).

Usage:

```
python scripts/generate_serving_op_sets.py                    # every target
python scripts/generate_serving_op_sets.py --target tfserving-2.19 --keep-work-dir
```

Needs network access to a package index (about 750 MB of wheels for all
targets) and a Python with `venv` and `pip` of a version the wheels exist
for (3.11 has wheels for every release used here).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT_DIR = os.path.join(REPO_ROOT, "keras_rec", "serving", "op_sets")
DEFAULT_WORK_DIR = os.path.join(tempfile.gettempdir(), "keras_rec_opsets")


@dataclasses.dataclass(frozen=True)
class Target:
    """One TF Serving build: the releases its op set comes from.

    Args:
        name: str. The target name, also the data file's stem.
        server: str. The servers the op set stands for, for the file header.
        tensorflow: str. The TensorFlow release of the core ops.
        tensorflow_text: str. The TF Text release linked into the server.
        text_tensorflow: str. The TensorFlow release TF Text's op libraries
            load in (the minor release the wheel was built for).
    """

    name: str
    server: str
    tensorflow: str
    tensorflow_text: str
    text_tensorflow: str


TARGETS = {
    target.name: target
    for target in (
        Target(
            name="tfserving-2.19",
            server="TF Serving 2.19.x, SageMaker TF Serving container 2.19",
            tensorflow="2.19.1",
            tensorflow_text="2.12.1",
            text_tensorflow="2.12.1",
        ),
        Target(
            name="tfserving-2.20",
            server="TF Serving 2.20.x",
            tensorflow="2.20.0",
            tensorflow_text="2.20.0",
            text_tensorflow="2.20.0",
        ),
    )
}

# Runs inside a throwaway venv. Prints one JSON object on its last line.
_PROBE = r"""
import glob
import importlib.metadata
import importlib.util
import json
import os
import sys

import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api


def registered_ops():
    buffer = c_api.TF_GetAllOpList()
    try:
        op_list = op_def_pb2.OpList.FromString(c_api.TF_GetBuffer(buffer))
    finally:
        c_api.TF_DeleteBuffer(buffer)
    return {op.name for op in op_list.op}


core = registered_ops()
result = {
    "tensorflow": importlib.metadata.version("tensorflow-cpu"),
    "tensorflow_git_version": tf.version.GIT_VERSION,
    "python": sys.version.split()[0],
    "core_ops": sorted(core),
}
if "--text" in sys.argv:
    # find_spec does not run tensorflow_text/__init__.py (which would import
    # tensorflow_hub and keras): only the op libraries are loaded.
    root = importlib.util.find_spec("tensorflow_text").submodule_search_locations[0]
    libraries = sorted(
        glob.glob(os.path.join(root, "python", "ops", "*.so"))
        + glob.glob(os.path.join(root, "python", "metrics", "*.so"))
    )
    # What each library adds to the registry (`OP_LIST` on the loaded module
    # only exists in newer TensorFlow releases).
    per_library = {}
    before = core
    for library in libraries:
        tf.load_op_library(library)
        after = registered_ops()
        per_library[os.path.relpath(library, root)] = sorted(after - before)
        before = after
    text = before - core
    result["tensorflow_text"] = importlib.metadata.version("tensorflow-text")
    result["text_libraries"] = per_library
    result["text_ops"] = sorted(text)
print(json.dumps(result))
"""


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def _venv_python(venv: str) -> str:
    return os.path.join(venv, "bin", "python")


def _make_venv(work_dir: str, tensorflow: str, tensorflow_text: str | None) -> str:
    """Creates (or reuses) a venv with `tensorflow-cpu` and maybe `tensorflow-text`."""
    name = f"tf-{tensorflow}" + (f"-text-{tensorflow_text}" if tensorflow_text else "")
    venv = os.path.join(work_dir, name)
    done = os.path.join(venv, ".keras_rec_installed")
    if os.path.exists(done):
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", venv])
    pip = [_venv_python(venv), "-m", "pip", "install", "--quiet", "--only-binary=:all:"]
    _run(pip + [f"tensorflow-cpu=={tensorflow}"])
    if tensorflow_text:
        # tensorflow-text requires `tensorflow`, which would pull the GPU wheel
        # next to tensorflow-cpu: its op libraries need nothing else.
        _run(pip + ["--no-deps", f"tensorflow-text=={tensorflow_text}"])
    open(done, "w").close()
    return venv


def _probe(venv: str, text: bool) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    command = [_venv_python(venv), "-c", _PROBE] + (["--text"] if text else [])
    print("+", _venv_python(venv), "-c <probe>", "--text" if text else "", flush=True)
    completed = subprocess.run(command, capture_output=True, text=True, env=env)
    if completed.returncode:
        raise RuntimeError(f"Listing ops in {venv} failed:\n{completed.stderr[-5000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _check_versions(probe: dict, tensorflow: str, tensorflow_text: str | None) -> None:
    if probe["tensorflow"] != tensorflow:
        raise RuntimeError(f"Expected tensorflow-cpu=={tensorflow}, got {probe['tensorflow']}")
    if tensorflow_text and probe["tensorflow_text"] != tensorflow_text:
        raise RuntimeError(
            f"Expected tensorflow-text=={tensorflow_text}, got {probe['tensorflow_text']}"
        )


def generate(target: Target, work_dir: str, output_dir: str) -> str:
    """Lists a target's ops in throwaway venvs and writes `<output_dir>/<name>.txt`.

    Args:
        target: Target. The TF Serving build to list.
        work_dir: str. Where the venvs are made (and reused if already there).
        output_dir: str. Where the op set file is written.

    Returns:
        The path of the written file.
    """
    text_venv = _make_venv(work_dir, target.text_tensorflow, target.tensorflow_text)
    text_probe = _probe(text_venv, text=True)
    _check_versions(text_probe, target.text_tensorflow, target.tensorflow_text)
    if target.tensorflow == target.text_tensorflow:
        core_probe = text_probe
    else:
        core_venv = _make_venv(work_dir, target.tensorflow, None)
        core_probe = _probe(core_venv, text=False)
        _check_versions(core_probe, target.tensorflow, None)

    core_ops = set(core_probe["core_ops"])
    text_ops = set(text_probe["text_ops"])
    if len(core_ops) < 1000 or not text_ops:
        raise RuntimeError(
            f"{target.name}: suspiciously few ops ({len(core_ops)} core, "
            f"{len(text_ops)} TF Text); not writing the file."
        )
    overlap = core_ops & text_ops
    if overlap:
        raise RuntimeError(f"{target.name}: TF Text ops also in core: {sorted(overlap)}")

    today = datetime.date.today().isoformat()
    header = [
        f"{target.name}: ops that {target.server} can run.",
        f"Generated by scripts/generate_serving_op_sets.py on {today}"
        f" (Python {core_probe['python']}, {platform.machine()}).",
        "One op name per line, sorted; lines starting with # are comments.",
        f"tensorflow: {core_probe['tensorflow']}",
        f"tensorflow_git_version: {core_probe['tensorflow_git_version']}",
        f"core_ops: {len(core_ops)} (registered after `import tensorflow`,"
        f" pip package tensorflow-cpu=={core_probe['tensorflow']})",
        f"tensorflow_text: {text_probe['tensorflow_text']}",
        f"text_ops: {len(text_ops)} (from {len(text_probe['text_libraries'])} op libraries"
        f" of tensorflow-text=={text_probe['tensorflow_text']}, loaded in"
        f" tensorflow-cpu=={text_probe['tensorflow']})",
    ]
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"{target.name}.txt")
    with open(path, "w") as file:
        file.writelines(f"# {line}\n" for line in header)
        file.writelines(f"{op}\n" for op in sorted(core_ops | text_ops))
    print(f"Wrote {path}: {len(core_ops)} core + {len(text_ops)} TF Text ops.")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target",
        action="append",
        choices=sorted(TARGETS),
        help="Target to (re)generate; repeat for several. Default: all.",
    )
    parser.add_argument("--work-dir", default=DEFAULT_WORK_DIR, help="Where the venvs go.")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR)
    parser.add_argument(
        "--keep-work-dir",
        action="store_true",
        help="Keep the venvs (about 2 GB each) to rerun without reinstalling.",
    )
    args = parser.parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    try:
        for name in args.target or sorted(TARGETS):
            generate(TARGETS[name], args.work_dir, args.output_dir)
    finally:
        if not args.keep_work_dir:
            shutil.rmtree(args.work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
