"""The book builds with Sphinx warnings as errors, and every notebook executes within its budget."""

from __future__ import annotations

import nbformat
import pytest

from booktools.layout import toc_notebooks
from conftest import ROOT, executed_notebooks

pytestmark = pytest.mark.book
NOTEBOOKS = toc_notebooks()


def test_book_builds_without_warnings(built_book):
    tail = "\n".join(built_book.log.splitlines()[-60:])
    assert built_book.returncode == 0, (
        f"jupyter-book build failed (full log in _build/build.log):\n{tail}"
    )
    assert (built_book.html / "index.html").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_executes_within_budget(built_book, path):
    name = str(path.relative_to(ROOT))
    assert name in built_book.times, (
        f"{name} did not execute successfully (see _build/build.log and _build/html/reports)"
    )
    budget = nbformat.read(path, as_version=4).metadata["dyndl"]["quick_budget_s"]
    seconds = built_book.times[name]
    assert seconds <= budget, (
        f"{name} took {seconds:.0f} s, over its quick-mode budget of {budget} s"
    )


def test_no_cell_shows_an_error(built_book):
    """A figure that fails to render prints a traceback without stopping the notebook: catch it
    here."""
    problems = []
    for name, notebook in executed_notebooks().items():
        for index, cell in enumerate(notebook.cells):
            for output in cell.get("outputs", []):
                text = output.get("text", "") if output.get("output_type") == "stream" else ""
                if (
                    output.get("output_type") == "error"
                    or "Traceback (most recent call last)" in text
                ):
                    problems.append(f"{name}, cell {index}: {output.get('ename', text[:200])}")
                for mime, data in output.get("data", {}).items():
                    if mime == "text/plain" and "Traceback (most recent call last)" in str(data):
                        problems.append(f"{name}, cell {index}: traceback in text output")
    assert not problems, "\n".join(problems)


def test_chapters_link_the_functions_they_call_to_the_api_page(built_book):
    """Names a chapter imports from dyndl_lite are links, in its code cells, to their entries on the
    API page."""
    from bs4 import BeautifulSoup

    api_page = built_book.html / "book" / "appendix" / "api.html"
    anchors = {e["id"] for e in BeautifulSoup(api_page.read_text(), "html.parser").select("[id]")}
    for path in NOTEBOOKS:
        page = built_book.html / path.relative_to(ROOT).with_suffix(".html")
        links = BeautifulSoup(page.read_text(), "html.parser").select("div.cell_input a.dyndl-api")
        code = "\n".join(
            c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
        )
        if "from dyndl_lite" in code or "import dyndl_lite" in code:
            assert links, (
                f"{page.name} imports dyndl_lite but links none of its names to the API page"
            )
        for link in links:
            target, _, anchor = link["href"].partition("#")
            assert (page.parent / target).resolve() == api_page.resolve(), (
                f"{page.name}: {link['href']} is not the API page"
            )
            assert anchor in anchors and anchor == link["title"], (
                f"{page.name}: {link['href']} names no entry of the API page"
            )
            assert link.get_text() == anchor.rsplit(".", 1)[-1], (
                f"{page.name}: {link.get_text()!r} links to {anchor}"
            )
