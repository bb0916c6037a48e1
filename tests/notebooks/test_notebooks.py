"""The notebooks: stored without outputs, their imports installed by the `notebooks`
extra, and run top to bottom on small settings by `scripts/run_notebooks.py`, which
also writes the README's figures."""

import ast
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

nbformat = pytest.importorskip("nbformat")  # dev dependencies: present in CI
pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01_text_classifier", "02_recommender", "03_serving", "04_hub_bridge"]
README_FIGURES = ["confusion_matrix", "item_embedding_map", "recall_at_k", "training_curves"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_FIGURE_BYTES = 200_000


def _run_notebooks_module():
    spec = importlib.util.spec_from_file_location(
        "run_notebooks", ROOT / "scripts/run_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code(path) -> list:
    notebook = nbformat.read(path, as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_four_notebooks_exist_without_outputs():
    assert [path.stem for path in NOTEBOOKS] == EXPECTED
    for path in NOTEBOOKS:
        cells = _code(path)
        for cell in cells:
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} is stored with outputs: clear them before committing"
            )
        assert 'os.environ.get("KERAS_REC_NOTEBOOK_SMALL"' in cells[0].source, path.name
        assert 'os.environ.get("KERAS_REC_NOTEBOOK_MODEL")' in cells[0].source, path.name
        assert "parameters" in cells[0].metadata.get("tags", []), path.name


def test_each_readme_figure_is_one_tagged_cell_and_a_small_committed_png():
    run_notebooks = _run_notebooks_module()
    tagged = [
        run_notebooks.figure_name(cell)
        for path in NOTEBOOKS
        for cell in _code(path)
        if run_notebooks.figure_name(cell)
    ]
    assert sorted(tagged) == README_FIGURES
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"!\[[^\]]+\]\(notebooks/figures/([a-z_]+)\.png\)", readme)
    assert sorted(shown) == README_FIGURES
    for name in README_FIGURES:
        png = (ROOT / "notebooks" / "figures" / f"{name}.png").read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) < MAX_FIGURE_BYTES, name


def _imported_modules(path) -> set[str]:
    names = set()
    for cell in _code(path):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_notebook_imports_are_direct_requirements_or_in_the_notebooks_extra():
    """Relying on a transitive dependency breaks when it drops it: list each one."""
    requirements = [Requirement(r) for r in importlib.metadata.requires("keras_rec")]
    allowed = {
        canonicalize_name(r.name)
        for r in requirements
        if r.marker is None or r.marker.evaluate({"extra": "notebooks"})
    }
    assert {"jupyterlab", "ipykernel", "nbclient", "nbformat"} <= allowed
    distributions = importlib.metadata.packages_distributions()
    for path in NOTEBOOKS:
        for module in sorted(_imported_modules(path) - set(sys.stdlib_module_names)):
            if module == "keras_rec":
                continue
            owners = {canonicalize_name(d) for d in distributions.get(module, [])}
            assert owners & allowed, f"{path.name} imports {module} ({owners}), not required"


def test_figure_cells_must_draw_exactly_one_png():
    run_notebooks = _run_notebooks_module()
    cell = nbformat.v4.new_code_cell("print(1)", metadata={"tags": ["figure:empty"]})
    cell.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    with pytest.raises(run_notebooks.NotebookRunError, match="figure:empty in demo drew 0 PNG"):
        run_notebooks.figure_pngs(notebook, "demo")


def _kernel_environment() -> dict[str, str]:
    """The notebooks' environment: inline plots (the kernels' line coverage counts too)."""
    return {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


@pytest.mark.parametrize("name", EXPECTED)
def test_run_notebooks_script_runs_each_notebook_on_small_settings(name, tiny_model_path, tmp_path):
    """The README's regeneration command on small settings and the tiny encoder, one
    notebook a test: it runs and draws its figures. The notebooks' MiniLM figures are
    the full-settings run's (`scripts/run_notebooks.py`)."""
    run_notebooks = _run_notebooks_module()
    figures = tmp_path / "figures"
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    result = subprocess.run(
        [sys.executable, "scripts/run_notebooks.py", "--small", "--notebooks", name,
         "--model", tiny_model_path,
         "--figures-dir", str(figures), "--executed-dir", str(tmp_path / "executed")],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
        env={**_kernel_environment(), "TMPDIR": str(temp_dir)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    # The notebook's runs and exports (hundreds of MB at full settings) went with its scratch.
    assert os.listdir(temp_dir) == [], f"{name} left {os.listdir(temp_dir)} in TMPDIR"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["settings"] == "small" and report["model"] == tiny_model_path
    assert list(report["notebooks"]) == [name]
    assert report["notebooks"][name]["images"] >= 1, f"{name} drew no plot"
    executed = nbformat.read(tmp_path / "executed" / f"{name}.ipynb", as_version=4)
    outputs = [out for cell in executed.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"], name
    tagged = sorted(
        run_notebooks.figure_name(cell)
        for cell in _code(NOTEBOOK_DIR / f"{name}.ipynb")
        if run_notebooks.figure_name(cell)
    )
    assert sorted(report["figures"]) == tagged
    for figure in tagged:
        png = (figures / f"{figure}.png").read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) == report["figures"][figure]
    written = sorted(os.listdir(figures)) if figures.exists() else []
    assert written == [f"{figure}.png" for figure in tagged]
