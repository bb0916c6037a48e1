"""Line coverage of keras_rec in every Python process of a test session.

The suite runs keras_rec in its pytest-xdist workers and in the processes
they start: `keras-rec` commands, fresh serving processes, training workers,
notebook kernels. Each measures itself and writes its executed lines to the
session's data directory (`DIR_VARIABLE`); the session combines them into
one coverage.py data file, which coverage.py reports (statements and
percentages are coverage.py's).

Measuring is SlipCover's: it instruments the bytecode of keras_rec's modules
as they are imported, so the code of TensorFlow, Keras and the rest runs
untouched. coverage.py's tracer, on Python 3.11, slows every line of every
module: about a third more time for the same tests (README, "Tests"). A
script of keras_rec run by path (`python -P keras_rec/serving/fresh_process.py`)
is not imported, so SlipCover cannot see it: such a process uses coverage.py.

- `start()`: measures this process when the session asked for it (from
  `sitecustomize.py` at interpreter start-up, or from the pytest plugin).
- `save()`: writes what this process executed (at exit, and when a pytest
  worker's session ends).
- `combine(data_dir, data_file)`: every process's lines, one coverage.py file.
- `environment()`: the variables a child process needs to be measured.
"""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import sys
import uuid

DIR_VARIABLE = "KERAS_REC_COVERAGE_DIR"
STARTUP_DIR = str(pathlib.Path(__file__).resolve().parent)
SOURCE = str(pathlib.Path(__file__).resolve().parents[2] / "keras_rec")
_SLIPCOVER_PREFIX = "slipcover-"
_COVERAGE_PY_BASENAME = "coverage"

_measuring = None  # ("slipcover", Slipcover) or ("coverage.py", Coverage)


def start() -> bool:
    """Measures this process if `DIR_VARIABLE` names a data directory; True if measuring."""
    global _measuring
    if _measuring is not None:
        return True
    data_dir = os.environ.get(DIR_VARIABLE)
    if not data_dir:
        return False
    main = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0].endswith(".py") else ""
    if main.startswith(SOURCE + os.sep):
        import coverage

        tracer = coverage.Coverage(
            data_file=os.path.join(data_dir, _COVERAGE_PY_BASENAME),
            data_suffix=True,
            source=[SOURCE],
            config_file=False,
        )
        tracer.start()
        _measuring = ("coverage.py", tracer)
    else:
        import slipcover

        instrumenter = slipcover.Slipcover()
        slipcover.ImportManager(instrumenter, slipcover.FileMatcher(sources=[SOURCE])).__enter__()
        _measuring = ("slipcover", instrumenter)
    atexit.register(save)
    return True


def save() -> None:
    """Writes the lines this process executed so far into the data directory."""
    if _measuring is None:
        return
    kind, collector = _measuring
    data_dir = os.environ.get(DIR_VARIABLE)
    if kind == "coverage.py":  # at exit only
        collector.stop()
        collector.save()
        return
    if not data_dir or not os.path.isdir(data_dir):
        return  # the session has combined and removed it
    files = collector.get_coverage()["files"]
    executed = {
        os.path.realpath(name): report["executed_lines"]
        for name, report in files.items()
        if report["executed_lines"]
    }
    name = f"{_SLIPCOVER_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    partial = os.path.join(data_dir, f".{name}.partial")
    try:
        with open(partial, "w") as file:
            json.dump(executed, file)
        os.replace(partial, os.path.join(data_dir, name))
    except FileNotFoundError:
        pass  # the session removed the directory meanwhile


def combine(data_dir: str, data_file: str) -> None:
    """Every process's executed lines from `data_dir` as the coverage.py file `data_file`.

    Every module of keras_rec is in it, those never executed with no lines, so
    they count as missed.
    """
    import coverage

    combined = coverage.CoverageData(basename=data_file)
    combined.erase()
    directory = pathlib.Path(data_dir)
    lines: dict[str, set[int]] = {}
    for path in sorted(directory.glob(f"{_SLIPCOVER_PREFIX}*.json")):
        for name, executed in json.loads(path.read_text()).items():
            lines.setdefault(name, set()).update(executed)
    combined.add_lines(lines)
    for path in sorted(directory.glob(f"{_COVERAGE_PY_BASENAME}.*")):
        traced = coverage.CoverageData(basename=str(path))
        traced.read()
        combined.update(traced)
    combined.touch_files(str(path.resolve()) for path in pathlib.Path(SOURCE).rglob("*.py"))
    combined.write()


def environment() -> dict[str, str]:
    """The variables that make a child process measure itself (empty when not measuring)."""
    if not os.environ.get(DIR_VARIABLE):
        return {}
    return {DIR_VARIABLE: os.environ[DIR_VARIABLE], "PYTHONPATH": os.environ["PYTHONPATH"]}
