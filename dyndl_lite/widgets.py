"""Interactive step-size demo for a fixed-step ODE solver, and its static twin.

The solver takes equal steps of size ``h`` from ``t_0``,
``t_k = t_0 + k h`` for ``k = 0, ..., ceil((t_1 - t_0)/h)``, and the plot
shows one component of ``y_k`` against the exact solution ``y(t)``.

* :func:`draw_solution` draws one such panel on a matplotlib axis;
* :func:`step_size_gallery` draws a row of panels, one per step size: the
  static figure that the online book shows without a kernel;
* :func:`step_size_demo` returns an ipywidgets box whose slider sets ``h`` and
  whose menu picks the method, redrawing the same panel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import clear_output, display
from torch import Tensor

from dyndl_lite.convergence import ExactSolution
from dyndl_lite.solvers import FLOAT64_STEP_SLACK, STEPS, VectorField, odeint, step_count


def step_grid(t_span: tuple[float, float], h: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """``t_0 + k h`` for ``k = 0..n``: equal steps of exactly ``h`` covering ``t_span``.

    ``n = max(1, ceil((t_1 - t_0)/h (1 - 1e-9)))``: :func:`dyndl_lite.solvers.step_count` with the
    slack :data:`dyndl_lite.solvers.FLOAT64_STEP_SLACK` of a float64 grid.
    """
    t0, t1 = (float(s) for s in t_span)
    if not t1 > t0:
        raise ValueError(f"t_span must be (t0, t1) with t1 > t0, got {t_span!r}.")
    if not (isinstance(h, (int, float)) and math.isfinite(h) and h > 0):
        raise ValueError(f"The step size h must be a positive number, got {h!r}.")
    n = step_count(t1 - t0, h, FLOAT64_STEP_SLACK)
    return t0 + h * torch.arange(n + 1, dtype=dtype)


def draw_solution(
    ax: plt.Axes,
    func: VectorField,
    y0: Tensor,
    exact: ExactSolution,
    t_span: tuple[float, float],
    h: float,
    method: str = "euler",
    component: int = 0,
) -> np.ndarray:
    """Plot ``method`` with step ``h`` against the exact solution on ``ax``; return the ``y_k``
    plotted.

    If the state overflows, the panel says so instead of raising, because the
    blow-up is the lesson.
    """
    if method not in STEPS:
        raise ValueError(f"Unknown method {method!r}; choose one of {sorted(STEPS)}.")
    t = step_grid(t_span, h, y0.dtype)
    fine = torch.linspace(float(t[0]), float(t[-1]), 400, dtype=y0.dtype)
    ax.plot(
        fine.numpy(),
        exact(fine).reshape(len(fine), -1)[:, component].numpy(),
        color="0.3",
        lw=2,
        label="exact",
    )
    try:
        approx = odeint(func, y0, t, method).reshape(len(t), -1)[:, component].numpy()
    except FloatingPointError:
        approx = np.full(len(t), np.nan)
        ax.text(0.5, 0.5, "overflow", transform=ax.transAxes, ha="center", color="C3")
    ax.plot(t.numpy(), approx, "o-", color="C3", ms=3, lw=1, label=f"{method}, $h={h:g}$")
    ax.set_xlabel("time $t$")
    ax.set_ylabel("$y(t)$" if y0.numel() == 1 else f"component {component} of $y(t)$")
    ax.legend(loc="best", fontsize="small")
    return approx


def step_size_gallery(
    func: VectorField,
    y0: Tensor,
    exact: ExactSolution,
    t_span: tuple[float, float],
    step_sizes: Sequence[float],
    method: str = "euler",
    component: int = 0,
    title: Callable[[float], str] | None = None,
) -> plt.Figure:
    """One panel per step size (a static figure of what :func:`step_size_demo` shows)."""
    if len(step_sizes) < 1:
        raise ValueError("step_sizes is empty; give at least one step size.")
    fig, axes = plt.subplots(
        1, len(step_sizes), figsize=(3.2 * len(step_sizes), 2.8), squeeze=False
    )
    for ax, h in zip(axes[0], step_sizes):
        draw_solution(ax, func, y0, exact, t_span, h, method, component)
        ax.set_title(title(h) if title else f"$h = {h:g}$")
    fig.tight_layout()
    return fig


def step_size_demo(
    func: VectorField,
    y0: Tensor,
    exact: ExactSolution,
    t_span: tuple[float, float],
    h_range: tuple[float, float] = (0.01, 0.5),
    h: float = 0.1,
    methods: Sequence[str] = ("euler", "midpoint", "rk4"),
    component: int = 0,
) -> StepSizeDemo:
    """A slider for the step size ``h`` and a menu for the method, redrawing
    :func:`draw_solution`."""
    return StepSizeDemo(func, y0, exact, t_span, h_range, h, methods, component)


class StepSizeDemo(ipywidgets.VBox):
    """ipywidgets box: ``slider`` (step size), ``menu`` (method), ``output`` (the plot).

    After every redraw ``trajectory`` holds the plotted ``y_k`` and ``figure`` the figure.
    """

    def __init__(
        self,
        func: VectorField,
        y0: Tensor,
        exact: ExactSolution,
        t_span: tuple[float, float],
        h_range: tuple[float, float],
        h: float,
        methods: Sequence[str],
        component: int,
    ) -> None:
        low, high = (float(v) for v in h_range)
        if not 0 < low < high:
            raise ValueError(f"h_range must be (low, high) with 0 < low < high, got {h_range!r}.")
        if not low <= h <= high:
            raise ValueError(f"The initial step h={h!r} lies outside h_range={h_range!r}.")
        unknown = [m for m in methods if m not in STEPS]
        if unknown or not methods:
            raise ValueError(
                f"methods must be a non-empty subset of {sorted(STEPS)}, got {list(methods)}."
            )
        self.problem = (func, y0, exact, t_span, component)
        self.slider = ipywidgets.FloatSlider(
            value=h,
            min=low,
            max=high,
            step=(high - low) / 200,
            description="step h",
            readout_format=".3f",
        )
        self.menu = ipywidgets.Dropdown(
            options=list(methods), value=methods[0], description="method"
        )
        self.output = ipywidgets.Output()
        self.trajectory: np.ndarray | None = None
        self.figure: plt.Figure | None = None
        super().__init__([ipywidgets.HBox([self.slider, self.menu]), self.output])
        self.slider.observe(self.redraw, names="value")
        self.menu.observe(self.redraw, names="value")
        self.redraw()

    def redraw(self, change=None) -> None:
        func, y0, exact, t_span, component = self.problem
        fig, ax = plt.subplots(figsize=(6, 3))
        self.trajectory = draw_solution(
            ax, func, y0, exact, t_span, self.slider.value, self.menu.value, component
        )
        ax.set_title(f"{self.menu.value} with step $h = {self.slider.value:.3f}$")
        fig.tight_layout()
        self.figure = fig
        with self.output:
            clear_output(wait=True)
            display(fig)
        plt.close(fig)
