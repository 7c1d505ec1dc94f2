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


NO_GPU = """## Full recipes on a GPU

Not measured yet: the sessions that built this book were lent no GPU, so there
is no epoch time of a full recipe and no time to reproduce every MNIST table on
one H200 (the goal is under 15 minutes). Every shipped checkpoint was trained on
a 2-core CPU with a short budget, which its JSON record states. On a GPU, retrain
with `python -m dyndl_lite train <experiment> --model <model> --seed <seed>`
(`python -m dyndl_lite list` names them); the chapters pick the new checkpoints up.
"""


def summarize_adjoint(results: dict) -> list[dict]:
    steps, table = results["steps"], results["table"]
    adjoint, backprop = table["adjoint"], table["backprop through solver"]
    growth = adjoint["peak_mib"][-1] / adjoint["peak_mib"][0] - 1
    rows = [
        {"measure": f"peak memory, backprop / adjoint at N = {steps[-1]}",
         "value": f"{backprop['peak_mib'][-1] / adjoint['peak_mib'][-1]:.0f}x", "goal": "", "met": None},
        {"measure": f"adjoint peak memory growth, N = {steps[0]} to {steps[-1]}", "value": f"{growth:+.0%}",
         "goal": "flat within 20% (goal stated for N = 10 to 1,000)", "met": growth <= 0.2},
        {"measure": f"time, adjoint / backprop at N = {steps[-1]}",
         "value": f"{adjoint['seconds'][-1] / backprop['seconds'][-1]:.2f}", "goal": "", "met": None},
    ]
    if "torchdiffeq adjoint" in table:
        rows.append({"measure": f"time, ours / torchdiffeq's adjoint at N = {steps[-1]}",
                     "value": f"{adjoint['seconds'][-1] / table['torchdiffeq adjoint']['seconds'][-1]:.2f}", "goal": "", "met": None})
    return rows


def summarize_throughput(results: dict) -> list[dict]:
    rows = []
    for name, m in results["models"].items():
        rate = m["images_per_s"]
        value = f"{m['ratio']:.2f}x ({rate['ours']:.0f} vs {rate['reference']:.0f} images/s)"
        if "largest_possible_ratio" in m:
            value += f"; largest possible {m['largest_possible_ratio']:.2f}x (compute floor {rate['compute floor']:.0f} images/s)"
        rows.append({"measure": f"{name}: our training step / DataLoader pipeline (batch {results['batch_size']})",
                     "value": value, "goal": "at least 2x", "met": m["ratio"] >= 2})
    return rows


def summarize_ot(results: dict) -> list[dict]:
    rows = []
    limit = results.get("scipy_limit_s")
    for row in results["rows"]:
        if "scipy_s" not in row:
            scipy = "not run (slower than the limit at a smaller m)"
        elif row["scipy_s"] is None:
            scipy = f"did not finish in {limit:.0f} s"
        else:
            scipy = f"{row['scipy_s']:.2f} s"
        value = f"POT {row['pot_s']:.2f} s, SciPy {scipy}"
        if "scipy_over_pot" in row:
            value += f" (SciPy / POT = {row['scipy_over_pot']:.1f})"
            value += ", same permutation" if row["same_permutation"] else ", DIFFERENT permutations"
        rows.append({"measure": f"exact OT map, m = {row['m']:,}, {row['clouds']} clouds in R^{results['dimension']}",
                     "value": value, "goal": "", "met": None})
    mnist = results.get("mnist_ots")
    rows.append({"measure": f"exact OTS on the full {mnist['points']:,}-image MNIST test set ({mnist['checkpoint']})"
                 if mnist else "exact OTS on the full 10,000-image MNIST test set",
                 "value": f"{mnist['total_s']:.0f} s: tracks {mnist['tracks_s']:.1f} s + certified map {mnist['ots_s']:.1f} s "
                          f"(OTS {mnist['ots']:.3f})" if mnist else "not measured",
                 "goal": f"under {mnist['goal_s'] if mnist else 60} s", "met": (mnist["total_s"] < mnist["goal_s"]) if mnist else False})
    return rows


def summarize_notebooks(results: dict) -> list[dict]:
    rows = []
    for name, notebook in results["notebooks"].items():
        value = f"{notebook['seconds']:.0f} s"
        if notebook["slowest_cells"]:
            slowest = notebook["slowest_cells"][0]
            value += f"; slowest cell {slowest['seconds']:.0f} s: `{slowest['first_line'][:60]}`"
        rows.append({"measure": f"`{name}`", "value": value, "goal": "", "met": None})
    total, goal = results["total_seconds"], results["goal_seconds"]
    rows.append({"measure": "whole book, quick mode", "value": f"{total:.0f} s", "goal": f"under {goal} s", "met": total < goal})
    return rows


SUMMARIES = {"adjoint": summarize_adjoint, "throughput": summarize_throughput, "ot": summarize_ot,
             "notebooks": summarize_notebooks}


def summary_rows(name: str, results: dict) -> list[dict]:
    """The rows ``{measure, value, goal, met}`` of one benchmark's results."""
    return SUMMARIES[name](results) if name in SUMMARIES else results.get("summary", [])


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
    rows = summary_rows(name, results)
    if rows:
        lines += ["| measure | value | goal | met |", "|---|---|---|---|"]
        for row in rows:
            met = {True: "yes", False: "no", None: "n/a"}[row.get("met")]
            lines.append(f"| {row['measure']} | {row['value']} | {row.get('goal', '')} | {met} |")
        lines.append("")
    figures = results.get("figures") or [p.name for p in sorted(RESULTS.glob(f"{name}*.png"))]
    for figure in figures:
        FIGURES.mkdir(parents=True, exist_ok=True)
        shutil.copy(RESULTS / figure, FIGURES / figure)
        lines += [f"![{TITLES.get(name, name)}](performance_figures/{figure})", ""]
    return "\n".join(lines)


TABLES = {"chen": "Chen et al., Table 1", "yan-clean": "Yan et al., Table 1", "yan-gaussian": "Yan et al., Table 2",
          "gai": "Gai & Zhang, chapter 10"}


def campaign_section() -> str:
    """The reproduction plan against the shipped checkpoints: per run and per table, measured epoch times."""
    from dyndl_lite import plan, pretrained

    planned = plan.read()
    rows = plan.ledger(planned, pretrained.SHIPPED_DIR)
    shipped = {}
    for row in rows:
        if pretrained.exists(row["name"], pretrained.SHIPPED_DIR):
            shipped[row["name"]] = pretrained.load_record(row["name"], pretrained.SHIPPED_DIR)
    rate = {}  # (experiment, model) -> (seconds per epoch, threads, device) from any shipped record of that network
    for row in rows:
        record = shipped.get(row["name"])
        if record and record.get("seconds_per_epoch") and (row["key"] not in rate or row["status"] == "finished"):
            rate[row["key"]] = (record["seconds_per_epoch"], record.get("threads"), record.get("device"))
    lines = ["## Reproduction campaign", "",
             "The book's reproduction plan (`dyndl_lite/plans/book.toml`, walked by `make reproduce`) against the "
             "checkpoints shipped now. A run is done when a shipped checkpoint ran its planned recipe to the end. "
             "Seconds per epoch are measured: from the run's own record, or else from the shipped record of the same "
             "network (another seed or an earlier, shorter run), with its device and threads.", "",
             "| run | planned epochs | shipped now | s / epoch | measured with |", "|---|---|---|---|---|"]
    for row in rows:
        record = shipped.get(row["name"])
        now = ("done" if row["status"] == "finished" else
               f"older run of {record['epochs_run']} epoch{'s' if record['epochs_run'] != 1 else ''}" if record else "not yet")
        seconds, threads, device = rate.get(row["key"], (None, None, None))
        threads_text = "threads not recorded" if threads is None else f"{threads} thread{'s' if threads != 1 else ''}"
        with_ = f"{device}, {threads_text}" if seconds else ""
        lines.append(f"| `{row['name']}` | {row['epochs']} | {now} | {f'{seconds:.0f}' if seconds else 'n/a'} | {with_} |")
    lines += ["", "| table | runs | done | hours of training, all runs | hours left | core-hours, all runs |",
              "|---|---|---|---|---|---|"]
    for experiment, title in TABLES.items():
        mine = [r for r in rows if r["key"][0] == experiment]
        timed = [r for r in mine if r["key"] in rate]
        hours = sum(r["epochs"] * rate[r["key"]][0] for r in timed) / 3600
        left = sum((r["epochs"] - (r["epochs"] if r["status"] == "finished" else 0)) * rate[r["key"]][0]
                   for r in timed) / 3600
        cores = sum(r["epochs"] * rate[r["key"]][0] * (rate[r["key"]][1] or 1) for r in timed) / 3600
        untimed = len(mine) - len(timed)
        note = f" ({untimed} run{'s' if untimed != 1 else ''} not timed)" if untimed else ""
        done = sum(r["status"] == "finished" for r in mine)
        lines.append(f"| {title} | {len(mine)} | {done} | {hours:.1f}{note} | {left:.1f} | {cores:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    records = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    order = [n for n in TITLES if n in records] + [n for n in records if n not in TITLES]
    body = [INTRO] + [section(records[n]) for n in order]
    if "gpu" not in records:
        body.append(NO_GPU)
    body.append(campaign_section())
    if not records:
        body.append("No benchmark has been run yet.\n")
    PAGE.write_text("\n".join(body).rstrip() + "\n")
    for name in order:  # every ratio and goal, in one place on the terminal
        for row in summary_rows(name, records[name]["results"]):
            met = {True: "met", False: "NOT met", None: ""}[row.get("met")]
            goal = f"  [goal: {row['goal']}, {met}]" if row.get("goal") else ""
            print(f"{name:10s} {row['measure']}: {row['value']}{goal}")
    print(f"wrote {PAGE} from {len(records)} result files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
