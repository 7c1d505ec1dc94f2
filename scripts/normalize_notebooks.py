"""Put every notebook of the book in its committed form.

* the first code cell is the guarded Colab setup, installing the package from
  the one repository URL in ``_config.yml`` (inserted or rewritten);
* outputs and execution counts are stripped;
* the kernel is ``python3``.

Usage: ``python scripts/normalize_notebooks.py [NOTEBOOK ...]`` (default: every
notebook listed in ``_toc.yml``). ``--check`` only reports notebooks that would change.
The logic is :mod:`booktools.normalize`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import repo_root  # noqa: F401  (this checkout's root first on sys.path)

from booktools.layout import toc_notebooks
from booktools.normalize import normalize


def main() -> int:
    """Normalize the notebooks given (default: the book's); exit status 1 if ``--check`` fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    changed = []
    for path in args.notebooks or toc_notebooks():
        text = path.read_text()
        notebook = normalize(nbformat.reads(text, as_version=4))
        new_text = nbformat.writes(notebook) + "\n"
        if new_text != text:
            changed.append(path)
            if not args.check:
                path.write_text(new_text)
    for path in changed:
        print(("would change " if args.check else "normalized ") + str(path))
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
