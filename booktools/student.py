"""Student versions of the book's notebooks: exercises kept, solutions removed.

Removed: ``{solution}`` blocks in Markdown cells (any fence: ``:::`` or backticks), everything
between ``{solution-start}`` and ``{solution-end}`` (gated solutions that span cells), and code
cells tagged ``solution``.
"""

from __future__ import annotations

import re

import nbformat

OPENING = re.compile(r"^(?P<fence>:{3,}|`{3,})\{solution(?P<gated>-start)?\}")
GATED_END = re.compile(r"^(:{3,}|`{3,})\{solution-end\}")


def strip_markdown(text: str, inside_gate: bool) -> tuple[str, bool]:
    """Remove solution blocks from Markdown text; report whether a gated solution is still open.

    Args:
        text: the source of one Markdown cell.
        inside_gate: whether a ``{solution-start}`` of an earlier cell is still open.

    Returns:
        The text without its solutions, and whether a gated solution is open after it.
    """
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
    """``notebook`` without its solutions (changed in place, returned); emptied cells dropped."""
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
