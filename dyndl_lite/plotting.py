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
The book's build runs it on every figure a chapter shows, through an IPython extension of the
repository's tooling (``booktools.figure_check``); importing this module changes nothing.
"""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure


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
