"""Write book/appendix/performance.md from the benchmark results in bench/results/.

Each result file may carry ``results["summary"]``: a list of rows
``{"measure": str, "value": str, "goal": str, "met": bool | None}``, and
``results["figures"]``: PNG files in bench/results/ to show. The page says when
and on what machine each benchmark was measured. The logic is
:mod:`booktools.performance`.

Usage: ``python scripts/render_performance.py``.
"""

from __future__ import annotations

import sys

import repo_root  # noqa: F401  (this checkout's root first on sys.path)

from booktools.performance import PAGE, goal_lines, write_page


def main() -> int:
    """Write the page, then print every ratio against its goal, in one place on the terminal."""
    records = write_page()
    for line in goal_lines(records):
        print(line)
    print(f"wrote {PAGE} from {len(records)} result files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
