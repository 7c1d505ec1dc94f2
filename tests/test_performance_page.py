"""The Performance appendix is generated from bench/results/ and says which goals are met."""

import json
from pathlib import Path

from booktools.performance import write_page

ROOT = Path(__file__).resolve().parents[1]


def render(tmp_path, results_dir):
    """Write the page from ``results_dir`` into ``tmp_path``."""
    write_page(results_dir, tmp_path / "performance.md", tmp_path / "performance_figures")


def test_committed_page_matches_committed_results(tmp_path):
    render(tmp_path, ROOT / "bench" / "results")
    committed = (ROOT / "book" / "appendix" / "performance.md").read_text()
    assert (tmp_path / "performance.md").read_text() == committed, (
        "book/appendix/performance.md is out of date: run `python scripts/render_performance.py`."
    )


def test_goals_are_judged_from_the_numbers(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    machine = {
        "cpu": "test CPU",
        "cores": 2,
        "memory_gib": 1,
        "gpu": None,
        "torch": "x",
        "torch_threads": 2,
    }
    ot_results = {
        "dimension": 32,
        "scipy_limit_s": 120,
        "rows": [
            {"m": 10_000, "clouds": "random", "pot_s": 40.0, "fixed_points": 0.0, "scipy_s": None}
        ],
        "mnist_ots": {
            "checkpoint": "c",
            "points": 10_000,
            "ots": 0.5,
            "tracks_s": 1.0,
            "ots_s": 70.0,
            "total_s": 71.0,
            "goal_s": 60,
        },
    }
    throughput = {
        "batch_size": 128,
        "models": {
            "odenet": {
                "steps": 1,
                "ratio": 2.5,
                "largest_possible_ratio": 3.0,
                "images_per_s": {"ours": 250, "reference": 100, "compute floor": 300},
            }
        },
    }
    for name, body in (("ot", ot_results), ("throughput", throughput)):
        record = {
            "benchmark": name,
            "measured_at": "2026-01-01",
            "machine": machine,
            "results": body,
        }
        (results / f"{name}.json").write_text(json.dumps(record))
    render(tmp_path, results)
    page = (tmp_path / "performance.md").read_text()
    assert "did not finish in 120 s" in page
    assert "| under 60 s | no |" in page  # 71 s misses the goal
    assert "2.50x (250 vs 100 images/s)" in page and "| at least 2x | yes |" in page
    assert "## Full recipes on a GPU" in page and "Not measured yet" in page


def test_campaign_hours_left_name_the_runs_no_record_has_timed(monkeypatch):
    from booktools import performance
    from dyndl_lite import plan, pretrained

    rows = [
        {"name": f"yan-tisode-gaussian-seed{s}", "epochs": 10, "key": ("yan-gaussian", "tisode"),
         "status": status, "epochs_done": 0}
        for s, status in enumerate(("new", "new", "finished"))
    ]  # fmt: skip
    monkeypatch.setattr(plan, "read", lambda *_: [])
    monkeypatch.setattr(plan, "ledger", lambda *_: rows)
    monkeypatch.setattr(pretrained, "exists", lambda *_: False)
    section = performance.campaign_section()
    # nothing is timed, so the hours left are not zero but unknown for the two unfinished runs
    assert (
        "| Yan et al., Table 2 | 3 | 1 | 0.0 (3 runs not timed) | 0.0 (and 2 runs not timed) |"
        in (section)
    )


def test_a_faster_machine_does_not_erase_a_slower_ones_book_time(tmp_path):
    from bench.notebooks import other_machines

    def record(cpu: str, total: float, others: dict) -> dict:
        notebooks = {"book/a.ipynb": {"seconds": total, "slowest_cells": []}}
        return {
            "benchmark": "notebooks",
            "measured_at": "2026-01-02T00:00:00+00:00",
            "machine": {"cpu": cpu, "cores": 2, "memory_gib": 1, "gpu": None},
            "results": {
                "notebooks": notebooks,
                "total_seconds": total,
                "goal_seconds": 120,
                "chapter_goal_seconds": 60,
                "other_machines": others,
            },
        }

    results = tmp_path / "results"
    results.mkdir()
    path = results / "notebooks.json"
    path.write_text(json.dumps(record("slow CPU", 140.0, {})))
    assert other_machines(path, "slow CPU") == {}  # the same CPU: its new time replaces it
    kept = other_machines(path, "fast CPU")
    assert kept == {
        "slow CPU": {
            "measured_at": "2026-01-02T00:00:00+00:00",
            "total_seconds": 140.0,
            "slowest_chapter_seconds": 140.0,
        }
    }
    faster = record("fast CPU", 76.0, kept)
    faster["results"]["kernel_start_seconds"] = 3.0
    path.write_text(json.dumps(faster))
    assert other_machines(path, "slow CPU") == {  # back on the slow one: the fast one is kept
        "fast CPU": {
            "measured_at": "2026-01-02T00:00:00+00:00",
            "total_seconds": 76.0,
            "slowest_chapter_seconds": 76.0,
        }
    }
    render(tmp_path, results)
    page = (tmp_path / "performance.md").read_text()
    assert "| whole book, quick mode | 76 s | under 120 s | yes |" in page
    assert "as every chapter starts | 3.0 s; 1 chapter: 3 s of the 76 s |  |" in page
    slow = "| whole book, quick mode, on slow CPU (2026-01-02) | 140 s; slowest chapter 140 s |"
    assert f"{slow} under 120 s | no |" in page
