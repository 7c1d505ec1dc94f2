"""Quick-mode execution time of every notebook, and its slowest cells.

Usage: ``DYNDL_MODE=quick python bench/notebooks.py [--top 3]``. Each notebook
runs once in a fresh kernel (nbclient records each cell's start and end);
the script prints the time per notebook, the total against the 10-minute goal,
and the slowest cells with the first line of their code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402
from normalize_notebooks import ROOT, toc_notebooks  # noqa: E402

GOAL_S = 600


def cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=3, help="slowest cells to show per notebook")
    args = parser.parse_args()
    results = {}
    for path in toc_notebooks():
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(notebook, timeout=1800, kernel_name="python3", record_timing=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - start
        cells = sorted(((cell_seconds(c), c.source.strip().splitlines()[0] if c.source.strip() else "")
                        for c in notebook.cells if c.cell_type == "code"), reverse=True)
        name = str(path.relative_to(ROOT))
        results[name] = {"seconds": seconds, "slowest_cells": [{"seconds": s, "first_line": line} for s, line in cells[: args.top]]}
        print(f"{seconds:7.1f} s  {name}")
        for s, line in cells[: args.top]:
            print(f"          {s:6.1f} s  {line[:70]}")
    total = sum(r["seconds"] for r in results.values())
    print(f"{total:7.1f} s  whole book; goal {GOAL_S} s: ratio {total / GOAL_S:.2f} of the goal")
    save("notebooks", {"notebooks": results, "total_seconds": total, "goal_seconds": GOAL_S,
                       "explanation": "Each notebook executed once in a fresh kernel in quick mode (`bench/notebooks.py`)."})
    return 0


if __name__ == "__main__":
    sys.exit(main())
