"""Every notebook of the book follows the conventions of CONTRIBUTING.md."""

from __future__ import annotations

import nbformat
import pytest
import yaml

from booktools.layout import repository_url, toc_notebooks
from booktools.normalize import SETUP_TAG, colab_setup_source
from booktools.runtimes import machine, measured, run_time_text, write_report
from conftest import ROOT

NOTEBOOKS = toc_notebooks()
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_toc_lists_only_existing_files():
    toc = (ROOT / "_toc.yml").read_text()
    for line in toc.splitlines():
        line = line.strip()
        if line.startswith("- file:") or line.startswith("root:"):
            name = line.split(":", 1)[1].strip()
            assert any((ROOT / f"{name}{ext}").exists() for ext in (".md", ".ipynb")), name
    assert NOTEBOOKS, "the book has no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_are_stripped(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in code_cells(notebook):
        assert cell.outputs == [] and cell.execution_count is None, (
            f"{path.name}: run scripts/normalize_notebooks.py"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_cells_title_then_guarded_colab_setup(path):
    notebook = nbformat.read(path, as_version=4)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        "first cell must be the '# Title'"
    )
    setup = code_cells(notebook)[0]
    assert SETUP_TAG in setup.metadata.get("tags", [])
    assert setup.source == colab_setup_source(), "run scripts/normalize_notebooks.py"
    assert 'if "google.colab" in sys.modules:' in setup.source
    assert f"git+{repository_url()}@" in setup.source
    from IPython.core.inputtransformer2 import TransformerManager

    # %pip -> get_ipython().run_line_magic(...)
    code = TransformerManager().transform_cell(setup.source)
    namespace: dict = {}
    # outside Colab it must do nothing (no get_ipython needed)
    exec(compile(code, "setup", "exec"), namespace)
    assert set(namespace) <= {"sys", "__builtins__"}


def test_repository_url_configured_once():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_parameters_cell_fixes_mode_and_seed(path):
    notebook = nbformat.read(path, as_version=4)
    parameters = code_cells(notebook)[1]
    assert "parameters" in parameters.metadata.get("tags", []), (
        "second code cell must be tagged 'parameters'"
    )
    assert "get_mode(" in parameters.source and "seed_everything(" in parameters.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_running_time_is_stated_by_the_script(path):
    """scripts/record_run_times.py writes the measured quick-mode time and what full mode needs."""
    notebook = nbformat.read(path, as_version=4)
    cells = [c for c in notebook.cells if "run-time" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "run `make run-times`"
    assert (
        cells[0].source.startswith("**Running time.** Quick mode: ")
        and "Full mode: " in cells[0].source
    )
    assert notebook.metadata["dyndl"].get("full_mode"), (
        "say in metadata dyndl.full_mode what full mode needs"
    )


def test_running_time_text_states_both_modes_and_the_machine_measured():
    quick = ({"notebooks": {"a.ipynb": 41.6}, "cpu_count": 2, "gpu": None}, "2026-11-30")
    full = ({"notebooks": {"a.ipynb": 1234.4}, "cpu_count": 16, "gpu": "NVIDIA H200"}, "2026-12-01")
    text = run_time_text("a.ipynb", quick, None, "more images.")
    assert text == (
        "**Running time.** Quick mode: 42 s on a CPU with 2 cores, no GPU (`make run-times`, "
        "2026-11-30). Full mode: more images. Not yet timed."
    )
    text = run_time_text("a.ipynb", quick, full, "more images.")
    assert text.endswith(
        "Full mode: more images. Measured: 1234 s on a CPU with 16 cores and a GPU (NVIDIA H200) "
        "(`make book-full`, 2026-12-01)."
    )
    assert machine({"cpu_count": None, "gpu": None}) == "a CPU, no GPU"
    named = {"cpu_count": 2, "cpu_model": "AMD EPYC", "gpu": None}
    assert machine(named) == "a CPU with 2 cores (AMD EPYC), no GPU"


def test_times_report_is_written_whole_and_read_back(tmp_path):
    path = tmp_path / "full" / "execution_times.json"
    write_report(path, "full", {"a.ipynb": 12.5})
    write_report(path, "full", {"a.ipynb": 12.5, "b.ipynb": 3.0})  # rewritten after each notebook
    report, _ = measured(path)
    assert report["mode"] == "full" and report["notebooks"] == {"a.ipynb": 12.5, "b.ipynb": 3.0}
    assert {"cpu_count", "cpu_model", "gpu"} <= set(report)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no half-written file left
    text = run_time_text("b.ipynb", (report, "2026-11-30"), (report, "2026-11-30"), "more.")
    assert "Measured: 3 s" in text
