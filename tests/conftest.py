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

from booktools.book_build import BUILD, TIMES_FILE

ROOT = Path(__file__).resolve().parents[1]
BOOK_RUNS = BUILD / "book-build"  # one folder per test run: the background build's result
BOOK_TIMEOUT_S = 3600

# Every test, the book build included, sees an empty user checkpoint folder: the book must execute
# from the shipped checkpoints alone, and no test may write into a reader's own folder.
os.environ["DYNDL_CHECKPOINTS"] = tempfile.mkdtemp(prefix="dyndl-test-checkpoints-")

# `make test` runs the suite in one pytest-xdist worker per core, beside the book build (see
# pytest_collection_modifyitems). Each of these processes, and every process it starts (notebook
# kernels, the command line), gets its share of the cores as PyTorch threads: two workers of two
# threads each on two cores ran the unit tests twice as slowly as one process, because OpenMP's
# waiting threads spin on the cores the other process needs.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def share_cores(processes: int) -> None:
    """Give this process, and those it starts, ``cores // processes`` threads (at least 1)."""
    if processes <= 1:
        return
    threads = max(1, (os.cpu_count() or 1) // processes)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


share_cores(WORKERS)


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


def executed_notebooks() -> dict[str, nbformat.NotebookNode]:
    """The executed notebooks stored in the jupyter-cache of the last build, by path."""
    from jupyter_cache import get_cache

    cache = get_cache(BUILD / ".jupyter_cache")
    return {
        str(Path(r.uri).resolve().relative_to(ROOT)): cache.get_cache_bundle(r.pk).nb
        for r in cache.list_cache_records()
    }


def book_run_folder(config: pytest.Config) -> Path:
    """The folder this test run's book build writes its result into, shared by its workers."""
    workerinput = getattr(config, "workerinput", None)
    run = workerinput["testrunuid"] if workerinput else config._dyndl_run
    return BOOK_RUNS / run


@pytest.fixture(scope="session")
def built_book(pytestconfig: pytest.Config) -> BookBuild:
    """The HTML book, built with warnings as errors and each notebook executed exactly once, by
    :mod:`booktools.book_build` in the background (started at collection); waits for it."""
    result = book_run_folder(pytestconfig) / "result.json"
    process = getattr(pytestconfig, "_dyndl_book", None)  # in the process that started it
    deadline = time.monotonic() + BOOK_TIMEOUT_S
    while not result.exists():
        if process is not None and process.poll() is not None and not result.exists():
            pytest.fail(f"the book build exited ({process.returncode}) without writing {result}")
        if time.monotonic() > deadline:
            pytest.fail(f"no book build result in {result} after {BOOK_TIMEOUT_S} s")
        time.sleep(0.5)
    build = json.loads(result.read_text())
    return BookBuild(build["returncode"], build["log"], build["seconds"], build["times"])


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
    """Remember when the run started (the terminal summary reports only this run's build) and
    name it (without pytest-xdist, the book build's folder is named after it)."""
    config._dyndl_start = time.time()
    config._dyndl_run = f"{os.getpid()}-{time.time_ns()}"


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected: the tests that will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """When a test needs the built book, start the build in the background now and move those
    tests to the end, so that the other tests run while it builds (one of the PDF's tests leads
    them).

    With pytest-xdist every worker collects the same tests; the first to create the run's
    ``started`` file starts :mod:`booktools.book_build`, and every worker's ``built_book`` waits
    for its result.
    """
    book = [item for item in items if "built_book" in getattr(item, "fixturenames", ())]
    if not book:
        return
    waiting = set(book)
    # Printing the PDF is the longest task after the build: one of its tests leads, so that one
    # worker prints while the others check the pages, and the PDF's other tests come last, when
    # it is ready (side by side at the front, a second worker would only wait for the first).
    pdf = [item for item in book if "book_pdf" in getattr(item, "fixturenames", ())]
    book = pdf[:1] + [item for item in book if item not in pdf] + pdf[1:]
    items[:] = [item for item in items if item not in waiting] + book
    share_cores(WORKERS + 1)  # the build and its kernels inherit the share too
    folder = book_run_folder(config)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(folder / "started", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        pass  # another worker of this run started it
    else:
        for old in BOOK_RUNS.iterdir():  # earlier runs' results
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
        config._dyndl_book = subprocess.Popen(
            [sys.executable, "-m", "booktools.book_build", str(folder / "result.json")]
            + ["--test-workers", str(WORKERS)],
            cwd=ROOT,  # -m finds booktools there
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The process that started the book build waits for it (another worker may still need it),
    unless the run was interrupted or stopped early, when it stops the build."""
    process = getattr(session.config, "_dyndl_book", None)
    if process is None or process.poll() is not None:
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop or session.shouldfail:
        process.terminate()
    process.wait()
