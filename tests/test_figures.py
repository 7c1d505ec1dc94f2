"""The figure check: a figure without axis labels, title or legend is reported, in a unit test and
in a notebook kernel that loads the IPython extension booktools.figure_check."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from booktools.figure_check import kernel_environment
from conftest import ROOT
from dyndl_lite.plotting import FigureCheckError, check_figure, figure_problems


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def complete_figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="a")
    ax.plot([0, 1], [1, 0], label="b")
    ax.set(xlabel="x", ylabel="y", title="two lines")
    ax.legend()
    return fig, ax


def test_complete_figure_passes():
    fig, _ = complete_figure()
    assert figure_problems(fig) == []
    check_figure(fig)


@pytest.mark.parametrize(
    "remove, expected",
    [
        (lambda ax: ax.set_xlabel(""), "no x-axis label"),
        (lambda ax: ax.set_ylabel(""), "no y-axis label"),
        (lambda ax: ax.set_title(""), "no title"),
        (lambda ax: ax.get_legend().remove(), "no legend"),
    ],
)
def test_each_missing_element_is_reported(remove, expected):
    fig, ax = complete_figure()
    remove(ax)
    problems = figure_problems(fig)
    assert len(problems) == 1 and expected in problems[0], problems
    with pytest.raises(FigureCheckError, match=expected):
        check_figure(fig, "my figure")


def test_one_labelled_series_needs_no_legend_and_suptitle_replaces_titles():
    fig, axes = plt.subplots(1, 2)
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="only one")
        ax.set(xlabel="x", ylabel="y")
    assert [p for p in figure_problems(fig) if "title" in p] != []
    fig.suptitle("both panels")
    assert figure_problems(fig) == []


def test_shared_axes_may_label_only_the_outer_panels():
    fig, axes = plt.subplots(2, 2, sharex=True, sharey=True)
    for ax in axes.flat:
        ax.scatter([0, 1], [1, 0])
        ax.set_title("panel")
    axes[1, 0].set_xlabel("x")
    axes[1, 0].set_ylabel("y")
    assert figure_problems(fig) == []
    fig2, (left, right) = plt.subplots(1, 2)  # not shared: each needs its own labels
    for ax in (left, right):
        ax.plot([0, 1])
        ax.set_title("panel")
    left.set(xlabel="x", ylabel="y")
    assert len(figure_problems(fig2)) == 2


def test_empty_axes_axis_off_and_colorbars_are_exempt():
    fig, (empty, image, data) = plt.subplots(1, 3)
    image.imshow([[0, 1], [1, 0]])
    image.axis("off")
    mappable = data.scatter([0, 1], [0, 1], c=[0, 1])
    fig.colorbar(mappable, ax=data)
    data.set(xlabel="x", ylabel="y", title="scatter")
    assert figure_problems(fig) == []
    image.axis("on")
    assert len(figure_problems(fig)) == 3  # the image panel now needs x, y labels and a title


def test_one_legend_may_serve_several_panels_only_if_it_lists_their_series():
    fig, (left, right) = plt.subplots(1, 2, sharey=True)
    for ax in (left, right):
        ax.plot([0, 1], label="CNN")
        ax.plot([1, 0], label="ODE-Net")
        ax.set(xlabel="x", title="panel")
    left.set_ylabel("y")
    left.legend()
    assert figure_problems(fig) == []
    right.plot([0.5, 0.5], label="augmented")  # a series the shared legend does not list
    problems = figure_problems(fig)
    assert len(problems) == 1 and "augmented" in problems[0], problems


def test_figure_legend_counts_and_bad_input_is_rejected():
    fig, ax = complete_figure()
    ax.get_legend().remove()
    fig.legend()
    assert figure_problems(fig) == []
    with pytest.raises(TypeError, match="Figure"):
        figure_problems(ax)


def run_cells(sources, environ=None):
    """Execute the cells in a fresh kernel (with ``environ``, default this process's with the
    repository root on ``PYTHONPATH``, so that ``%load_ext booktools.figure_check`` finds it)."""
    environ = environ or {**os.environ, "PYTHONPATH": str(ROOT)}
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute(env=environ)
    return notebook


LOAD = "%load_ext booktools.figure_check\nimport matplotlib.pyplot as plt"
GOOD = "fig, ax = plt.subplots()\nax.plot([0, 1])\nax.set(xlabel='x', ylabel='y', title='t')\n"
NO_Y_LABEL = "fig, ax = plt.subplots()\nax.plot([0, 1])\nax.set(xlabel='x', title='t')\n"


@pytest.fixture(scope="module")
def checking_kernel(tmp_path_factory):
    """The environment under which the book build's kernels load the figure check."""
    return kernel_environment(tmp_path_factory.mktemp("ipython"))


@pytest.mark.parametrize("show", ["plt.show()", "fig", ""])
def test_a_notebook_cell_showing_an_unlabelled_figure_fails(checking_kernel, show):
    """Shown by plt.show(), as the cell's value, or by the inline backend at the end of the cell:
    all are checked, in a kernel that loads the extension as the book build's do."""
    with pytest.raises(CellExecutionError, match="no y-axis label"):
        run_cells(["import matplotlib.pyplot as plt", NO_Y_LABEL + show], checking_kernel)


def test_a_notebook_with_complete_figures_runs_and_keeps_the_last_value():
    notebook = run_cells([LOAD, GOOD + "plt.show()", GOOD + "41 + 1"])
    outputs = notebook.cells[2].outputs
    assert any(o.get("data", {}).get("text/plain") == "42" for o in outputs), outputs
    assert any("image/png" in o.get("data", {}) for o in outputs), "the figure was not displayed"


def test_the_check_is_off_without_the_extension_and_after_unloading_it():
    run_cells(["import matplotlib.pyplot as plt", NO_Y_LABEL + "plt.show()"])
    run_cells([LOAD, "%unload_ext booktools.figure_check", NO_Y_LABEL + "plt.show()"])


def test_importing_the_package_installs_no_check():
    """The wheel imports no tooling: ``import dyndl_lite`` (or its plotting module) in a kernel
    leaves the figures unchecked."""
    run_cells(["import dyndl_lite.plotting\nimport matplotlib.pyplot as plt", NO_Y_LABEL])


def _notebook_file(path, sources):
    """A notebook of code cells ``sources`` written at ``path``."""
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_the_timer_runs_a_notebook_as_the_build_does(tmp_path):
    """``booktools.runtimes.execute``, the one timer of the book (``make run-times``), loads the
    figure check and records every cell's start and end."""
    from booktools.runtimes import execute

    imports = "import matplotlib.pyplot as plt"
    good = _notebook_file(tmp_path / "good.ipynb", [imports, GOOD + "plt.show()"])
    notebook, seconds = execute(good, timeout=120)
    from bench.notebooks import cell_seconds

    assert seconds > sum(cell_seconds(c) for c in notebook.cells) > 0  # the kernel's start too
    assert all("iopub.execute_input" in c.metadata["execution"] for c in notebook.cells)
    bad = _notebook_file(tmp_path / "bad.ipynb", [imports, NO_Y_LABEL + "plt.show()"])
    with pytest.raises(CellExecutionError, match="no y-axis label"):
        execute(bad, timeout=120)
