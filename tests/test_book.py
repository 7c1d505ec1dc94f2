"""The book builds with Sphinx warnings as errors, and every notebook executes within its budget."""

from __future__ import annotations

import nbformat
import pytest

from conftest import ROOT, executed_notebooks
from normalize_notebooks import toc_notebooks

pytestmark = pytest.mark.book
NOTEBOOKS = toc_notebooks()


def test_book_builds_without_warnings(built_book):
    tail = "\n".join(built_book.log.splitlines()[-60:])
    assert built_book.returncode == 0, f"jupyter-book build failed (full log in _build/build.log):\n{tail}"
    assert (built_book.html / "index.html").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_executes_within_budget(built_book, path):
    name = str(path.relative_to(ROOT))
    assert name in built_book.times, f"{name} did not execute successfully (see _build/build.log and _build/html/reports)"
    budget = nbformat.read(path, as_version=4).metadata["dyndl"]["quick_budget_s"]
    seconds = built_book.times[name]
    assert seconds <= budget, f"{name} took {seconds:.0f} s, over its quick-mode budget of {budget} s"


def test_no_cell_shows_an_error(built_book):
    """A figure that fails to render prints a traceback without stopping the notebook: catch it here."""
    problems = []
    for name, notebook in executed_notebooks().items():
        for index, cell in enumerate(notebook.cells):
            for output in cell.get("outputs", []):
                text = output.get("text", "") if output.get("output_type") == "stream" else ""
                if output.get("output_type") == "error" or "Traceback (most recent call last)" in text:
                    problems.append(f"{name}, cell {index}: {output.get('ename', text[:200])}")
                for mime, data in output.get("data", {}).items():
                    if mime == "text/plain" and "Traceback (most recent call last)" in str(data):
                        problems.append(f"{name}, cell {index}: traceback in text output")
    assert not problems, "\n".join(problems)
