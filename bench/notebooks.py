"""Quick-mode execution time of every notebook, and its slowest cells.

Usage: ``DYNDL_MODE=quick python -m bench.notebooks [--top 3] [--times PATH]``, or
``make run-times``, which runs it and then writes its times into the chapters' "Running time"
cells and the Performance page. Each notebook runs once in a fresh kernel as a reader's would
(:func:`booktools.runtimes.execute`, which records each cell's start and end); the script
prints the time per notebook against the per-chapter goal, the total against the whole book's,
the slowest cells with the first line of their code, and what a kernel that only imports
PyTorch, matplotlib and the package takes (every chapter pays it), and writes the times report that
``scripts/record_run_times.py`` reads (``--times``). Run it on an otherwise idle machine. The
result file keeps the latest whole-book time of every other CPU model measured before, so that
the Performance page shows the goal against the slowest machine as well as this one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import nbformat

from bench.common import RESULTS, save
from booktools.layout import ROOT, toc_notebooks
from booktools.runtimes import execute, timestamp, write_report
from dyndl_lite.config import get_mode
from dyndl_lite.records import cpu_model

GOAL_S = 120  # the whole quick book, seconds of notebook time
CHAPTER_GOAL_S = 60  # each chapter
#: What every chapter imports before it computes anything.
KERNEL_START = "import matplotlib.pyplot as plt\nimport torch\n\nimport dyndl_lite.config"


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """Execution seconds of an executed code cell, from its timing metadata (0 if it has none)."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (timestamp(end) - timestamp(start)).total_seconds()


def verdict(seconds: float, goal: float) -> str:
    """``"goal 60 s: met"`` (under it, as the Performance page judges) or
    ``"goal 60 s: OVER by 3.2 s"``."""
    if seconds < goal:
        return f"goal {goal} s: met"
    return f"goal {goal} s: OVER by {seconds - goal:.1f} s"


def first_line(cell: nbformat.NotebookNode) -> str:
    """The first line of a cell's source ("" for an empty cell)."""
    source = cell.source.strip()
    return source.splitlines()[0] if source else ""


def kernel_start_seconds(repeats: int = 3) -> float:
    """Median seconds, over ``repeats`` fresh kernels, of a notebook that only runs
    :data:`KERNEL_START`, timed as the chapters are (:func:`booktools.runtimes.execute`): the
    part of every chapter's time that no chapter can cut. Chapters that train also import
    ``torch._dynamo`` (``torch.optim`` does, on its first step), and those of Part II import POT."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(KERNEL_START)])
    with tempfile.TemporaryDirectory(prefix="dyndl-kernel-start-") as folder:
        path = Path(folder) / "kernel_start.ipynb"
        nbformat.write(notebook, path)
        return statistics.median(execute(path)[1] for _ in range(repeats))


def main() -> int:
    """Execute every notebook of the book; print the times; write ``results/notebooks.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=3, help="slowest cells to show per notebook")
    parser.add_argument(
        "--times",
        type=Path,
        default=ROOT / "_build" / "execution_times.json",
        help="the times report for scripts/record_run_times.py",
    )
    args = parser.parse_args()
    results = {}
    for path in toc_notebooks():
        notebook, seconds = execute(path, timeout=1800)
        cells = sorted(
            ((cell_seconds(c), first_line(c)) for c in notebook.cells if c.cell_type == "code"),
            reverse=True,
        )
        name = str(path.relative_to(ROOT))
        slowest = [{"seconds": s, "first_line": line} for s, line in cells[: args.top]]
        results[name] = {"seconds": seconds, "slowest_cells": slowest}
        print(f"{seconds:7.1f} s  {name}; {verdict(seconds, CHAPTER_GOAL_S)}")
        for s, line in cells[: args.top]:
            print(f"          {s:6.1f} s  {line[:70]}")
    write_report(args.times, get_mode(), {n: r["seconds"] for n, r in results.items()})
    total = sum(r["seconds"] for r in results.values())
    print(f"{total:7.1f} s  whole book; {verdict(total, GOAL_S)}")
    start = kernel_start_seconds()
    print(
        f"{start:7.1f} s  a fresh kernel importing PyTorch, matplotlib and dyndl_lite: "
        f"{start * len(results):.0f} s of the book's {len(results)} chapters"
    )
    explanation = (
        "Each notebook executed once in a fresh kernel in quick mode, as a reader's would, with "
        "the figure check loaded, timed from asking for the kernel to the last cell's reply "
        "(`bench/notebooks.py`, run by `make run-times`, which also writes these times into the "
        "chapters' Running time cells)."
    )
    save(
        "notebooks",
        {
            "notebooks": results,
            "total_seconds": total,
            "kernel_start_seconds": start,
            "goal_seconds": GOAL_S,
            "chapter_goal_seconds": CHAPTER_GOAL_S,
            "explanation": explanation,
            "other_machines": other_machines(RESULTS / "notebooks.json", cpu_model()),
        },
    )
    return 0


def other_machines(path: Path, cpu: str) -> dict[str, dict]:
    """The latest whole-book time of every other CPU model in the results file at ``path``
    (the goals must hold on the slowest machine measured, so a faster one does not erase it):
    ``{cpu: {"measured_at", "total_seconds", "slowest_chapter_seconds"}}``."""
    if not path.exists():
        return {}
    record = json.loads(path.read_text())
    results = record["results"]
    others = {k: v for k, v in results.get("other_machines", {}).items() if k != cpu}
    if record["machine"]["cpu"] != cpu:
        others[record["machine"]["cpu"]] = {
            "measured_at": record["measured_at"],
            "total_seconds": results["total_seconds"],
            "slowest_chapter_seconds": max(n["seconds"] for n in results["notebooks"].values()),
        }
    return others


if __name__ == "__main__":
    sys.exit(main())
