"""Write each notebook's measured running times into the notebook itself.

Reads ``_build/execution_times.json``, every notebook once in quick mode (``make run-times``
writes it with ``python -m bench.notebooks`` on an otherwise idle machine, then runs this
script), and, when present, ``_build/full/execution_times.json`` (written by ``make book-full``,
every notebook in full mode), and rewrites, in every notebook of the book, the Markdown cell
tagged ``run-time`` (inserted after the title cell when missing). What full mode does comes from
the notebook's metadata ``dyndl.full_mode``; its time is the measured one, or "not yet timed".
A report written by a ``make test`` run (its build shares the CPU) is refused: those times are
the test suite's, not a reader's. Commit the notebooks afterwards.
"""

from __future__ import annotations

import sys

import nbformat
import repo_root  # noqa: F401  (this checkout's root first on sys.path)

from booktools.layout import ROOT, toc_notebooks
from booktools.runtimes import measured, run_time_text

TAG = "run-time"
TIMES = ROOT / "_build" / "execution_times.json"
FULL_TIMES = ROOT / "_build" / "full" / "execution_times.json"


def main() -> int:
    """Rewrite the "Running time" cell of every notebook that executed in the last test run."""
    quick = measured(TIMES)
    if quick is None:
        print(f"{TIMES} is missing: run `make run-times`", file=sys.stderr)
        return 1
    if "test_workers" in quick[0]:  # written by the test suite's build (booktools.book_build)
        print(
            f"{TIMES} was written by a test run, whose kernels share the CPU with each other and "
            "the tests; time the chapters alone with `make run-times` on an otherwise idle machine",
            file=sys.stderr,
        )
        return 1
    full = measured(FULL_TIMES)
    for path in toc_notebooks():
        name = str(path.relative_to(ROOT))
        if name not in quick[0]["notebooks"]:
            print(f"no time for {name}: it did not execute in the last run", file=sys.stderr)
            continue
        notebook = nbformat.read(path, as_version=4)
        full_mode = notebook.metadata.get("dyndl", {}).get("full_mode", "the papers' protocols.")
        text = run_time_text(name, quick, full, full_mode)
        cell = next((c for c in notebook.cells if TAG in c.metadata.get("tags", [])), None)
        if cell is None:
            cell = nbformat.v4.new_markdown_cell(text)
            cell.metadata["tags"] = [TAG]
            cell.pop("id", None)
            notebook.cells.insert(1, cell)
        cell.source = text
        nbformat.write(notebook, path)
        print(f"{name}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
