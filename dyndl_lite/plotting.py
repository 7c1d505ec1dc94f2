"""Figure checks: every figure the book shows has labelled axes, a title and, where needed, a
legend.

:func:`figure_problems` inspects a matplotlib :class:`~matplotlib.figure.Figure` and lists what a
reader would miss.
An Axes *with data* (``ax.has_data()``, drawn axis lines, not a colorbar) must have

* an x label and a y label: its own, one of an Axes it shares that axis with (a grid with
  ``sharex``/``sharey`` labels only the outer panels), or the figure's ``supxlabel``/``supylabel``;
* a title: its own or the figure's ``suptitle``;
* a legend when it holds more than one labelled series (artists whose label does not start with
  ``_``): its own, or a legend elsewhere in the figure (another panel's, or ``fig.legend``) that
  lists every one of its labels, as when one legend serves several panels showing the same series.

:func:`check_figure` raises :class:`FigureCheckError` (a ``ValueError``) naming the figure and each
problem.
:func:`install_figure_check` makes an IPython kernel check every figure it shows: figures passed to
``plt.show()`` and figures still open at the end of a cell (what the inline backend displays).
``import dyndl_lite`` calls it when the environment variable ``DYNDL_CHECK_FIGURES`` is ``1``; the
test suite's book build sets it.
"""

from __future__ import annotations

import ast
import os
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

ENV_VAR = "DYNDL_CHECK_FIGURES"
_CHECK_NAME = "_dyndl_check_open_figures"


class FigureCheckError(ValueError):
    """A figure lacks an axis label, a title or a legend."""


def _text(label: Any) -> str:
    return label.get_text().strip() if label is not None else ""


def _is_colorbar(ax: Axes) -> bool:
    return getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>"


def _labelled_series(ax: Axes) -> list[str]:
    """Labels of the Axes' lines, collections, patches and containers that a legend would show."""
    artists = [*ax.lines, *ax.collections, *ax.patches, *ax.images, *ax.containers]
    return [
        str(a.get_label())
        for a in artists
        if str(a.get_label()) and not str(a.get_label()).startswith("_")
    ]


def _has_axis_label(ax: Axes, which: str, fig: Figure) -> bool:
    """Whether ``ax`` (or an Axes sharing its ``which`` axis, or the figure) labels the ``which``
    axis."""
    figure_label = getattr(fig, f"_sup{which}label", None)
    if _text(figure_label):
        return True
    siblings = (ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()).get_siblings(ax)
    getter = "get_xlabel" if which == "x" else "get_ylabel"
    return any(getattr(other, getter)().strip() for other in siblings)


def figure_problems(fig: Figure) -> list[str]:
    """What a reader would miss in ``fig``: one line per Axes and missing element (empty when the
    figure is complete)."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}.")
    suptitle = _text(getattr(fig, "_suptitle", None))
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    legend_labels = {text.get_text() for legend in legends for text in legend.get_texts()}
    problems = []
    for index, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison or _is_colorbar(ax) or not ax.has_data():
            continue
        name = f"Axes {index}" + (f" ('{ax.get_title()}')" if ax.get_title() else "")
        for which in ("x", "y"):
            if not _has_axis_label(ax, which, fig):
                problems.append(f"{name} has no {which}-axis label (ax.set_{which}label)")
        if not suptitle and not any(
            ax.get_title(loc=loc).strip() for loc in ("left", "center", "right")
        ):
            problems.append(
                f"{name} has no title and the figure has no suptitle (ax.set_title or fig.suptitle)"
            )
        series = _labelled_series(ax)
        if len(series) > 1 and ax.get_legend() is None and not set(series) <= legend_labels:
            missing = [label for label in series if label not in legend_labels]
            problems.append(
                f"{name} has {len(series)} labelled series but no legend, "
                "and no legend of the figure "
                f"lists {missing[:4]} (ax.legend)"
            )
    return problems


def check_figure(fig: Figure, name: str | None = None) -> None:
    """Raise :class:`FigureCheckError` listing every problem of :func:`figure_problems`; do nothing
    if there is none."""
    problems = figure_problems(fig)
    if problems:
        label = name or (f"Figure {fig.number}" if hasattr(fig, "number") else "The figure")
        raise FigureCheckError(f"{label} is incomplete:\n  " + "\n  ".join(problems))


def check_open_figures(value: Any = None) -> Any:
    """Check every open pyplot figure (those the inline backend shows at the end of a cell); return
    ``value``."""
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        for number in pyplot.get_fignums():
            check_figure(pyplot.figure(number), f"Figure {number}")
    return value


class _CheckAtCellEnd(ast.NodeTransformer):
    """Rewrite a cell so that it checks the open figures as its last action.

    A final expression ``x`` becomes ``_dyndl_check_open_figures(x)`` (its value is still
    displayed); otherwise the call is appended as a statement.
    """

    def visit_Module(self, node: ast.Module) -> ast.Module:
        call = ast.Name(id=_CHECK_NAME, ctx=ast.Load())
        if node.body and isinstance(node.body[-1], ast.Expr):
            last = node.body[-1]
            last.value = ast.Call(func=call, args=[last.value], keywords=[])
        else:
            node.body.append(ast.Expr(value=ast.Call(func=call, args=[], keywords=[])))
        return ast.fix_missing_locations(node)


def install_figure_check(shell: Any = None) -> bool:
    """Check every figure the running IPython kernel shows; return whether a kernel was found.

    ``plt.show()`` checks the open figures before showing them, and every cell ends by checking
    the figures still open, before the inline backend displays them. A figure that fails raises
    :class:`FigureCheckError` in the cell that shows it. Installing twice does nothing more.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    if any(isinstance(t, _CheckAtCellEnd) for t in shell.ast_transformers):
        return True
    import matplotlib.pyplot as pyplot

    original_show = pyplot.show

    def show(*args: Any, **kwargs: Any) -> Any:
        check_open_figures()
        return original_show(*args, **kwargs)

    show.__doc__ = original_show.__doc__
    pyplot.show = show
    shell.user_ns[_CHECK_NAME] = check_open_figures
    shell.user_ns_hidden[_CHECK_NAME] = check_open_figures
    shell.ast_transformers.append(_CheckAtCellEnd())
    return True


def figure_check_requested() -> bool:
    """Whether ``$DYNDL_CHECK_FIGURES`` asks for the check (``1``); any value other than ``0``,
    ``1`` or unset is an error."""
    value = os.environ.get(ENV_VAR, "0").strip()
    if value not in ("0", "1", ""):
        raise ValueError(f"{ENV_VAR} must be 0 or 1, got {value!r}.")
    return value == "1"
