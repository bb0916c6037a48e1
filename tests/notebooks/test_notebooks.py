"""The notebooks run top to bottom on small settings, and are stored without outputs."""

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")  # dev dependencies: present in CI
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01_text_classifier", "02_recommender", "03_serving", "04_hub_bridge"]


def test_the_four_notebooks_exist_without_outputs():
    assert [path.stem for path in NOTEBOOKS] == EXPECTED
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (
                    f"{path.name} is stored with outputs: clear them before committing"
                )
        source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        assert 'os.environ.get("KERAS_REC_NOTEBOOK_SMALL"' in source, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_REC_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert images, f"{path.name} drew no plot"
