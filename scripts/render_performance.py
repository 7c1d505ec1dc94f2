"""Write book/appendix/performance.md from the benchmark results in bench/results/.

Each result file may carry ``results["summary"]``: a list of rows
``{"measure": str, "value": str, "goal": str, "met": bool | None}``, and
``results["figures"]``: PNG files in bench/results/ to show. The page says when
and on what machine each benchmark was measured.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "book" / "appendix" / "performance.md"
FIGURES = ROOT / "book" / "appendix" / "performance_figures"

TITLES = {
    "throughput": "Training throughput",
    "adjoint": "Adjoint method: memory and time",
    "ot": "Exact optimal transport",
    "gpu": "Full recipes on a GPU",
    "notebooks": "Executing the book",
}
INTRO = """(performance)=
# Performance

Every figure on this page was measured by the benchmark suite (`make bench`,
which runs `bench/run_all.py`) and written here by
`scripts/render_performance.py`; nothing is typed by hand. Benchmarks are not
part of the tests, because timings depend on the machine and on what else it
is doing. Each section says when and where it was measured.
"""


def machine_line(machine: dict) -> str:
    gpu = machine.get("gpu") or "no GPU"
    return (f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('memory_gib')} GiB, {gpu}; "
            f"torch {machine.get('torch')} with {machine.get('torch_threads')} threads")


def section(record: dict) -> str:
    name = record["benchmark"]
    results = record["results"]
    lines = [f"## {TITLES.get(name, name)}", "",
             f"Measured {record['measured_at']} on: {machine_line(record['machine'])}.", ""]
    if results.get("explanation"):
        lines += [results["explanation"], ""]
    rows = results.get("summary", [])
    if rows:
        lines += ["| measure | value | goal | met |", "|---|---|---|---|"]
        for row in rows:
            met = {True: "yes", False: "no", None: "n/a"}[row.get("met")]
            lines.append(f"| {row['measure']} | {row['value']} | {row.get('goal', '')} | {met} |")
        lines.append("")
    for figure in results.get("figures", []):
        FIGURES.mkdir(parents=True, exist_ok=True)
        shutil.copy(RESULTS / figure, FIGURES / figure)
        lines += [f"![{TITLES.get(name, name)}](performance_figures/{figure})", ""]
    return "\n".join(lines)


def main() -> int:
    records = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    order = [n for n in TITLES if n in records] + [n for n in records if n not in TITLES]
    body = [INTRO] + [section(records[n]) for n in order]
    if not records:
        body.append("No benchmark has been run yet.\n")
    PAGE.write_text("\n".join(body).rstrip() + "\n")
    print(f"wrote {PAGE} from {len(records)} result files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
