"""The pytest side of line_coverage.py: `--no-cov`, the data directory, the report.

The session (the controller, under pytest-xdist) makes the data directory and
puts it, with this directory on `PYTHONPATH`, into the environment every
process it starts inherits; at the end it combines the data into
`$COVERAGE_FILE` (default `.coverage` in the rootdir) and prints coverage.py's
report of keras_rec, fully covered modules left out.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile

import line_coverage
import pytest

_WORKER_VARIABLE = "PYTEST_XDIST_WORKER"
_data_dir_key = pytest.StashKey[str]()  # set in the session that made the data directory
_report_key = pytest.StashKey[str]()


def pytest_addoption(parser):
    parser.addoption(
        "--no-cov",
        action="store_true",
        default=False,
        help="do not measure line coverage of keras_rec (measured by default)",
    )


def pytest_configure(config):
    if config.getoption("--no-cov"):
        os.environ.pop(line_coverage.DIR_VARIABLE, None)
        return
    if _WORKER_VARIABLE not in os.environ and not os.environ.get(line_coverage.DIR_VARIABLE):
        data_dir = tempfile.mkdtemp(prefix="keras_rec_coverage_")
        config.stash[_data_dir_key] = data_dir
        os.environ[line_coverage.DIR_VARIABLE] = data_dir
        paths = [line_coverage.STARTUP_DIR, os.environ.get("PYTHONPATH", "")]
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    line_coverage.start()  # a worker started it at start-up; with -n 0 it starts here


@pytest.hookimpl(tryfirst=True)  # a worker writes before it reports to the controller
def pytest_sessionfinish(session):
    config = session.config
    line_coverage.save()
    data_dir = config.stash.get(_data_dir_key, None)
    if data_dir is None:
        return
    data_file = os.environ.get("COVERAGE_FILE") or os.path.join(config.rootpath, ".coverage")
    line_coverage.combine(data_dir, data_file)
    shutil.rmtree(data_dir, ignore_errors=True)
    import coverage

    report = io.StringIO()
    measured = coverage.Coverage(data_file=data_file)
    measured.load()
    total = measured.report(file=report, skip_covered=True)
    config.stash[_report_key] = report.getvalue() + f"line coverage of keras_rec: {total:.1f}%\n"


def pytest_terminal_summary(terminalreporter, config):
    report = config.stash.get(_report_key, None)
    if report:
        terminalreporter.write_sep("-", "line coverage of keras_rec (SlipCover, coverage.py)")
        terminalreporter.write(report)
