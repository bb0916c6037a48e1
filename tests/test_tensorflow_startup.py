"""TensorFlow's native start-up lines: hidden on a plain `keras-rec` run, other lines kept."""

import subprocess
import sys

import line_coverage
from script_runs import keras_rec_command

# Writes to file descriptor 2 as native code does, inside the window and after it.
_CHILD = """
import os
from keras_rec.tensorflow_startup import startup_lines_hidden
with startup_lines_hidden():
    os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. You may see\\n")
    os.write(2, b"W0000 something.cc:1] a real warning\\n")
    os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine\\n")
os.write(2, b"after\\n")
"""


def test_the_window_drops_startup_lines_and_keeps_the_rest():
    result = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "W0000 something.cc:1] a real warning\nafter\n"


def test_a_plain_command_hides_them_and_verbose_shows_them(tmp_path):
    """A command that starts TensorFlow and fails early on a missing file (seconds)."""
    args = ["build-index", "--item-vectors", str(tmp_path / "missing.parquet"),
            "--id-column", "sku", "--output-dir", str(tmp_path), "--model-name", "m"]  # fmt: skip
    # Nothing of the suite's environment (TF_CPP_MIN_LOG_LEVEL among it) but coverage's.
    env = line_coverage.environment()
    env.update(PATH="/usr/bin:/bin", HOME=str(tmp_path), HF_HUB_OFFLINE="1")

    def stderr(*flags, exit_code):
        run = subprocess.run(
            keras_rec_command(*flags, *args), capture_output=True, text=True, env=env, timeout=300
        )
        assert run.returncode == exit_code, run.stderr[-2000:]
        return run.stderr

    plain = stderr(exit_code=2)
    assert (
        plain == f"keras-rec build-index: error: No such file: '{tmp_path / 'missing.parquet'}'\n"
    )
    # --verbose shows them, and raises the error with its traceback.
    verbose = stderr("--verbose", exit_code=1)
    assert "oneDNN custom operations are on" in verbose and "FileNotFoundError" in verbose
