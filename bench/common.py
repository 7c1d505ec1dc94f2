"""Shared helpers of the benchmarks: machine description and result files.

Every benchmark writes ``bench/results/<name>.json`` holding what it measured,
when, and on which machine; ``scripts/render_performance.py`` turns those files
into the book's Performance appendix.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

import torch

from dyndl_lite.records import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """CPU model, core count, memory, accelerator and library versions of this machine."""
    memory_gib = None
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def save(name: str, results: dict) -> Path:
    """Write ``results``, a timestamp and the machine description to ``results/<name>.json``."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    measured_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    record = {
        "benchmark": name,
        "measured_at": measured_at,
        "machine": machine(),
        "results": results,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
