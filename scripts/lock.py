"""The lock files: exact versions of the runtime and of every extra (CPython 3.11, Linux x86-64).

    .venv/bin/python scripts/lock.py            # refresh requirements/ (uv, from the dev extra)
    .venv/bin/python scripts/lock.py --upgrade  # the same, newest versions allowed
    .venv/bin/python scripts/lock.py --check    # requirements/ agrees with pyproject.toml
    .venv/bin/python scripts/lock.py --check-installed dev  # this environment is that lock

`requirements/all.txt` resolves the runtime and every extra together (`uv pip
compile`); `requirements/runtime.txt` and `requirements/<extra>.txt` (the
runtime plus that extra) are compiled against it, so one package has one
version in every file. `scripts/setup.sh EXTRAS` installs the files of its
extras with `--no-deps`: nothing is resolved at install time.

PyTorch is the CPU wheel (`TORCH`). torchvision is left out: optimum-intel
declares it, nothing here imports it, and the torchvision on PyPI is built for
the CUDA torch (with the CPU torch it breaks `import transformers`).

Each file starts with the digest of pyproject.toml's dependency tables: a
change to them without a refresh fails `--check` (and the test suite).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOCK_DIR = ROOT / "requirements"
PYPROJECT = ROOT / "pyproject.toml"
PYTHON_VERSION = "3.11"
PYTHON_PLATFORM = "x86_64-manylinux_2_28"
TORCH = "torch==2.13.0+cpu"
LEFT_OUT = ("torchvision",)
ALL = "all"
RUNTIME = "runtime"
DIGEST_PREFIX = "# pyproject.toml dependencies sha256: "
REFRESH_COMMAND = ".venv/bin/python scripts/lock.py"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


def project_table(pyproject: pathlib.Path = PYPROJECT) -> dict:
    with open(pyproject, "rb") as file:
        return tomllib.load(file)["project"]


def extras(pyproject: pathlib.Path = PYPROJECT) -> list[str]:
    """The extras of pyproject.toml, in their order."""
    return list(project_table(pyproject).get("optional-dependencies", {}))


def dependency_digest(pyproject: pathlib.Path = PYPROJECT) -> str:
    """sha256 of what the lock is made from: the dependency tables, the Python, the torch pin."""
    project = project_table(pyproject)
    source = {
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "requires-python": project.get("requires-python"),
        "python": [PYTHON_VERSION, PYTHON_PLATFORM],
        "torch": TORCH,
        "left_out": LEFT_OUT,
    }
    return hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()


def lock_path(name: str, lock_dir: pathlib.Path = LOCK_DIR) -> pathlib.Path:
    """`requirements/<name>.txt`: `all`, `runtime` or an extra."""
    return lock_dir / f"{name}.txt"


def read_pins(path: pathlib.Path) -> dict[str, str]:
    """`{canonical name: version}` of a lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- Writing -----------------------------------------------------------------


def _uv_compile(output: pathlib.Path, flags: list[str], upgrade: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        torch_pin = pathlib.Path(scratch) / "torch.txt"
        torch_pin.write_text(TORCH + "\n")
        command = [
            sys.executable, "-m", "uv", "pip", "compile", str(PYPROJECT), *flags,
            "--python-version", PYTHON_VERSION, "--python-platform", PYTHON_PLATFORM,
            "--constraint", str(torch_pin), "--custom-compile-command", REFRESH_COMMAND,
            "--output-file", str(output), "--quiet", "--annotation-style", "line",
        ]  # fmt: skip
        for package in LEFT_OUT:
            command += ["--no-emit-package", package]
        # The CPU torch: from the find-links pip is configured with, or PyTorch's CPU index.
        for links in filter(None, os.environ.get("PIP_FIND_LINKS", "").split()):
            command += ["--find-links", links]
        if os.environ.get("KERAS_REC_TORCH_INDEX"):
            command += ["--extra-index-url", os.environ["KERAS_REC_TORCH_INDEX"]]
            command += ["--index-strategy", "unsafe-best-match"]
        if upgrade:
            command.append("--upgrade")
        subprocess.run(command, check=True, cwd=ROOT)
    text = output.read_text()
    digest = f"{DIGEST_PREFIX}{dependency_digest()}\n"
    output.write_text(digest + "".join(line for line in text.splitlines(True)
                                       if not line.startswith(DIGEST_PREFIX)))  # fmt: skip


def write_locks(upgrade: bool = False) -> None:
    LOCK_DIR.mkdir(exist_ok=True)
    print(f"{ALL}: resolving the runtime and every extra together", flush=True)
    _uv_compile(lock_path(ALL), ["--all-extras"], upgrade)
    constraint = ["--constraint", str(lock_path(ALL))]
    print(f"{RUNTIME}", flush=True)
    _uv_compile(lock_path(RUNTIME), constraint, upgrade=False)
    for extra in extras():
        print(f"{extra}", flush=True)
        _uv_compile(lock_path(extra), ["--extra", extra, *constraint], upgrade=False)


# --- Checking ----------------------------------------------------------------


def lock_problems(
    pyproject: pathlib.Path = PYPROJECT, lock_dir: pathlib.Path = LOCK_DIR
) -> list[str]:
    """Where the lock files and pyproject.toml disagree (empty when they agree)."""
    from packaging.requirements import Requirement

    problems = []
    digest = dependency_digest(pyproject)
    project = project_table(pyproject)
    wanted = {RUNTIME: project.get("dependencies", [])}
    for extra, requirements in project.get("optional-dependencies", {}).items():
        wanted[extra] = project.get("dependencies", []) + requirements
    everything = [r for requirements in wanted.values() for r in requirements]
    environment = {"python_version": PYTHON_VERSION, "sys_platform": "linux",
                   "platform_machine": "x86_64"}  # fmt: skip
    all_path = lock_path(ALL, lock_dir)
    all_pins = read_pins(all_path) if all_path.is_file() else {}
    for name, requirements in [(ALL, everything), *wanted.items()]:
        path = lock_path(name, lock_dir)
        shown = f"requirements/{path.name}"
        if not path.is_file():
            problems.append(f"{shown} is missing: run `{REFRESH_COMMAND}`")
            continue
        first = path.read_text().splitlines()[0]
        if first != f"{DIGEST_PREFIX}{digest}":
            problems.append(
                f"{shown} was made from other pyproject.toml dependencies: run `{REFRESH_COMMAND}`"
            )
        pins = read_pins(path)
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(
                {**environment, "extra": name}
            ):
                continue
            version = pins.get(canonical(requirement.name))
            if version is None:
                problems.append(f"{shown} lacks {requirement.name} ({text})")
            elif not requirement.specifier.contains(version, prereleases=True):
                problems.append(
                    f"{shown} pins {requirement.name}=={version}, outside pyproject.toml's {text!r}"
                )
        for package, version in pins.items():
            if all_pins.get(package, version) != version:
                problems.append(
                    f"{shown} pins {package}=={version} but "
                    f"requirements/all.txt {all_pins[package]}"
                )
            if package in LEFT_OUT:
                problems.append(f"{shown} pins {package}, which is left out")
    if canonical(TORCH.split("==")[0]) in all_pins and all_pins["torch"] != TORCH.split("==")[1]:
        problems.append(f"requirements/all.txt pins torch=={all_pins['torch']}, not {TORCH}")
    return problems


def installed_problems(name: str, lock_dir: pathlib.Path = LOCK_DIR) -> list[str]:
    """Packages of lock `name` that this environment lacks or has at another version."""
    problems = []
    for package, version in sorted(read_pins(lock_path(name, lock_dir)).items()):
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{package}=={version} is not installed")
            continue
        if installed != version:
            problems.append(f"{package} is {installed}, the lock says {version}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upgrade", action="store_true", help="allow newer versions")
    parser.add_argument("--check", action="store_true", help="compare with pyproject.toml")
    parser.add_argument("--check-installed", metavar="EXTRA",
                        help="compare this environment with requirements/EXTRA.txt")  # fmt: skip
    args = parser.parse_args(argv)
    if args.check or args.check_installed:
        problems = lock_problems() if args.check else []
        if args.check_installed:
            problems += installed_problems(args.check_installed)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            print("The lock files agree with pyproject.toml"
                  + (" and this environment." if args.check_installed else "."))  # fmt: skip
        return 1 if problems else 0
    write_locks(upgrade=args.upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
