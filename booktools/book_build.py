"""Build the HTML book once for a test run, in a process of its own.

``python -m booktools.book_build RESULT [--test-workers N]`` builds the book as the test suite
checks it: every notebook executed once, in the mode ``DYNDL_MODE`` names (quick by default), each
kernel with the figure check loaded (:func:`booktools.figure_check.kernel_environment`), Sphinx
warnings as errors. It writes the build's log to ``_build/build.log`` and the notebooks' seconds to
``_build/execution_times.json`` (:func:`booktools.runtimes.write_report`, with ``test_workers``:
how many test processes shared the CPU meanwhile), and last, atomically, ``RESULT``: a JSON object
``{"returncode", "seconds", "times", "log"}``. A build that cannot even start still writes
``RESULT``, with return code 1 and the traceback as its log, so that nobody waits for it in vain.

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
from pathlib import Path

from booktools.figure_check import kernel_environment
from booktools.layout import ROOT
from booktools.runtimes import write_report
from dyndl_lite import atomic

BUILD = ROOT / "_build"
TIMES_FILE = BUILD / "execution_times.json"
LOG_FILE = BUILD / "build.log"


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


def build(test_workers: int = 1) -> dict:
    """Build the book from scratch (the jupyter-cache emptied first); return the result object."""
    shutil.rmtree(BUILD / ".jupyter_cache", ignore_errors=True)
    bin_dir = Path(sys.executable).parent
    env = kernel_environment(Path(tempfile.mkdtemp(prefix="dyndl-ipython-")))
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env.setdefault("DYNDL_MODE", "quick")
    command = [str(bin_dir / "jupyter-book"), "build", str(ROOT), "--all", "--warningiserror"]
    start = time.perf_counter()
    process = subprocess.run(
        [*command, "--keep-going"], cwd=ROOT, env=env, capture_output=True, text=True
    )
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
    args = parser.parse_args(argv)
    try:
        result = build(args.test_workers)
    except Exception:  # the waiting tests must hear of it: write a failed result
        result = {"returncode": 1, "seconds": 0.0, "times": {}, "log": traceback.format_exc()}
    atomic.write_text(args.result, json.dumps(result))
    return 0 if result["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
