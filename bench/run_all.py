"""Run every benchmark, then regenerate the book's Performance appendix.

Usage: ``python -m bench.run_all`` from the repository root (or ``make bench``). Not part of the
tests: timings depend on the machine and on what else it is doing. Each benchmark prints its
ratios and writes ``bench/results/<name>.json``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["throughput", "adjoint", "ot", "denormals", "notebooks"]


def main() -> int:
    """Run the benchmarks of ``ORDER`` one by one (each as ``python -m bench.<name>``)."""
    failed = []
    for name in ORDER:
        print(f"\n=== bench.{name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT).returncode != 0:
            failed.append(name)
    render = [sys.executable, str(ROOT / "scripts" / "render_performance.py")]
    subprocess.run(render, cwd=ROOT, check=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
