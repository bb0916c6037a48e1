"""The suite's line coverage (tests/coverage_startup): a child process measures itself,
a keras_rec script run by path too, and the session's data file holds both."""

import inspect
import subprocess
import sys

import coverage
import line_coverage

from keras_rec import atomic_io


def _lines_of(path, text):
    """Line numbers of `path` whose text contains `text`."""
    with open(path) as file:
        return {number for number, line in enumerate(file, 1) if text in line}


def test_child_processes_are_measured_and_combined(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {"PATH": "/usr/bin:/bin", line_coverage.DIR_VARIABLE: str(data_dir),
           "PYTHONPATH": line_coverage.STARTUP_DIR}  # fmt: skip
    written = str(tmp_path / "x.bin")
    imported = "import fsspec, keras_rec.atomic_io as a; " \
        f"a.write_bytes_atomic(fsspec.filesystem('file'), {written!r}, b'x')"  # fmt: skip
    script = f"{line_coverage.SOURCE}/serving/fresh_process.py"
    for command in ([sys.executable, "-c", imported], [sys.executable, "-P", script, "--core-ops"]):
        subprocess.run(command, env=env, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    kinds = sorted(path.name.split("-")[0].split(".")[0] for path in data_dir.iterdir())
    assert kinds == ["coverage", "slipcover"], kinds  # coverage.py for the script by path

    data_file = tmp_path / "combined.coverage"
    line_coverage.combine(str(data_dir), str(data_file))
    measured = coverage.Coverage(data_file=str(data_file))
    measured.load()

    def executed(path):
        _, statements, _, missing, _ = measured.analysis2(path)
        return set(statements) - set(missing), set(statements)

    lines, first = inspect.getsourcelines(atomic_io.write_bytes_atomic)
    ran, statements = executed(atomic_io.__file__)
    body = {n for n in range(first, first + len(lines)) if n in statements}
    local = set(range(first, first + 5))  # the local-filesystem branch, first in the body
    assert body & local <= ran, sorted(body & local - ran)
    ran, _ = executed(script)
    assert _lines_of(script, 'if sys.argv[1:] == ["--core-ops"]:') <= ran
    assert _lines_of(script, "return {op.name for op in") <= ran
    # A module no process ran is in the file, every statement missed.
    ran, statements = executed(f"{line_coverage.SOURCE}/serving/sagemaker_package.py")
    assert statements and not ran
