"""Hiding TensorFlow's C++ start-up lines on a plain command line.

`import tensorflow` prints, from native code and twice (two of its shared
libraries log on their own), lines such as "oneDNN custom operations are
on ..." and "Could not find cuda drivers ...". They come through absl's
logging before it is initialized, so `TF_CPP_MIN_LOG_LEVEL` does not hide
them (tensorflow/tensorflow#100442). `hide_tensorflow_startup_lines()`
sends file descriptor 2 to a temporary file while TensorFlow first loads,
then writes back every line that is not one of `STARTUP_LINES`: warnings
and errors of the same moment still reach the user, start-up chatter does
not. A crash while loading still prints its Python traceback
(`faulthandler` writes to the real stderr meanwhile).

`keras-rec` calls it unless `--verbose` is given, and sets
`HIDE_STARTUP_VARIABLE` so that processes it starts which import keras_rec
(Beam workers) hide the same lines (`keras_rec/__init__.py`).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys

# Set to "1" by `keras-rec` without --verbose; inherited by the processes it starts.
HIDE_STARTUP_VARIABLE = "KERAS_REC_HIDE_TF_STARTUP"

# The native lines of a TensorFlow start-up on a machine without a GPU.
STARTUP_LINES = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers on your machine"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
    r"|computation placer already registered"
)


@contextlib.contextmanager
def startup_lines_hidden():
    """Within the block, native writes to stderr are held; after it, all but `STARTUP_LINES`."""
    import faulthandler  # here: `import keras_rec` imports this module and stays light
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    held = tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    crash_log = os.fdopen(os.dup(saved), "w")
    was_enabled = faulthandler.is_enabled()
    faulthandler.enable(file=crash_log)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        faulthandler.disable()
        if was_enabled:
            faulthandler.enable()
        crash_log.close()
        held.seek(0)
        kept = [
            line
            for line in held.read().decode(errors="replace").splitlines(keepends=True)
            if not STARTUP_LINES.search(line)
        ]
        held.close()
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Loads `tensorflow`, the first time it is imported, inside `startup_lines_hidden`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one TensorFlow start-up per process
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            with startup_lines_hidden():
                load(module)

        spec.loader.exec_module = exec_module
        return spec


def hide_tensorflow_startup_lines() -> None:
    """Hides TensorFlow's native start-up lines when this process first imports it.

    Does nothing when TensorFlow is already imported, or the hook installed.
    """
    if "tensorflow" in sys.modules:
        return
    if any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowFinder())
