"""Execute notebooks in place of a reader, without touching the sources.

Usage: ``python scripts/run_notebook.py book/part1/01_ode_solvers.ipynb [...]``.
Each notebook runs in a fresh ``python3`` kernel with the repository root's
settings (``DYNDL_MODE`` and ``DYNDL_DATA`` from the environment); the executed
copy is written to ``_build/executed/`` and the wall time is printed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path, timeout: int = 1800) -> float:
    """Execute the notebook at ``path`` in a fresh kernel; write the executed copy; its seconds."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    resources = {"metadata": {"path": str(path.parent)}}
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources=resources).execute()
    elapsed = time.perf_counter() - start
    out = ROOT / "_build" / "executed" / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out)
    return elapsed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        seconds = run(Path(name).resolve())
        print(f"{name}: {seconds:.1f} s (executed copy in _build/executed/)")
