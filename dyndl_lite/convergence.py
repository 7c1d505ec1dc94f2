"""Measure how fast an ODE solver's error shrinks, against an exact solution.

For a solver run with ``n`` equal steps of size ``h = (t_1 - t_0)/n`` on
``dy/dt = f(t, y)``, the *global error* is the largest error over the grid,

.. math::  E(h) = \\max_{0 \\le k \\le n} \\| y_k - y(t_0 + k h) \\|_2 .

A method of order ``p`` has ``E(h) \\approx C h^p``, a straight line of slope
``p`` on log-log axes; :func:`loglog_slope` fits that line by least squares,

.. math::  \\log E = p \\log h + \\log C .

:func:`convergence_study` does both for a fixed-step method of
:mod:`dyndl_lite.solvers` (or any solver with the call ``solve(func, y0, t)``);
:func:`adaptive_study` records, for an adaptive torchdiffeq solver, the number
of function evaluations and the achieved error at each tolerance;
:func:`stability_function` measures ``R(w)`` of a method on the linear test
equation ``y' = w y``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dyndl_lite.models.blocks import CountedField
from dyndl_lite.solvers import VectorField, odeint

#: the exact solution ``t -> y(t)``: a 1-D time grid in, the trajectory ``(len(t), *y0.shape)`` out
ExactSolution = Callable[[Tensor], Tensor]
Solver = Callable[[VectorField, Tensor, Tensor], Tensor]


def loglog_slope(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """Least-squares line through ``(log x, log y)``: return ``(slope, intercept)``.

    With ``x`` the step sizes and ``y`` the global errors the slope is the
    measured order ``p`` and ``exp(intercept)`` the constant ``C`` of ``E = C h^p``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"x and y must be 1-D arrays of the same length, got shapes {x.shape} and {y.shape}."
        )
    if len(x) < 2:
        raise ValueError(
            f"A slope needs at least two points, got {len(x)}; measure more step sizes."
        )
    bad = ~(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"log-log fit needs positive finite values, but point {i} is (x={x[i]!r}, y={y[i]!r}). "
            "An error of exactly 0 means the step is below rounding level "
            "(use float64 or larger steps); "
            "NaN/Inf means the solver diverged (use smaller steps)."
        )
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(slope), float(intercept)


def _solve(method: str | Solver, func: VectorField, y0: Tensor, t: Tensor) -> Tensor:
    if isinstance(method, str):
        return odeint(func, y0, t, method)
    if callable(method):
        return method(func, y0, t)
    raise TypeError(
        f"method must be a name such as 'rk4' or a callable solve(func, y0, t), got {method!r}."
    )


def _exact_on(exact: ExactSolution, t: Tensor, like: Tensor) -> Tensor:
    truth = exact(t)
    if not isinstance(truth, Tensor) or truth.shape != like.shape:
        got = tuple(truth.shape) if isinstance(truth, Tensor) else type(truth).__name__
        raise ValueError(
            f"exact(t) returned {got} for a grid of {len(t)} times; it must return the trajectory "
            f"of shape {tuple(like.shape)} = (len(t), *y0.shape)."
        )
    return truth.to(like)


def global_error(
    func: VectorField,
    y0: Tensor,
    exact: ExactSolution,
    t_span: tuple[float, float],
    n_steps: int,
    method: str | Solver = "euler",
) -> float:
    """``max_k ||y_k - y(t_k)||`` for ``n_steps`` equal steps over ``t_span``.

    ``exact(t)`` maps a 1-D time grid to the true trajectory, shape
    ``(len(t), *y0.shape)``.
    """
    return _global_error_and_nfe(func, y0, exact, t_span, n_steps, method)[0]


def _global_error_and_nfe(
    func: VectorField,
    y0: Tensor,
    exact: ExactSolution,
    t_span: tuple[float, float],
    n_steps: int,
    method: str | Solver,
) -> tuple[float, int]:
    """The global error of :func:`global_error` and the number of evaluations of ``func`` it
    took."""
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}.")
    t0, t1 = (float(s) for s in t_span)
    if not t1 > t0:
        raise ValueError(f"t_span must be (t0, t1) with t1 > t0, got {t_span!r}.")
    t = torch.linspace(t0, t1, int(n_steps) + 1, dtype=y0.dtype, device=y0.device)
    counted = CountedField(func)
    approx = _solve(method, counted, y0, t)
    diff = (approx - _exact_on(exact, t, approx)).reshape(len(t), -1)
    return float(diff.norm(dim=1).max()), counted.nfe


@dataclass(frozen=True)
class ConvergenceStudy:
    """Global errors of one method over a range of step sizes, with the fitted order."""

    method: str
    step_sizes: np.ndarray
    errors: np.ndarray
    nfe: np.ndarray  # evaluations of the vector field for each solve (the cost)
    order: float  # least-squares slope of log(error) against log(h)
    constant: float  # C in error = C h^order

    def predicted(self, h: np.ndarray | float) -> np.ndarray:
        """The fitted line ``C h^p`` at step sizes ``h``."""
        return self.constant * np.asarray(h, dtype=float) ** self.order


def convergence_study(
    func: VectorField,
    y0: Tensor,
    exact: ExactSolution,
    t_span: tuple[float, float],
    steps: Sequence[int],
    method: str | Solver = "euler",
) -> ConvergenceStudy:
    """Measure the global error for each number of steps in ``steps`` and fit the order.

    Example (Euler on ``y' = -y``; the order comes out close to 1)::

        study = convergence_study(lambda t, y: -y, torch.ones(1, dtype=torch.float64),
                                  lambda t: torch.exp(-t)[:, None], (0.0, 1.0), [16, 32, 64, 128])
        study.order
    """
    if any(not isinstance(n, (int, np.integer)) or n < 1 for n in steps):
        raise ValueError(f"steps must be positive integers (numbers of steps), got {list(steps)}.")
    steps = [int(n) for n in steps]
    if len(set(steps)) < 2:
        raise ValueError(f"steps must hold at least two different step counts, got {steps}.")
    t0, t1 = (float(s) for s in t_span)
    h = np.array([(t1 - t0) / n for n in steps])
    runs = [_global_error_and_nfe(func, y0, exact, t_span, n, method) for n in steps]
    errors = np.array([error for error, _ in runs])
    nfe = np.array([count for _, count in runs])
    order, intercept = loglog_slope(h, errors)
    name = method if isinstance(method, str) else getattr(method, "__name__", "solver")
    return ConvergenceStudy(name, h, errors, nfe, order, float(np.exp(intercept)))


def stability_function(method: str | Solver, w: np.ndarray | complex) -> np.ndarray:
    """Measure ``R(w)``: one step of size 1 on ``y' = w y`` from ``y = 1``, for complex ``w``.

    A Runge-Kutta method maps ``y_k`` to ``y_{k+1} = R(h mu) y_k`` on the test
    equation ``y' = mu y``; the method is stable for ``h mu`` in
    ``{w : |R(w)| <= 1}``. The solvers work with real tensors, so ``y = u + i v``
    is integrated as the real system ``(u, v)' = (a u - b v, b u + a v)`` with
    ``w = a + i b``, for all ``w`` at once.
    """
    w = np.asarray(w, dtype=complex)
    a = torch.as_tensor(w.real, dtype=torch.float64)[..., None]
    b = torch.as_tensor(w.imag, dtype=torch.float64)[..., None]

    def test_equation(t: Tensor, y: Tensor) -> Tensor:
        u, v = y[..., :1], y[..., 1:]
        return torch.cat([a * u - b * v, b * u + a * v], dim=-1)

    y0 = torch.zeros(*w.shape, 2, dtype=torch.float64)
    y0[..., 0] = 1.0
    y1 = _solve(method, test_equation, y0, torch.tensor([0.0, 1.0], dtype=torch.float64))[-1]
    return (y1[..., 0] + 1j * y1[..., 1]).numpy()


@dataclass(frozen=True)
class AdaptiveStudy:
    """Cost and accuracy of an adaptive solver at each tolerance (``rtol = atol = tol``)."""

    method: str
    tolerances: np.ndarray
    nfe: np.ndarray  # function evaluations for the whole solve
    errors: np.ndarray  # global error on the output grid


def adaptive_study(
    func: VectorField,
    y0: Tensor,
    exact: ExactSolution,
    t: Tensor,
    tolerances: Sequence[float],
    method: str = "dopri5",
) -> AdaptiveStudy:
    """Run ``torchdiffeq.odeint(func, y0, t, rtol=tol, atol=tol, method=method)`` for each
    tolerance.

    Records the number of evaluations of ``func`` and ``max_k ||y(t_k) - y_k||``
    over the output grid ``t``.
    """
    import torchdiffeq

    if len(tolerances) < 1 or not all(tol > 0 for tol in tolerances):
        raise ValueError(
            f"tolerances must be a non-empty list of positive numbers, got {list(tolerances)}."
        )
    truth = None
    nfe, errors = [], []
    for tol in tolerances:
        counted = CountedField(func)
        approx = torchdiffeq.odeint(counted, y0, t, rtol=tol, atol=tol, method=method)
        truth = _exact_on(exact, t, approx) if truth is None else truth
        nfe.append(counted.nfe)
        errors.append(float((approx - truth).reshape(len(t), -1).norm(dim=1).max()))
    return AdaptiveStudy(
        method, np.asarray(tolerances, dtype=float), np.array(nfe), np.array(errors)
    )
