"""Write student versions of the book's notebooks: exercises kept, solutions removed.

Removed: ``{solution}`` blocks in Markdown cells (any fence: ``:::`` or
backticks), everything between ``{solution-start}`` and ``{solution-end}``
(gated solutions that span cells), and code cells tagged ``solution``.

Usage: ``python scripts/make_student_notebooks.py [--out _build/student]``.
The notebooks keep their paths below the output folder.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from normalize_notebooks import ROOT, toc_notebooks  # noqa: E402

OPENING = re.compile(r"^(?P<fence>:{3,}|`{3,})\{solution(?P<gated>-start)?\}")
GATED_END = re.compile(r"^(:{3,}|`{3,})\{solution-end\}")


def strip_markdown(text: str, inside_gate: bool) -> tuple[str, bool]:
    """Remove solution blocks from Markdown text; report whether a gated solution is still open."""
    kept, fence = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if inside_gate:
            if GATED_END.match(stripped):
                inside_gate = False
            continue
        if fence is not None:
            if stripped == fence:
                fence = None
            continue
        match = OPENING.match(stripped)
        if match and match.group("gated"):
            inside_gate = True
            continue
        if match:
            fence = match.group("fence")
            continue
        kept.append(line)
    return "\n".join(kept).strip("\n"), inside_gate


def student_version(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cells, inside_gate = [], False
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source, inside_gate = strip_markdown(cell.source, inside_gate)
            if cell.source.strip():
                cells.append(cell)
        elif not inside_gate and "solution" not in cell.metadata.get("tags", []):
            cells.append(cell)
    notebook.cells = cells
    return notebook


def main() -> int:
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
