"""Downloads for readers, written into the built site (``_build/html/downloads/``).

- ``executed-notebooks.zip``: every chapter as executed by the last book build
  (its jupyter-cache, ``_build/.jupyter_cache``), outputs included.
- ``student-notebooks.zip``: every chapter with its solutions removed
  (``scripts/make_student_notebooks.py``).
- ``dynamic-view-of-deep-learning.pdf`` (``--pdf``): the whole book as one PDF,
  made offline: the article of every page of ``_toc.yml``, in book order, is put
  on one HTML page beside the built book (``print.html``, same styles and local
  MathJax), which headless Chromium prints with a bookmark per heading.

The two archives are cheap and written at the end of every HTML build (by
``book/_ext/dyndl_html.py``); the PDF takes a browser and runs with ``make pdf``.
The logic is :mod:`booktools.downloads`.

Usage: ``python scripts/make_downloads.py [--pdf] [--html _build/html]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import repo_root  # noqa: F401  (this checkout's root first on sys.path)

from booktools.downloads import pdf_outline, write_notebook_zips, write_pdf
from booktools.layout import ROOT


def main() -> int:
    """Write the notebook archives (and with ``--pdf`` the PDF) into the built book."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache")
    parser.add_argument("--executed", type=Path, default=ROOT / "_build" / "jupyter_execute")
    parser.add_argument(
        "--pdf", action="store_true", help="also print the whole book to one PDF (needs chromium)"
    )
    args = parser.parse_args()
    if not (args.html / "index.html").exists():
        parser.error(f"{args.html} holds no built book: run make book first")
    for path in write_notebook_zips(args.html, args.cache, args.executed):
        print(f"wrote {path}")
    if args.pdf:
        path = write_pdf(args.html)
        print(f"wrote {path}: {len(pdf_outline(path.read_bytes()))} top-level bookmarks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
