"""The lock files (requirements/) agree with pyproject.toml, and this environment is one."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lock():
    spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lock_files_agree_with_pyproject(lock):
    assert lock.lock_problems() == []
    names = sorted(path.stem for path in (ROOT / "requirements").glob("*.txt"))
    assert names == sorted(["all", "runtime", *lock.extras()])
    pins = lock.read_pins(ROOT / "requirements" / "dev.txt")
    assert pins["torch"] == "2.13.0+cpu" and "torchvision" not in pins
    assert pins["tensorflow"].startswith("2.21.")


def test_this_environment_is_the_dev_lock(lock):
    """The suite runs on what `bash scripts/setup.sh dev` installs: exactly requirements/dev.txt."""
    assert lock.installed_problems("dev") == []


def test_a_pyproject_change_without_a_refresh_is_named(lock, tmp_path):
    locks = tmp_path / "requirements"
    shutil.copytree(ROOT / "requirements", locks)
    text = (ROOT / "pyproject.toml").read_text()
    added = tmp_path / "added.toml"
    added.write_text(text.replace('    "scipy",\n', '    "scipy",\n    "polars",\n', 1))
    problems = lock.lock_problems(added, locks)
    assert "requirements/runtime.txt lacks polars (polars)" in problems
    assert any("made from other pyproject.toml dependencies" in p for p in problems)
    narrowed = tmp_path / "narrowed.toml"
    narrowed.write_text(text.replace('"keras>=3.10"', '"keras>=3.10,<3.11"', 1))
    problems = lock.lock_problems(narrowed, locks)
    version = lock.read_pins(locks / "runtime.txt")["keras"]
    outside = f"requirements/runtime.txt pins keras=={version}, outside pyproject.toml's"
    assert any(problem.startswith(outside) for problem in problems)
    (locks / "s3.txt").unlink()
    missing = "requirements/s3.txt is missing: run `.venv/bin/python scripts/lock.py`"
    assert missing in lock.lock_problems(ROOT / "pyproject.toml", locks)


def test_setup_refuses_an_unknown_extra_before_installing():
    env = dict(os.environ, KERAS_REC_VENV=str(pathlib.Path(sys.executable).parents[1]))
    result = subprocess.run(
        ["bash", "scripts/setup.sh", "dev,nonsense"], cwd=ROOT, capture_output=True, text=True,
        env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "no extra 'nonsense'" in result.stderr and "dev" in result.stderr
