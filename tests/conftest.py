"""Shared fixtures: the book is built (and every notebook executed) once per test run."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from booktools.figure_check import kernel_environment
from booktools.runtimes import write_report

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
TIMES_FILE = BUILD / "execution_times.json"

# Every test, the book build included, sees an empty user checkpoint folder: the book must execute
# from the shipped checkpoints alone, and no test may write into a reader's own folder.
os.environ["DYNDL_CHECKPOINTS"] = tempfile.mkdtemp(prefix="dyndl-test-checkpoints-")

# `make test` runs the suite in one pytest-xdist worker per core. Each worker, and every process it
# starts (notebook kernels, the command line), then gets its share of the cores as PyTorch threads:
# two workers of two threads each on two cores run the suite twice as slowly as one, because
# OpenMP's waiting threads spin on the cores the other worker needs.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    THREADS = str(max(1, (os.cpu_count() or 1) // WORKERS))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = THREADS
    import torch

    torch.set_num_threads(int(THREADS))


@dataclass
class BookBuild:
    """The outcome of one build of the book."""

    returncode: int
    log: str
    seconds: float
    times: dict[str, float]  # notebook path (relative to the root) -> execution seconds

    @property
    def html(self) -> Path:
        """The built HTML book."""
        return BUILD / "html"


def is_module(module: str) -> bool:
    """Whether ``module`` (dotted) is a module or package of this checkout."""
    base = ROOT / module.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imported_names(notebook: Path) -> set[tuple[str, str]]:
    """``(module, name)`` for every ``from dyndl_lite... import name`` in the notebook's code
    cells, and for every attribute read from a module imported so (``yan.table`` after
    ``from dyndl_lite.experiments import yan``)."""
    trees = [
        ast.parse(TransformerManager().transform_cell(cell.source))
        for cell in nbformat.read(notebook, as_version=4).cells
        if cell.cell_type == "code"
    ]
    names, modules = set(), {}
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dyndl_lite"):
            for alias in node.names:
                names.add((node.module, alias.name))
                if is_module(f"{node.module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dyndl_lite"):
                    names.add((alias.name, ""))
                    if alias.asname:
                        modules[alias.asname] = alias.name
    for node in (node for tree in trees for node in ast.walk(tree)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            names.add((modules[node.value.id], node.attr))
    return names


def execution_times() -> dict[str, float]:
    """Execution seconds of every notebook in the jupyter-cache of the last build."""
    from jupyter_cache import get_cache

    cache_path = BUILD / ".jupyter_cache"
    if not cache_path.exists():
        return {}
    times = {}
    for record in get_cache(cache_path).list_cache_records():
        seconds = (record.data or {}).get("execution_seconds")
        if seconds is not None:
            times[str(Path(record.uri).resolve().relative_to(ROOT))] = float(seconds)
    return times


def executed_notebooks() -> dict[str, nbformat.NotebookNode]:
    """The executed notebooks stored in the jupyter-cache of the last build, by path."""
    from jupyter_cache import get_cache

    cache = get_cache(BUILD / ".jupyter_cache")
    return {
        str(Path(r.uri).resolve().relative_to(ROOT)): cache.get_cache_bundle(r.pk).nb
        for r in cache.list_cache_records()
    }


@pytest.fixture(scope="session")
def built_book() -> BookBuild:
    """Build the HTML book with warnings as errors, executing each notebook exactly once."""
    shutil.rmtree(BUILD / ".jupyter_cache", ignore_errors=True)
    bin_dir = Path(sys.executable).parent
    # every kernel loads the figure check: a figure without axis labels, title or legend fails its
    # cell
    env = kernel_environment(Path(tempfile.mkdtemp(prefix="dyndl-ipython-")))
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env.setdefault("DYNDL_MODE", "quick")
    start = time.perf_counter()
    process = subprocess.run(
        [
            str(bin_dir / "jupyter-book"),
            "build",
            str(ROOT),
            "--all",
            "--warningiserror",
            "--keep-going",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    log = process.stdout + process.stderr
    BUILD.mkdir(exist_ok=True)
    (BUILD / "build.log").write_text(log)
    times = execution_times()
    # test_workers: how many pytest processes shared the CPU meanwhile (see WORKERS above)
    write_report(TIMES_FILE, env["DYNDL_MODE"], times, build_seconds=seconds, test_workers=WORKERS)
    return BookBuild(process.returncode, log, seconds, times)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """After a run that built the book, list every notebook's execution time."""
    if not TIMES_FILE.exists() or TIMES_FILE.stat().st_mtime < getattr(config, "_dyndl_start", 0):
        return
    report = json.loads(TIMES_FILE.read_text())
    terminalreporter.section(f"notebook execution times ({report['mode']} mode)")
    for name, seconds in report["notebooks"].items():
        terminalreporter.write_line(f"{seconds:8.1f} s  {name}")
    total = sum(report["notebooks"].values())
    terminalreporter.write_line(
        f"{total:8.1f} s  all notebooks; whole book build {report['build_seconds']:.1f} s"
    )


def pytest_configure(config: pytest.Config) -> None:
    """Remember when the run started (the terminal summary reports only this run's build)."""
    config._dyndl_start = time.time()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that needs the built book runs in the same pytest-xdist worker
    (``--dist loadgroup``), so that the book is built once per run, not once per worker."""
    for item in items:
        if "built_book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("book"))
