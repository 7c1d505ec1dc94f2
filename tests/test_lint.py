"""The whole repository passes ruff's checks (configured in pyproject.toml and book/ruff.toml).

The package, the tests, the scripts, the benchmarks, the Sphinx extensions and every notebook's code
cells, checked and formatted; ``ruff check --fix`` and ``ruff format`` repair what they can. Not
marked slow: ruff takes about a second, so the check is part of ``make test-fast``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.lint


def test_ruff_reports_nothing():
    process = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    report = process.stdout + process.stderr
    assert process.returncode == 0, f"ruff check (`ruff check --fix` repairs some):\n{report}"


def test_ruff_format_has_nothing_to_change():
    process = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    report = process.stdout + process.stderr
    assert process.returncode == 0, f"ruff format --check (`ruff format` rewrites them):\n{report}"
