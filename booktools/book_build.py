"""Build the HTML book once for a test run, in a process of its own.

``python -m booktools.book_build RESULT [--test-workers N]`` builds the book as the test suite
checks it: every notebook executed once, in the mode ``DYNDL_MODE`` names (quick by default), each
kernel with the figure check loaded (:func:`booktools.figure_check.kernel_environment`), Sphinx
warnings as errors. It writes the build's log to ``_build/build.log`` and the notebooks' seconds to
``_build/execution_times.json`` (:func:`booktools.runtimes.write_report`, with ``test_workers``:
how many test processes shared the CPU meanwhile), and last, atomically, ``RESULT``: a JSON object
``{"returncode", "seconds", "times", "log"}``. A build that cannot even start still writes
``RESULT``, with return code 1 and the traceback as its log, so that nobody waits for it in vain.

Jupyter Book executes the notebooks one after another. Here they are executed first, ``--parallel``
at a time (default 2), each in a fresh kernel in its own folder exactly as myst-nb's cache mode does
(:func:`jupyter_cache.executors.utils.single_nb_execution`), and stored in the build's
jupyter-cache with their seconds; Jupyter Book then finds every one there. A notebook that fails is
not stored, so that Jupyter Book executes it again and reports the error as it always does.

The test suite (``tests/conftest.py``) starts it in the background as soon as it has collected a
test that needs the book, runs the other tests meanwhile, and reads ``RESULT`` in its
``built_book`` fixture.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from booktools.figure_check import kernel_environment
from booktools.layout import ROOT, toc_notebooks
from booktools.runtimes import write_report
from dyndl_lite import atomic

BUILD = ROOT / "_build"
TIMES_FILE = BUILD / "execution_times.json"
LOG_FILE = BUILD / "build.log"
EXECUTION_TIMEOUT_S = 1200  # _config.yml's execute.timeout


def execution_times() -> dict[str, float]:
    """Execution seconds of every notebook in the jupyter-cache of the last build, by path
    relative to the repository root."""
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


def _execute(path: Path):
    """``path``'s notebook executed in its own folder, as myst-nb's cache mode executes it."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = nbformat.read(path, as_version=4)
    return single_nb_execution(notebook, str(path.parent), EXECUTION_TIMEOUT_S, False)


def execute_into_cache(parallel: int) -> None:
    """Execute every chapter, ``parallel`` at a time, into ``_build/.jupyter_cache``; a chapter
    that fails is left out (Jupyter Book then executes it and reports the error)."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(BUILD / ".jupyter_cache")
    paths = toc_notebooks()
    with ProcessPoolExecutor(max_workers=parallel) as pool:
        for path, result in zip(paths, pool.map(_execute, paths)):
            if result.err is not None:
                continue
            record = cache.add_nb_to_project(str(path))
            cache.cache_notebook_bundle(
                CacheBundleIn(result.nb, record.uri, data={"execution_seconds": result.time}),
                check_validity=False,
                overwrite=True,
            )


def build(test_workers: int = 1, parallel: int = 2) -> dict:
    """Build the book from scratch (the jupyter-cache emptied first, then filled by
    :func:`execute_into_cache`); return the result object."""
    shutil.rmtree(BUILD / ".jupyter_cache", ignore_errors=True)
    bin_dir = Path(sys.executable).parent
    env = kernel_environment(Path(tempfile.mkdtemp(prefix="dyndl-ipython-")))
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env.setdefault("DYNDL_MODE", "quick")
    # kernels running side by side share the cores (OpenMP threads spinning on a core another
    # kernel needs took chapter 6 from about 35 s to 281 s)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // parallel)))
    os.environ.update(env)  # the kernels started here get the same environment
    command = [str(bin_dir / "jupyter-book"), "build", str(ROOT), "--all"]
    command += ["--warningiserror", "--keep-going"]
    start = time.perf_counter()
    if parallel > 1:
        execute_into_cache(parallel)
    process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = process.stdout + process.stderr
    BUILD.mkdir(exist_ok=True)
    atomic.write_text(LOG_FILE, log)
    times = execution_times()
    write_report(
        TIMES_FILE, env["DYNDL_MODE"], times, build_seconds=seconds, test_workers=test_workers
    )
    return {"returncode": process.returncode, "seconds": seconds, "times": times, "log": log}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path, help="where to write the result JSON")
    parser.add_argument(
        "--test-workers", type=int, default=1, help="test processes sharing the CPU meanwhile"
    )
    parser.add_argument(
        "--parallel", type=int, default=2, help="notebooks executed at once (1: by Jupyter Book)"
    )
    args = parser.parse_args(argv)
    try:
        result = build(args.test_workers, args.parallel)
    except Exception:  # the waiting tests must hear of it: write a failed result
        result = {"returncode": 1, "seconds": 0.0, "times": {}, "log": traceback.format_exc()}
    atomic.write_text(args.result, json.dumps(result))
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
