"""The package's layout: the README's Layout section names every folder of keras_rec and
of keras_rec/recommender, each with a docstring saying what it holds; the recommender's
public names still import from `keras_rec.recommender`; its training run stays short."""

from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_rec"
ORCHESTRATOR = PACKAGE / "recommender" / "train_recommender.py"
MAX_ORCHESTRATOR_LINES = 200
MAX_STAGE_FUNCTION_LINES = 70


def _layout_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def _subpackages(folder: pathlib.Path) -> list[str]:
    return sorted(p.parent.name for p in folder.glob("*/__init__.py"))


def test_the_readme_layout_names_every_folder_and_each_has_a_docstring():
    layout = _layout_section()
    for name in _subpackages(PACKAGE):
        assert f"keras_rec/{name}/" in layout, name
    recommender = PACKAGE / "recommender"
    listed = re.findall(r"^  ([a-z_]+)/ ", layout, flags=re.MULTILINE)
    assert sorted(listed) == _subpackages(recommender)
    for name in _subpackages(recommender):
        tree = ast.parse((recommender / name / "__init__.py").read_text())
        assert ast.get_docstring(tree), f"keras_rec/recommender/{name} has no docstring"


def test_recommender_names_import_from_the_package():
    import keras_rec.recommender as recommender

    for name in recommender.__all__:
        assert getattr(recommender, name).__doc__, name


def test_the_training_run_reads_top_to_bottom_in_short_functions():
    assert len(ORCHESTRATOR.read_text().splitlines()) <= MAX_ORCHESTRATOR_LINES
    for path in [ORCHESTRATOR, *sorted((PACKAGE / "recommender" / "stages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                length = body[-1].end_lineno - body[0].lineno + 1
                assert length <= MAX_STAGE_FUNCTION_LINES, (path.name, node.name, length)
