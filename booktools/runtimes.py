"""The chapters' "Running time" cells: what a timed run of the book measured, in one sentence.

A times report is JSON written by a run of the book: ``{"mode", "notebooks": {path: seconds},
"cpu_count", "gpu"}`` (``make run-times`` writes the quick-mode one, ``make book-full`` the
full-mode one); :func:`run_time_text` turns the two into a chapter's cell. :func:`execute` is the
one timer of them all: it runs a notebook as a reader's kernel would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

from booktools.figure_check import kernel_environment
from dyndl_lite import atomic
from dyndl_lite.records import cpu_model


def timestamp(text: str) -> dt.datetime:
    """An ISO 8601 timestamp of nbclient's cell timing (``Z`` for UTC)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def execute(path: Path, timeout: int = 7200) -> tuple[nbformat.NotebookNode, float]:
    """Run the notebook at ``path`` in a fresh ``python3`` kernel in its own folder, with the
    figure check loaded (:func:`booktools.figure_check.kernel_environment`) and every cell's
    start and end recorded (nbclient's ``record_timing``).

    Returns the executed notebook and the seconds a reader waits: from asking for the kernel to
    the last cell's reply. The kernel's shutdown afterwards (about a second) is not counted: a
    reader does not wait for it.
    """
    notebook = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(Path(path).parent)}}
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="dyndl-ipython-") as folder:
        client = NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", record_timing=True,
            resources=resources,
        )  # fmt: skip
        client.execute(env=kernel_environment(Path(folder)))
    replies = [
        timestamp(c.metadata["execution"]["shell.execute_reply"])
        for c in notebook.cells
        if "shell.execute_reply" in c.metadata.get("execution", {})
    ]
    finished = max(replies, default=dt.datetime.now(dt.UTC))
    return notebook, (finished - started).total_seconds()


def machine_report() -> dict:
    """Where a run is being timed, measured now: CPU count and model, and the GPU's name (None
    without CUDA). Times differ between CPUs of the same core count, so the model is named."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu_count": os.cpu_count(), "cpu_model": cpu_model(), "gpu": gpu}


def write_report(path: Path, mode: str, notebooks: dict[str, float], **more: float) -> None:
    """The times report ``{"mode", "cpu_count", "gpu", **more, "notebooks"}`` as JSON at ``path``,
    written atomically (:func:`dyndl_lite.atomic.write_text`), so that a reader never finds half a
    file."""
    report = {"mode": mode, **machine_report(), **more, "notebooks": notebooks}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(report, indent=2))


def machine(report: dict) -> str:
    """``"a CPU with 2 cores (AMD EPYC), no GPU"``: what a times report says about where it was
    measured (reports written before the model was recorded leave it out)."""
    cores, model = report.get("cpu_count"), report.get("cpu_model")
    cpu = f"a CPU with {cores} cores" if cores else "a CPU"
    cpu += f" ({model})" if model else ""
    return f"{cpu} and a GPU ({report['gpu']})" if report.get("gpu") else f"{cpu}, no GPU"


def measured(path: Path) -> tuple[dict, str] | None:
    """(the times report at ``path``, the date it was written), or None when there is none."""
    if not path.exists():
        return None
    return json.loads(path.read_text()), dt.date.fromtimestamp(path.stat().st_mtime).isoformat()


def run_time_text(
    name: str, quick: tuple[dict, str], full: tuple[dict, str] | None, full_mode: str
) -> str:
    """The Markdown of notebook ``name``'s "Running time" cell, from the quick-mode report and
    date, the full-mode ones (or None) and what full mode does (``full_mode``)."""
    report, day = quick
    text = (
        f"**Running time.** Quick mode: {report['notebooks'][name]:.0f} s on {machine(report)} "
        f"(`make run-times`, {day}). Full mode: {full_mode}"
    )
    if full is not None and name in full[0]["notebooks"]:
        report, day = full
        return (
            f"{text} Measured: {report['notebooks'][name]:.0f} s on {machine(report)} "
            f"(`make book-full`, {day})."
        )
    return f"{text} Not yet timed."
