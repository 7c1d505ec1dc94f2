"""Run every benchmark, then regenerate the book's Performance appendix.

Usage: ``python bench/run_all.py`` (or ``make bench``). Not part of the tests:
timings depend on the machine and on what else it is doing. Each benchmark
prints its ratios and writes ``bench/results/<name>.json``; a benchmark that
needs hardware this machine lacks (a GPU) says so and is skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ORDER = ["throughput", "adjoint", "ot", "gpu", "notebooks"]


def main() -> int:
    scripts = [HERE / f"{name}.py" for name in ORDER if (HERE / f"{name}.py").exists()]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=ROOT).returncode != 0:
            failed.append(script.name)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "render_performance.py")], cwd=ROOT, check=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
