"""Write student versions of the book's notebooks: exercises kept, solutions removed.

Removed: ``{solution}`` blocks in Markdown cells (any fence: ``:::`` or
backticks), everything between ``{solution-start}`` and ``{solution-end}``
(gated solutions that span cells), and code cells tagged ``solution``
(:mod:`booktools.student`).

Usage: ``python scripts/make_student_notebooks.py [--out _build/student]``.
The notebooks keep their paths below the output folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import repo_root  # noqa: F401  (this checkout's root first on sys.path)

from booktools.layout import ROOT, toc_notebooks
from booktools.student import student_version


def main() -> int:
    """Write the student version of every notebook of the book below ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student")
    args = parser.parse_args()
    for path in toc_notebooks():
        notebook = student_version(nbformat.read(path, as_version=4))
        target = args.out / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
