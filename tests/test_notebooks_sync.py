"""The notebooks' py:percent sources and their committed .ipynb pairs say the same thing.

Each notebook is authored as ``notebooks/0N_name.py`` and paired with ``0N_name.ipynb`` by
``notebooks/jupytext.toml``; ``jupytext --sync notebooks/*.py`` brings a pair back in step after
either side was edited. Only cell types and sources are compared (outputs and metadata are not
content), and the committed .ipynb must carry no outputs: they stay out of git.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))
IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb"))
SYNC_HINT = "run `jupytext --sync notebooks/*.py` and commit both files"


def cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_every_notebook_has_a_source() -> None:
    assert SOURCES, "no py:percent notebook sources found"
    assert {p.stem for p in IPYNBS} == {p.stem for p in SOURCES}


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.name)
def test_paired_by_config(path: Path) -> None:
    """jupytext finds notebooks/jupytext.toml and pairs this notebook with its py:percent file."""
    config = jupytext.config.load_jupytext_config(str(path))
    assert config is not None, "no jupytext configuration found for the notebooks"
    assert config.default_formats(str(path)) == "ipynb,py:percent"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_pair_in_sync(source: Path) -> None:
    paired = source.with_suffix(".ipynb")
    assert paired.is_file(), f"{source.name} has no paired {paired.name}: {SYNC_HINT}"
    text = cells(jupytext.read(source, fmt="py:percent"))
    notebook = cells(jupytext.read(paired))
    for index, (from_text, from_notebook) in enumerate(zip(text, notebook, strict=False)):
        assert from_text == from_notebook, f"{source.name} cell {index} differs: {SYNC_HINT}"
    assert len(text) == len(notebook), f"{source.name}: cell counts differ: {SYNC_HINT}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_parameters_cell_first(source: Path) -> None:
    """One parameters cell (papermill convention) is the first code cell."""
    code = [c for c in jupytext.read(source, fmt="py:percent").cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert code and tagged == [code[0]]
    assert "HYPERDAS_TL_PROFILE" in code[0].source


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has a count"
