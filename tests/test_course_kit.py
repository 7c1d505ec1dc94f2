"""The course kit: student notebooks without solutions, exercises in every chapter."""

from __future__ import annotations

import re
import subprocess
import sys

import nbformat
import pytest

from booktools.layout import toc_notebooks
from booktools.student import student_version
from conftest import ROOT

NOTEBOOKS = toc_notebooks()
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def markdown(notebook) -> str:
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")


def test_student_version_removes_every_kind_of_solution():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(
            "# T\n\n:::{exercise}\n:label: e1\nProve it.\n:::\n\n"
            ":::{solution} e1\n:class: dropdown\nBecause.\n:::\nAfter."
        ),
        nbformat.v4.new_markdown_cell("::::{solution} e2\n:::{math}\nx\n:::\n::::"),
        nbformat.v4.new_markdown_cell("```{solution-start} e3\n```\nGated answer."),
        nbformat.v4.new_code_cell("answer = 42"),
        nbformat.v4.new_markdown_cell("```{solution-end}\n```"),
        nbformat.v4.new_code_cell("print('kept')"),
        nbformat.v4.new_code_cell("secret = 1"),
    ]
    notebook.cells[-1].metadata["tags"] = ["solution"]
    student = student_version(notebook)
    text = markdown(student) + "".join(c.source for c in student.cells if c.cell_type == "code")
    assert (
        "{exercise}" in text
        and "Prove it." in text
        and "After." in text
        and "print('kept')" in text
    )
    for hidden in ("Because", "{solution", "Gated answer", "answer = 42", "secret", "{math}"):
        assert hidden not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_has_two_exercises_with_hidden_solutions(path):
    text = markdown(nbformat.read(path, as_version=4))
    exercises = re.findall(r"\{exercise(?:-start)?\}", text)
    solutions = re.findall(
        r"\{solution(?:-start)?\}[^\n]*\n(?::[a-z-]+:[^\n]*\n)*?:class: dropdown", text
    )
    assert len(exercises) >= 2, "at least two exercises per chapter"
    assert len(solutions) >= len(exercises), "each exercise needs a solution hidden in a dropdown"


def test_student_notebooks_are_written_for_the_whole_book(tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "make_student_notebooks.py"),
            "--out",
            str(tmp_path),
        ],
        check=True,
    )
    for path in NOTEBOOKS:
        student = nbformat.read(tmp_path / path.relative_to(ROOT), as_version=4)
        text = markdown(student)
        assert "{solution" not in text
        assert text.count("{exercise") == markdown(nbformat.read(path, as_version=4)).count(
            "{exercise"
        )
