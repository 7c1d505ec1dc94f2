"""The book builds with Sphinx warnings as errors, and every notebook executes (its time is
printed, not asserted: ``make test`` runs the notebooks beside the test workers, so their times
depend on the schedule; the time budgets are checked on an idle machine by ``bench/notebooks.py``);
its Sphinx configuration links code to the API appendix (checked on a small book of its own), and
the PDF's outline is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
import yaml

from booktools.downloads import pdf_outline
from booktools.layout import toc_notebooks
from conftest import ROOT, executed_notebooks

NOTEBOOKS = toc_notebooks()


@pytest.mark.book
def test_book_builds_without_warnings(built_book):
    tail = "\n".join(built_book.log.splitlines()[-60:])
    assert built_book.returncode == 0, (
        f"jupyter-book build failed (full log in _build/build.log):\n{tail}"
    )
    assert (built_book.html / "index.html").exists()


@pytest.mark.book
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_executes(built_book, path):
    name = str(path.relative_to(ROOT))
    assert name in built_book.times, (
        f"{name} did not execute successfully (see _build/build.log and _build/html/reports)"
    )


@pytest.mark.book
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


LINK = "a.sphinx-codeautolink-a"  # the links sphinx-codeautolink writes into code cells


def api_anchors(api_page) -> set[str]:
    """The ids of ``api_page``'s elements: the anchors a link to an entry can name."""
    from bs4 import BeautifulSoup

    return {e["id"] for e in BeautifulSoup(api_page.read_text(), "html.parser").select("[id]")}


def api_links(page, api_page, anchors=None):
    """``(href, anchor, text)`` of every link of ``page``'s code cells, after checking that each
    points at an entry of ``api_page`` (whose :func:`api_anchors` may be passed, parsed once)."""
    from bs4 import BeautifulSoup

    anchors = api_anchors(api_page) if anchors is None else anchors
    found = []
    for link in BeautifulSoup(page.read_text(), "html.parser").select(f"div.cell_input {LINK}"):
        target, _, anchor = link["href"].partition("#")
        assert (page.parent / target).resolve() == api_page.resolve(), (
            f"{page.name}: {link['href']} is not the API page"
        )
        assert anchor in anchors, f"{page.name}: {link['href']} names no entry of the API page"
        if link.get("title"):  # the documented name: an object's anchor, or a module's
            assert anchor in (link["title"], f"module-{link['title']}"), link
        found.append((link["href"], anchor, link.get_text()))
    return found


@pytest.mark.book
def test_chapters_link_the_functions_they_call_to_the_api_page(built_book):
    """Names a chapter imports from dyndl_lite are links, in its code cells, to their entries on the
    API page."""
    api_page = built_book.html / "book" / "appendix" / "api.html"
    anchors = api_anchors(api_page)
    for path in NOTEBOOKS:
        page = built_book.html / path.relative_to(ROOT).with_suffix(".html")
        links = api_links(page, api_page, anchors)
        code = "\n".join(
            c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
        )
        if "from dyndl_lite" in code or "import dyndl_lite" in code:
            assert links, (
                f"{page.name} imports dyndl_lite but links none of its names to the API page"
            )


def test_the_books_sphinx_configuration_links_code_to_the_api_page(tmp_path):
    """A two-page book with _config.yml's Sphinx extensions (dyndl_html aside: it writes the
    book's downloads) and codeautolink settings builds with warnings as errors; a name imported in
    one code cell is a link to its API entry in the next cell (the notebook is one program), also
    beside an exercise and its solution, and docstring examples marked ``+SKIP`` do not break it.
    Seconds, where the whole book takes many minutes."""
    sphinx = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]
    local = [name for name in sphinx["local_extensions"] if name != "dyndl_html"]
    extensions = ["myst_nb", *sphinx["extra_extensions"], *local]
    assert "sphinx_codeautolink" in extensions
    settings = {
        key: value
        for key, value in sphinx["config"].items()
        if key.startswith("codeautolink_") or key == "trim_doctest_flags"
    }
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        f"extensions = {extensions!r}\n"
        + "".join(f"{key} = {value!r}\n" for key, value in settings.items())
        + "myst_enable_extensions = ['colon_fence']\n"
        + "nb_execution_mode = 'off'\nexclude_patterns = ['_build']\n"
    )
    (tmp_path / "index.md").write_text("# Book\n\n```{toctree}\napi\nchapter\n```\n")
    (tmp_path / "api.md").write_text(
        "# API\n\n```{eval-rst}\n.. automodule:: dyndl_lite.solvers\n   :members: odeint\n\n"
        ".. automodule:: dyndl_lite.pretrained\n   :members: locate\n```\n"
    )
    exercise = (
        ":::{exercise}\n:label: ex-one\n\nSolve it.\n:::\n\n"
        ":::{solution} ex-one\n:class: dropdown\n\nLike this.\n:::\n"
    )
    chapter = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Chapter\n\n## A section"),
            nbformat.v4.new_code_cell("import torch\nfrom dyndl_lite.solvers import odeint"),
            nbformat.v4.new_markdown_cell(exercise),
            nbformat.v4.new_code_cell("odeint(lambda t, y: -y, torch.ones(1), torch.ones(2))"),
        ],
        metadata={"language_info": {"name": "python", "pygments_lexer": "ipython3"}},
    )
    nbformat.write(chapter, tmp_path / "chapter.ipynb")
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", ".", "_build"]
    process = subprocess.run(command, cwd=tmp_path, env=environ, capture_output=True, text=True)
    assert process.returncode == 0, process.stderr[-3000:]
    links = api_links(tmp_path / "_build" / "chapter.html", tmp_path / "_build" / "api.html")
    assert ("api.html#dyndl_lite.solvers.odeint", "dyndl_lite.solvers.odeint", "odeint") in links
    assert sum(text == "odeint" for _, _, text in links) == 2, links  # the import and the call


def test_pdf_outline_reads_the_top_level_bookmarks(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(3):
        writer.add_blank_page(width=200, height=200)
    first = writer.add_outline_item(title="Préface", page_number=0)
    writer.add_outline_item(title="a section, not top-level", page_number=1, parent=first)
    writer.add_outline_item(title="Chapter 2", page_number=2)
    path = tmp_path / "book.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    assert pdf_outline(path.read_bytes()) == ["Préface", "Chapter 2"]
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    with path.open("wb") as handle:
        writer.write(handle)
    with pytest.raises(ValueError, match="no outline"):
        pdf_outline(path.read_bytes())
    with pytest.raises(ValueError, match="not a readable PDF"):
        pdf_outline(b"<html>not a pdf</html>")


def test_a_book_build_that_cannot_start_still_writes_a_failed_result(tmp_path, monkeypatch):
    """The tests waiting for the background build must hear of a crash, not wait an hour."""
    from booktools import book_build

    def crash(test_workers: int, parallel: int) -> dict:
        raise OSError("jupyter-book is missing")

    monkeypatch.setattr(book_build, "build", crash)
    assert book_build.main([str(tmp_path / "result.json")]) == 1
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["returncode"] == 1 and "jupyter-book is missing" in result["log"]
