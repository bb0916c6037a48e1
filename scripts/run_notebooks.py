"""Runs the notebooks top to bottom, times each, and writes the README's figures.

    python scripts/run_notebooks.py                 # full settings, figures into notebooks/figures/
    python scripts/run_notebooks.py --small --figures-dir /tmp/figures   # small settings
    python scripts/run_notebooks.py --notebooks 02_recommender
    python scripts/run_notebooks.py --small --model PATH   # another sentence-transformer

Each notebook runs in a fresh Jupyter kernel (nbclient), in a scratch
working directory, with `KERAS_REC_NOTEBOOK_SMALL` set from `--small` and
`KERAS_REC_NOTEBOOK_MODEL` from `--model` (the notebooks' `MODEL`: None, the
embedded all-MiniLM-L6-v2, unless given; the test suite gives a tiny one). A
code cell tagged `figure:<name>` (cell metadata `tags`) is a README figure:
its PNG output is written to `<figures-dir>/<name>.png`, so the README
shows exactly what the notebook shows. A cell that raises stops the run
with the notebook's name and the error, before any figure is written.
`--executed-dir` keeps the executed notebooks (with outputs).

Prints a line per notebook and ends with one JSON line: seconds per
notebook, images each drew, the figures written, and whether each ran in
under `TARGET_SECONDS` (the full-settings target on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
FIGURES_DIR = NOTEBOOK_DIR / "figures"
FIGURE_TAG = "figure:"
TARGET_SECONDS = 600
SMALL_SETTINGS_VARIABLE = "KERAS_REC_NOTEBOOK_SMALL"
MODEL_VARIABLE = "KERAS_REC_NOTEBOOK_MODEL"


class NotebookRunError(RuntimeError):
    """Raised when a notebook cell fails, or a figure cell draws no PNG."""


def figure_name(cell) -> str | None:
    """The `<name>` of a cell tagged `figure:<name>`, or None."""
    names = [
        t[len(FIGURE_TAG) :] for t in cell.metadata.get("tags", []) if t.startswith(FIGURE_TAG)
    ]
    if len(names) > 1:
        raise NotebookRunError(f"A cell has several figure tags: {names}")
    return names[0] if names else None


def run_notebook(
    path: pathlib.Path, small: bool, timeout: int, kernel: str = "python3", model: str | None = None
):
    """Executes `path` in a fresh kernel; returns `(executed notebook, seconds)`."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    kernel_env = {
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **os.environ,
        SMALL_SETTINGS_VARIABLE: "1" if small else "0",
        MODEL_VARIABLE: model or "",
    }
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="keras_rec_notebook_run_") as scratch:
            client = nbclient.NotebookClient(
                notebook,
                timeout=timeout,
                kernel_name=kernel,
                resources={"metadata": {"path": scratch}},
            )
            # The notebooks write their runs and exports under `tempfile.mkdtemp()`:
            # here that is inside `scratch`, removed with it.
            client.execute(env={**kernel_env, "TMPDIR": scratch})
    except nbclient.exceptions.CellExecutionError as error:
        raise NotebookRunError(f"{path.name} failed:\n{error}") from None
    return notebook, time.perf_counter() - start


def figure_pngs(notebook, notebook_name: str) -> dict[str, bytes]:
    """`{figure name: PNG bytes}` of the executed cells tagged `figure:<name>`."""
    figures = {}
    for cell in notebook.cells:
        name = figure_name(cell) if cell.cell_type == "code" else None
        if name is None:
            continue
        pngs = [
            out["data"]["image/png"] for out in cell.outputs if "image/png" in out.get("data", {})
        ]
        if len(pngs) != 1:
            raise NotebookRunError(
                f"The cell tagged {FIGURE_TAG}{name} in {notebook_name} drew {len(pngs)} PNG "
                "images; a figure cell must draw exactly one."
            )
        figures[name] = base64.b64decode(pngs[0])
    return figures


def image_count(notebook) -> int:
    """PNG images among the outputs of `notebook`'s code cells."""
    return sum(
        _has_png(out) for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
    )


def _has_png(output) -> bool:
    return "image/png" in output.get("data", {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="small settings (as the tests run)")
    parser.add_argument(
        "--notebooks", nargs="+", metavar="NAME", help="notebook names (default: all)"
    )
    parser.add_argument("--figures-dir", default=str(FIGURES_DIR), help="where figures go")
    parser.add_argument("--executed-dir", help="also keep the executed notebooks here")
    parser.add_argument("--timeout", type=int, default=TARGET_SECONDS, help="seconds per cell")
    parser.add_argument(
        "--model", help="sentence-transformer path or id (default: the embedded all-MiniLM-L6-v2)"
    )
    args = parser.parse_args(argv)

    available = {path.stem: path for path in sorted(NOTEBOOK_DIR.glob("*.ipynb"))}
    names = args.notebooks or list(available)
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"unknown notebooks {unknown}; available: {sorted(available)}")

    from fsspec.implementations.local import LocalFileSystem

    from keras_rec.atomic_io import write_bytes_atomic

    local = LocalFileSystem()
    results, figures = {}, {}
    for name in names:
        notebook, seconds = run_notebook(
            available[name], args.small, args.timeout, model=args.model
        )
        drawn = figure_pngs(notebook, name)
        for figure, png in drawn.items():
            if figure in figures:
                raise NotebookRunError(f"Two cells are tagged {FIGURE_TAG}{figure}.")
            figures[figure] = png
        results[name] = {
            "seconds": round(seconds, 1),
            "images": image_count(notebook),
            "figures": sorted(drawn),
            "under_target": seconds < TARGET_SECONDS,
        }
        if args.executed_dir:
            import nbformat

            out = pathlib.Path(args.executed_dir) / f"{name}.ipynb"
            write_bytes_atomic(local, str(out), nbformat.writes(notebook).encode("utf-8"))
        print(f"{name}: {seconds:.0f} s, {results[name]['images']} images, figures {sorted(drawn)}")
        sys.stdout.flush()

    figures_dir = pathlib.Path(args.figures_dir)
    for figure, png in sorted(figures.items()):
        write_bytes_atomic(local, str(figures_dir / f"{figure}.png"), png)
    print(
        json.dumps(
            {
                "settings": "small" if args.small else "full",
                "model": args.model,
                "target_seconds": TARGET_SECONDS,
                "notebooks": results,
                "figures": {name: len(png) for name, png in sorted(figures.items())},
                "figures_dir": str(figures_dir),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
