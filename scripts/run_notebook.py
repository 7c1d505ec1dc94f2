"""Execute notebooks in place of a reader, without touching the sources.

Usage::

    python scripts/run_notebook.py book/part1/01_ode_solvers.ipynb [...]
    python scripts/run_notebook.py --all --out _build/full --times _build/full/execution_times.json

Each notebook runs in a fresh ``python3`` kernel with the repository root's settings
(``DYNDL_MODE`` and ``DYNDL_DATA`` from the environment) and the figure check loaded
(:mod:`booktools.figure_check`: a figure without labels, title or legend fails its cell); the
executed copy is written to ``--out`` (default ``_build/executed/``) and the wall time is
printed. ``--all`` runs every chapter of ``_toc.yml`` in order; ``--times`` writes the seconds
of each, with the mode and the machine (CPU count, GPU), as JSON, rewritten after every notebook
so that an interrupted run keeps the times of the notebooks it finished (``make book-full`` uses
it for the full-mode times that ``scripts/record_run_times.py`` writes into the chapters).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
import repo_root  # noqa: F401  (this checkout's root first on sys.path)

from booktools.layout import ROOT, toc_notebooks
from booktools.runtimes import execute, write_report
from dyndl_lite.config import get_mode


def run(path: Path, out: Path) -> float:
    """Execute the notebook at ``path`` (:func:`booktools.runtimes.execute`); write the executed
    copy into ``out``; return its seconds."""
    notebook, seconds = execute(path)
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out / path.name)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files (or --all)")
    parser.add_argument("--all", action="store_true", help="every chapter of _toc.yml, in order")
    parser.add_argument("--out", default=str(ROOT / "_build" / "executed"), help="executed copies")
    parser.add_argument("--times", default=None, help="write the seconds of each notebook here")
    args = parser.parse_args()
    paths = toc_notebooks() if args.all else [Path(name).resolve() for name in args.notebooks]
    if not paths:
        parser.error("name notebooks to run, or pass --all")
    times = {}
    for path in paths:
        seconds = run(path, Path(args.out))
        name = str(path.relative_to(ROOT))
        times[name] = seconds
        print(f"{name}: {seconds:.1f} s (executed copy in {args.out})", flush=True)
        if args.times:  # after every notebook, so that an interrupted long run keeps its times
            write_report(Path(args.times), get_mode(), times)
    if args.times:
        print(f"{sum(times.values()):.1f} s in all; times in {args.times}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
