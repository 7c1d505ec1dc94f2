"""Fixed-step ODE integrators written out, with torchdiffeq's call shape.

Each solver integrates the initial-value problem

.. math::  \\frac{dy}{dt} = f(t, y), \\qquad y(t_0) = y_0

over a strictly increasing 1-D time grid ``t = (t_0, ..., t_K)`` and returns the
trajectory ``(y(t_0), ..., y(t_K))`` stacked along a new first dimension, of
shape ``(len(t), *y0.shape)``: the same call as ``torchdiffeq.odeint(func, y0, t)``.

Between two grid points the solver takes one step, or, with ``step_size=h``,
as many equal steps as needed so that none is longer than ``h`` up to the relative
slack :data:`STEP_RATIO_SLACK`: a step is at most ``h / (1 - STEP_RATIO_SLACK)``
(see :func:`step_count`). A call whose total step count would exceed ``max_steps``
(default :data:`MAX_STEPS`, one million) is refused before it starts, so that
``step_size=1e-9`` is an error, not a run of a billion steps; pass a larger
``max_steps`` to allow it.

One step of size ``h`` from ``(t, y)``:

* Euler (order 1):     ``y + h f(t, y)``
* midpoint (order 2):  ``y + h f(t + h/2, y + h/2 f(t, y))``
* RK4 (order 4):       ``y + h/6 (k1 + 2 k2 + 2 k3 + k4)`` with the classical stages.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

#: a vector field ``f(t, y)``: time and state in, a tensor shaped like the state out
#: (the call of every solver in the package)
VectorField = Callable[[Tensor, Tensor], Tensor]


def euler_step(func: VectorField, t: Tensor, y: Tensor, h: Tensor) -> Tensor:
    """One explicit Euler step: ``y + h f(t, y)``."""
    return y + h * func(t, y)


def midpoint_step(func: VectorField, t: Tensor, y: Tensor, h: Tensor) -> Tensor:
    """One explicit midpoint step: ``y + h f(t + h/2, y + h/2 f(t, y))``."""
    half = 0.5 * h
    return y + h * func(t + half, y + half * func(t, y))


def rk4_step(func: VectorField, t: Tensor, y: Tensor, h: Tensor) -> Tensor:
    """One classical Runge-Kutta step of order 4: ``y + h/6 (k1 + 2 k2 + 2 k3 + k4)`` with
    ``k1 = f(t, y)``, ``k2 = f(t + h/2, y + h/2 k1)``, ``k3 = f(t + h/2, y + h/2 k2)`` and
    ``k4 = f(t + h, y + h k3)``."""
    half = 0.5 * h
    k1 = func(t, y)
    k2 = func(t + half, y + half * k1)
    k3 = func(t + half, y + half * k2)
    k4 = func(t + h, y + h * k3)
    return y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


STEPS: dict[str, Callable[[VectorField, Tensor, Tensor, Tensor], Tensor]] = {
    "euler": euler_step,
    "midpoint": midpoint_step,
    "rk4": rk4_step,
}
ORDER = {"euler": 1, "midpoint": 2, "rk4": 4}
#: default largest number of steps one solver call may take (override with ``max_steps=``)
MAX_STEPS = 1_000_000


def check_grid(t: Tensor, y0: Tensor, *, increasing: bool = True) -> None:
    """Raise a clear error unless ``t`` is a usable 1-D time grid for ``y0``.

    The grid must be a floating 1-D tensor with the dtype and device of ``y0``,
    finite, and strictly increasing (or strictly decreasing when
    ``increasing=False``).
    """
    if not isinstance(y0, Tensor) or not isinstance(t, Tensor):
        raise TypeError(
            f"y0 and t must be torch tensors, got {type(y0).__name__} and {type(t).__name__}; "
            "wrap them with torch.as_tensor(...)."
        )
    if not y0.is_floating_point():
        raise TypeError(
            f"y0 must be a floating tensor, got dtype {y0.dtype}; use y0.float() or y0.double()."
        )
    if y0.numel() == 0:
        raise ValueError(
            f"y0 is empty (shape {tuple(y0.shape)}); the state needs at least one component."
        )
    if t.ndim != 1 or t.numel() < 1:
        raise ValueError(f"t must be a non-empty 1-D time grid, got shape {tuple(t.shape)}.")
    if t.dtype != y0.dtype:
        raise TypeError(
            f"t has dtype {t.dtype} but y0 has {y0.dtype}; convert with t.to(y0.dtype)."
        )
    if t.device != y0.device:
        raise ValueError(f"t is on {t.device} but y0 is on {y0.device}; move them to one device.")
    if not torch.isfinite(t).all():
        raise ValueError(f"t contains NaN or Inf: {t.tolist()}")
    steps = t[1:] - t[:-1]
    ok = (steps > 0).all() if increasing else (steps < 0).all()
    if not ok:
        bad = int(torch.nonzero(steps <= 0 if increasing else steps >= 0)[0])
        word = "increasing" if increasing else "decreasing"
        raise ValueError(
            f"t must be strictly {word}, but t[{bad}] = {t[bad].item():g} and "
            f"t[{bad + 1}] = {t[bad + 1].item():g}; sort the grid and remove repeated times."
        )


#: relative slack when dividing an interval by the step size: a float32 grid such as
#: ``linspace(0, 1, 11)`` has intervals 0.1 +- 3e-8, which must count as one step of 0.1, not two
STEP_RATIO_SLACK = 1e-5
#: the same slack for a span and a step given as Python floats (float64, e.g. a plotting grid or the
#: steady-state penalty's Euler steps): only their own rounding to absorb
FLOAT64_STEP_SLACK = 1e-9


def step_count(span: float, step_size: float, slack: float = STEP_RATIO_SLACK) -> int:
    """Number of equal steps of about ``h = step_size`` covering an interval of length ``|s|``:

    .. math::  n = \\max\\big(1, \\lceil (|s| / h)\\,(1 - \\varepsilon) \\rceil\\big)

    where ``s = span``; the relative slack ``epsilon = slack`` (default :data:`STEP_RATIO_SLACK`)
    absorbs the rounding of the interval, so a step may exceed ``step_size`` by that
    fraction. ``step_size`` must be positive.
    """
    return max(1, math.ceil(abs(span) / step_size * (1.0 - slack)))


def _substeps(t0: Tensor, t1: Tensor, step_size: float | None) -> int:
    """:func:`step_count` of the interval ``[t0, t1]`` (tensors); 1 when ``step_size`` is None."""
    if step_size is None:
        return 1
    return step_count(float((t1 - t0).detach()), step_size)


def _check_step_size(step_size) -> float | None:
    """``step_size`` as a positive float (or None); a number of any kind (int, numpy, 0-d tensor)
    is accepted."""
    if step_size is None:
        return None
    if isinstance(step_size, Tensor) and step_size.numel() == 1:
        step_size = step_size.item()
    if (
        isinstance(step_size, bool)
        or not isinstance(step_size, (int, float))
        and not hasattr(step_size, "__float__")
    ):
        raise TypeError(
            f"step_size must be a positive number or None, got {type(step_size).__name__}."
        )
    value = float(step_size)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"step_size must be positive and finite, got {step_size!r}.")
    return value


def count_steps(t: Tensor, step_size: float | None) -> int:
    """Number of solver steps over the grid ``t``:
    ``sum_k max(1, ceil(|t_{k+1} - t_k| / step_size * (1 - STEP_RATIO_SLACK)))``, the sum of
    :func:`step_count` over the intervals; ``len(t) - 1`` (one step an interval) when
    ``step_size`` is None."""
    return (
        sum(_substeps(t[k], t[k + 1], step_size) for k in range(len(t) - 1))
        if step_size
        else len(t) - 1
    )


def check_work(t: Tensor, step_size: float | None, max_steps: int = MAX_STEPS) -> int:
    """The step count of a solve over ``t``; a ``ValueError`` naming ``max_steps`` if it exceeds
    ``max_steps``."""
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}.")
    if step_size is not None:  # bound the count in one division before summing interval by interval
        span = float((t[1:] - t[:-1]).detach().abs().sum()) if len(t) > 1 else 0.0
        if span / step_size > 2 * max_steps + len(t):
            steps = math.ceil(span / step_size)
            raise ValueError(
                f"this solve would take about {steps:,} steps "
                f"(step_size={step_size:g} over a time span of {span:g}), "
                f"more than max_steps={max_steps:,}; "
                f"use a larger step_size, or pass max_steps={steps:,} "
                "(or more) to allow it explicitly."
            )
    steps = count_steps(t, step_size)
    if steps > max_steps:
        raise ValueError(
            f"this solve would take {steps:,} steps, more than max_steps={max_steps:,}; "
            "use a larger step_size "
            f"or a coarser grid, or pass max_steps={steps:,} (or more) to allow it explicitly."
        )
    return steps


def check_field_output(dy: object, shape: torch.Size, state: str = "y") -> Tensor:
    """``dy = f(t, state)`` itself if it is a tensor of the state's ``shape``; else a ValueError.

    The check is ``isinstance(dy, Tensor) and dy.shape == shape``; an output of another shape
    must not pass, because broadcasting it against the state would hide the bug. ``state``
    names the state variable in the message (``y`` for a solve, ``z`` for the adjoint).
    """
    if not isinstance(dy, Tensor) or dy.shape != shape:
        got = tuple(dy.shape) if isinstance(dy, Tensor) else type(dy).__name__
        raise ValueError(
            f"func(t, {state}) returned {got} for a state of shape {tuple(shape)}; "
            f"the vector field must return a tensor shaped like {state}."
        )
    return dy


def _shape_checked(func: VectorField, shape: torch.Size) -> VectorField:
    """``func`` whose every output passes :func:`check_field_output` for a state of ``shape``."""

    def checked(t: Tensor, y: Tensor) -> Tensor:
        return check_field_output(func(t, y), shape)

    return checked


def integrate(
    func: VectorField,
    y0: Tensor,
    t: Tensor,
    method: str = "rk4",
    step_size: float | None = None,
    max_steps: int = MAX_STEPS,
) -> Tensor:
    """Integrate over a monotone grid (increasing or decreasing), without grid checks.

    This is the engine behind :func:`odeint`; the adjoint method uses it to run
    backwards in time. It refuses a NaN/Inf initial state and more than
    ``max_steps`` steps, and checks the state for NaN/Inf after every step.
    """
    if method not in STEPS:
        raise ValueError(f"Unknown method {method!r}; choose one of {sorted(STEPS)}.")
    step_size = _check_step_size(step_size)
    if not torch.isfinite(y0).all():
        raise ValueError("y0 contains NaN or Inf; the initial state must be finite.")
    check_work(t, step_size, max_steps)
    step = STEPS[method]
    func = _shape_checked(func, y0.shape)
    y = y0
    trajectory = [y0]
    for k in range(len(t) - 1):
        n = _substeps(t[k], t[k + 1], step_size)
        h = (t[k + 1] - t[k]) / n
        for i in range(n):
            tau = t[k] + i * h
            y_next = step(func, tau, y, h)
            if not torch.isfinite(y_next).all():
                raise FloatingPointError(
                    f"The state became NaN or Inf in the {method} step from t={tau.item():g} "
                    f"to t={(tau + h).item():g}; the step is too large for this problem "
                    "(try a smaller step_size) or the vector field itself returns NaN there."
                )
            y = y_next
        trajectory.append(y)
    return torch.stack(trajectory)


def odeint(
    func: VectorField,
    y0: Tensor,
    t: Tensor,
    method: str = "rk4",
    step_size: float | None = None,
    max_steps: int = MAX_STEPS,
) -> Tensor:
    """Solve ``dy/dt = func(t, y)``, ``y(t[0]) = y0`` on the grid ``t`` with a fixed-step method.

    Args:
        func: the vector field ``f(t, y)``, returning a tensor shaped like ``y``.
        y0: initial state, any shape, floating dtype.
        t: strictly increasing 1-D grid with ``y0``'s dtype and device.
        method: ``"euler"``, ``"midpoint"`` or ``"rk4"``.
        step_size: optional largest internal step; each interval of ``t`` is cut
            into equal steps no longer than this, up to the relative slack
            :data:`STEP_RATIO_SLACK` (see :func:`step_count`).
        max_steps: the most steps the call may take (default one million); a larger
            count is a ``ValueError`` before any work, so raise it explicitly when meant.

    Returns:
        Tensor of shape ``(len(t), *y0.shape)`` with ``y(t[k])`` at index ``k``.
    """
    check_grid(t, y0)
    return integrate(func, y0, t, method, step_size, max_steps)


def euler(
    func: VectorField,
    y0: Tensor,
    t: Tensor,
    step_size: float | None = None,
    max_steps: int = MAX_STEPS,
) -> Tensor:
    """Explicit Euler, order 1: ``y_{n+1} = y_n + h f(t_n, y_n)``. See :func:`odeint`."""
    return odeint(func, y0, t, "euler", step_size, max_steps)


def midpoint(
    func: VectorField,
    y0: Tensor,
    t: Tensor,
    step_size: float | None = None,
    max_steps: int = MAX_STEPS,
) -> Tensor:
    """Explicit midpoint rule, order 2. See :func:`odeint`."""
    return odeint(func, y0, t, "midpoint", step_size, max_steps)


def rk4(
    func: VectorField,
    y0: Tensor,
    t: Tensor,
    step_size: float | None = None,
    max_steps: int = MAX_STEPS,
) -> Tensor:
    """Classical fourth-order Runge-Kutta. See :func:`odeint`."""
    return odeint(func, y0, t, "rk4", step_size, max_steps)
