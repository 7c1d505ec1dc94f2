"""Write each notebook's measured running time into the notebook itself.

Reads ``_build/execution_times.json`` (written by the last ``make test`` run,
which executes every notebook once in quick mode) and rewrites, in every
notebook of the book, the Markdown cell tagged ``run-time`` (inserted after the
title cell when missing). The full-mode sentence comes from the notebook's
metadata ``dyndl.full_mode`` (what full mode needs, and its time where it was
measured). Run it after a test run and commit the notebooks:
``python scripts/record_run_times.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import nbformat

from dyndl_lite._book.layout import ROOT, toc_notebooks

TAG = "run-time"
TIMES = ROOT / "_build" / "execution_times.json"


def run_time_text(quick_seconds: float, measured_on: str, full_mode: str) -> str:
    """The Markdown of the "Running time" cell."""
    return (
        f"**Running time.** Quick mode: {quick_seconds:.0f} s on a 2-core CPU without a GPU "
        f"(measured by the test suite on {measured_on}). Full mode: {full_mode}"
    )


def main() -> int:
    """Rewrite the "Running time" cell of every notebook that executed in the last test run."""
    if not TIMES.exists():
        print(f"{TIMES} is missing: run `make test` first", file=sys.stderr)
        return 1
    report = json.loads(TIMES.read_text())
    measured_on = dt.date.fromtimestamp(TIMES.stat().st_mtime).isoformat()
    for path in toc_notebooks():
        name = str(path.relative_to(ROOT))
        if name not in report["notebooks"]:
            print(f"no time for {name}: it did not execute in the last run", file=sys.stderr)
            continue
        notebook = nbformat.read(path, as_version=4)
        full_mode = notebook.metadata.get("dyndl", {}).get("full_mode", "not yet measured.")
        text = run_time_text(report["notebooks"][name], measured_on, full_mode)
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
