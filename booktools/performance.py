"""The book's Performance appendix, rendered from the benchmark results in ``bench/results/``.

Each result file (written by ``bench/common.py``) says when and on what machine its benchmark was
measured. A benchmark with a summary function here gets its rows ``{"measure", "value", "goal",
"met"}`` computed from its numbers; any other may carry them as ``results["summary"]``.
``results["figures"]`` names PNG files in the results folder to show (default: ``<name>*.png``).
The page ends with the reproduction campaign: the plan ``dyndl_lite/plans/book.toml`` against the
shipped checkpoints.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from booktools.layout import ROOT
from dyndl_lite import plan, pretrained

RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "book" / "appendix" / "performance.md"
FIGURES = ROOT / "book" / "appendix" / "performance_figures"

Row = dict[str, Any]  # {"measure": str, "value": str, "goal": str, "met": bool | None}

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
a 2-core CPU, most with a compressed budget (Gai & Zhang's networks, cheap enough,
with the full recipe); each JSON record states its budget. On a GPU, retrain
with `python -m dyndl_lite train <experiment> --model <model> --seed <seed>`
(`python -m dyndl_lite list` names them); the chapters pick the new checkpoints up.
"""


def summarize_adjoint(results: dict) -> list[Row]:
    """Memory and time of the adjoint against backpropagation (``bench/adjoint.py``)."""
    steps, table = results["steps"], results["table"]
    adjoint, backprop = table["adjoint"], table["backprop through solver"]
    growth = adjoint["peak_mib"][-1] / adjoint["peak_mib"][0] - 1
    memory_ratio = backprop["peak_mib"][-1] / adjoint["peak_mib"][-1]
    time_ratio = adjoint["seconds"][-1] / backprop["seconds"][-1]
    rows = [
        {
            "measure": f"peak memory, backprop / adjoint at N = {steps[-1]}",
            "value": f"{memory_ratio:.0f}x",
            "goal": "",
            "met": None,
        },
        {
            "measure": f"adjoint peak memory growth, N = {steps[0]} to {steps[-1]}",
            "value": f"{growth:+.0%}",
            "goal": "flat within 20% (goal stated for N = 10 to 1,000)",
            "met": growth <= 0.2,
        },
        {
            "measure": f"time, adjoint / backprop at N = {steps[-1]}",
            "value": f"{time_ratio:.2f}",
            "goal": "",
            "met": None,
        },
    ]
    if "torchdiffeq adjoint" in table:
        theirs = adjoint["seconds"][-1] / table["torchdiffeq adjoint"]["seconds"][-1]
        rows.append(
            {
                "measure": f"time, ours / torchdiffeq's adjoint at N = {steps[-1]}",
                "value": f"{theirs:.2f}",
                "goal": "",
                "met": None,
            }
        )
    return rows


def summarize_throughput(results: dict) -> list[Row]:
    """Images per second of our training loop against a DataLoader (``bench/throughput.py``)."""
    rows = []
    for name, m in results["models"].items():
        rate = m["images_per_s"]
        value = f"{m['ratio']:.2f}x ({rate['ours']:.0f} vs {rate['reference']:.0f} images/s)"
        if "largest_possible_ratio" in m:
            value += (
                f"; largest possible {m['largest_possible_ratio']:.2f}x "
                f"(compute floor {rate['compute floor']:.0f} images/s)"
            )
        measure = f"{name}: our training step / DataLoader pipeline (batch {results['batch_size']})"
        rows.append(
            {"measure": measure, "value": value, "goal": "at least 2x", "met": m["ratio"] >= 2}
        )
    return rows


def summarize_ot(results: dict) -> list[Row]:
    """Seconds of the exact OT map, POT against SciPy, and the MNIST OTS goal (``bench/ot.py``)."""
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
        measure = (
            f"exact OT map, m = {row['m']:,}, {row['clouds']} clouds in R^{results['dimension']}"
        )
        rows.append({"measure": measure, "value": value, "goal": "", "met": None})
    mnist = results.get("mnist_ots")
    if mnist:
        rows.append(
            {
                "measure": (
                    f"exact OTS on the full {mnist['points']:,}-image MNIST test set "
                    f"({mnist['checkpoint']})"
                ),
                "value": (
                    f"{mnist['total_s']:.0f} s: tracks {mnist['tracks_s']:.1f} s + certified map "
                    f"{mnist['ots_s']:.1f} s (OTS {mnist['ots']:.3f})"
                ),
                "goal": f"under {mnist['goal_s']} s",
                "met": mnist["total_s"] < mnist["goal_s"],
            }
        )
    else:
        rows.append(
            {
                "measure": "exact OTS on the full 10,000-image MNIST test set",
                "value": "not measured",
                "goal": "under 60 s",
                "met": False,
            }
        )
    return rows


def summarize_notebooks(results: dict) -> list[Row]:
    """Quick-mode seconds of every notebook and of the whole book (``bench/notebooks.py``)."""
    rows = []
    chapter_goal = results.get("chapter_goal_seconds")  # results before it had none
    for name, notebook in results["notebooks"].items():
        value = f"{notebook['seconds']:.0f} s"
        if notebook["slowest_cells"]:
            slowest = notebook["slowest_cells"][0]
            value += f"; slowest cell {slowest['seconds']:.0f} s: `{slowest['first_line'][:60]}`"
        goal, met = "", None
        if chapter_goal is not None:
            goal, met = f"under {chapter_goal} s", notebook["seconds"] < chapter_goal
        rows.append({"measure": f"`{name}`", "value": value, "goal": goal, "met": met})
    total, goal = results["total_seconds"], results["goal_seconds"]
    if "kernel_start_seconds" in results:  # results before it had none
        start, chapters = results["kernel_start_seconds"], len(results["notebooks"])
        rows.append(
            {
                "measure": "a fresh kernel importing PyTorch, matplotlib and dyndl_lite, "
                "as every chapter starts",
                "value": f"{start:.1f} s; {plural(chapters, 'chapter')}: "
                f"{start * chapters:.0f} s of the {total:.0f} s",
                "goal": "",
                "met": None,
            }
        )
    rows.append(
        {
            "measure": "whole book, quick mode",
            "value": f"{total:.0f} s",
            "goal": f"under {goal} s",
            "met": total < goal,
        }
    )
    for cpu, other in results.get("other_machines", {}).items():  # earlier, on other CPUs
        rows.append(
            {
                "measure": f"whole book, quick mode, on {cpu} ({other['measured_at'][:10]})",
                "value": f"{other['total_seconds']:.0f} s; slowest chapter "
                f"{other['slowest_chapter_seconds']:.0f} s",
                "goal": f"under {goal} s",
                "met": other["total_seconds"] < goal,
            }
        )
    return rows


SUMMARIES: dict[str, Callable[[dict], list[Row]]] = {
    "adjoint": summarize_adjoint,
    "throughput": summarize_throughput,
    "ot": summarize_ot,
    "notebooks": summarize_notebooks,
}


def summary_rows(name: str, results: dict) -> list[Row]:
    """The rows ``{measure, value, goal, met}`` of one benchmark's results."""
    return SUMMARIES[name](results) if name in SUMMARIES else results.get("summary", [])


def machine_line(machine: dict) -> str:
    """One line naming the machine a benchmark ran on (as ``bench/common.py`` describes it)."""
    gpu = machine.get("gpu") or "no GPU"
    return (
        f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('memory_gib')} GiB, "
        f"{gpu}; torch {machine.get('torch')} with {machine.get('torch_threads')} threads"
    )


def section(record: dict, results_dir: Path = RESULTS, figures_dir: Path = FIGURES) -> str:
    """The Markdown section of one benchmark record; its figures are copied to ``figures_dir``."""
    name = record["benchmark"]
    results = record["results"]
    lines = [
        f"## {TITLES.get(name, name)}",
        "",
        f"Measured {record['measured_at']} on: {machine_line(record['machine'])}.",
        "",
    ]
    if results.get("explanation"):
        lines += [results["explanation"], ""]
    rows = summary_rows(name, results)
    if rows:
        lines += ["| measure | value | goal | met |", "|---|---|---|---|"]
        for row in rows:
            met = {True: "yes", False: "no", None: "n/a"}[row.get("met")]
            lines.append(f"| {row['measure']} | {row['value']} | {row.get('goal', '')} | {met} |")
        lines.append("")
    figures = results.get("figures") or [p.name for p in sorted(results_dir.glob(f"{name}*.png"))]
    for figure in figures:
        figures_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(results_dir / figure, figures_dir / figure)
        lines += [f"![{TITLES.get(name, name)}](performance_figures/{figure})", ""]
    return "\n".join(lines)


TABLES = {
    "chen": "Chen et al., Table 1",
    "yan-clean": "Yan et al., Table 1",
    "yan-gaussian": "Yan et al., Table 2",
    "gai": "Gai & Zhang, chapter 10",
}
CAMPAIGN_INTRO = (
    "The book's reproduction plan (`dyndl_lite/plans/book.toml`, walked by `make reproduce`) "
    "against the checkpoints shipped now. A run is done when a shipped checkpoint ran its planned "
    "recipe to the end. Seconds per epoch are measured: from the run's own record, or else from "
    "the shipped record of the same network (another seed or an earlier, shorter run), with its "
    "device and threads."
)


def plural(count: int, noun: str) -> str:
    """``"1 epoch"``, ``"2 epochs"``."""
    return f"{count} {noun}{'s' if count != 1 else ''}"


def campaign_section() -> str:
    """The reproduction plan against the shipped checkpoints: per run and per table."""
    planned = plan.read()
    rows = plan.ledger(planned, pretrained.SHIPPED_DIR)
    shipped = {}
    for row in rows:
        if pretrained.exists(row["name"], pretrained.SHIPPED_DIR):
            shipped[row["name"]] = pretrained.load_record(row["name"], pretrained.SHIPPED_DIR)
    # (experiment, model) -> (seconds per epoch, threads, device), from any shipped record of it
    rate = {}
    for row in rows:
        record = shipped.get(row["name"])
        newer = row["key"] not in rate or row["status"] == "finished"
        if record and record.get("seconds_per_epoch") and newer:
            rate[row["key"]] = (
                record["seconds_per_epoch"],
                record.get("threads"),
                record.get("device"),
            )
    lines = [
        "## Reproduction campaign",
        "",
        CAMPAIGN_INTRO,
        "",
        "| run | planned epochs | shipped now | s / epoch | measured with |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        record = shipped.get(row["name"])
        if row["status"] == "finished":
            now = "done"
        elif record:
            now = f"older run of {plural(record['epochs_run'], 'epoch')}"
        else:
            now = "not yet"
        seconds, threads, device = rate.get(row["key"], (None, None, None))
        threads_text = "threads not recorded" if threads is None else plural(threads, "thread")
        with_ = f"{device}, {threads_text}" if seconds else ""
        per_epoch = f"{seconds:.0f}" if seconds else "n/a"
        lines.append(f"| `{row['name']}` | {row['epochs']} | {now} | {per_epoch} | {with_} |")
    lines += [
        "",
        "| table | runs | done | hours of training, all runs | hours left | core-hours, all runs |",
        "|---|---|---|---|---|---|",
    ]
    for experiment, title in TABLES.items():
        mine = [r for r in rows if r["key"][0] == experiment]
        timed = [r for r in mine if r["key"] in rate]
        hours = sum(r["epochs"] * rate[r["key"]][0] for r in timed) / 3600
        left = (
            sum(
                (r["epochs"] - (r["epochs"] if r["status"] == "finished" else 0))
                * rate[r["key"]][0]
                for r in timed
            )
            / 3600
        )
        cores = (
            sum(r["epochs"] * rate[r["key"]][0] * (rate[r["key"]][1] or 1) for r in timed) / 3600
        )
        untimed = len(mine) - len(timed)
        note = f" ({plural(untimed, 'run')} not timed)" if untimed else ""
        # an untimed run that is not finished is time left that no record can put a number on
        untimed_left = sum(r["key"] not in rate and r["status"] != "finished" for r in mine)
        left_note = f" (and {plural(untimed_left, 'run')} not timed)" if untimed_left else ""
        done = sum(r["status"] == "finished" for r in mine)
        lines.append(
            f"| {title} | {len(mine)} | {done} | {hours:.1f}{note} | {left:.1f}{left_note} "
            f"| {cores:.1f} |"
        )
    return "\n".join(lines) + "\n"


def read_results(results_dir: Path = RESULTS) -> dict[str, dict]:
    """Every benchmark record in ``results_dir``, by benchmark name, in page order."""
    records = {p.stem: json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))}
    order = [n for n in TITLES if n in records] + [n for n in records if n not in TITLES]
    return {name: records[name] for name in order}


def write_page(
    results_dir: Path = RESULTS, page: Path = PAGE, figures_dir: Path = FIGURES
) -> dict[str, dict]:
    """Write the Performance appendix to ``page`` from the records in ``results_dir``.

    Figures are copied to ``figures_dir``. Returns the records, by benchmark name, in page order.
    """
    records = read_results(results_dir)
    body = [INTRO] + [section(record, results_dir, figures_dir) for record in records.values()]
    if "gpu" not in records:
        body.append(NO_GPU)
    body.append(campaign_section())
    if not records:
        body.append("No benchmark has been run yet.\n")
    page.write_text("\n".join(body).rstrip() + "\n")
    return records


def goal_lines(records: dict[str, dict]) -> list[str]:
    """Every measure of ``records`` on one line, with its goal and whether it is met."""
    lines = []
    for name, record in records.items():
        for row in summary_rows(name, record["results"]):
            met = {True: "met", False: "NOT met", None: ""}[row.get("met")]
            goal = f"  [goal: {row['goal']}, {met}]" if row.get("goal") else ""
            lines.append(f"{name:10s} {row['measure']}: {row['value']}{goal}")
    return lines
