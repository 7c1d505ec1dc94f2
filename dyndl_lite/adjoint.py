"""The adjoint method from scratch: gradients of an ODE solution by solving another ODE backwards.

For ``dz/dt = f(t, z, theta)`` on ``[t0, t1]`` and a loss ``L(z(t1))`` define the
adjoint state ``a(t) = dL/dz(t)`` (a row vector; the slides use ``-dL/dz(t)``).
Then, with ``a(t1) = dL/dz(t1)``,

.. math::

    \\frac{da}{dt} = -a(t) \\frac{\\partial f}{\\partial z}(t, z(t), \\theta),

    \\frac{dL}{d\\theta} = \\int_{t_0}^{t_1} a(t)
    \\frac{\\partial f}{\\partial \\theta}(t, z(t), \\theta)\\, dt,
    \\qquad \\frac{dL}{dz(t_0)} = a(t_0).

The three are solved together, backwards from ``t1`` to ``t0``, as one augmented system
for ``s = [z, a, g]`` with ``g(t1) = 0``:

.. math::

    \\frac{d}{dt}\\begin{bmatrix} z \\\\ a \\\\ g \\end{bmatrix}
    = \\begin{bmatrix} f(t, z, \\theta) \\\\ -a \\partial f/\\partial z \\\\
    -a \\partial f/\\partial \\theta \\end{bmatrix},
    \\qquad g(t_0) = \\frac{dL}{d\\theta}.

``z`` is recomputed backwards instead of stored, so memory does not grow with the number
of steps. Both vector-Jacobian products ``a df/dz`` and ``a df/dtheta`` come from one
reverse-mode call of autograd on ``f`` alone. Gradients with respect to the grid are
``dL/dt_k = (dL/dz(t_k)) f(t_k, z(t_k))`` for ``k >= 1`` and
``dL/dt_0 = -a(t_0) f(t_0, z(t_0))``, where ``a(t_0)`` is the adjoint the backward solve
reaches at ``t_0`` before the direct term ``dL/dz(t_0)`` is added (the output ``z(t_0)`` is
``y0`` itself and does not move with ``t_0``).

Public surface: :func:`odeint_adjoint` (torchdiffeq's call shape) and :func:`solve_backward`
(one backward solve over an interval, exposed so the book can inspect ``z`` reconstructed at
``t0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from dyndl_lite import solvers
from dyndl_lite.solvers import VectorField


class BackwardSolution(NamedTuple):
    """What one backward solve of the augmented system returns at the interval's start ``t0``."""

    z: Tensor  # z(t0) reconstructed by integrating dz/dt = f backwards from z(t1)
    a: Tensor  # a(t0) = dL/dz(t0)
    # dL/dtheta = integral of a df/dtheta over [t0, t1], one per parameter
    grads: tuple[Tensor, ...]


def _as_parameters(func: VectorField, params: Sequence[Tensor] | None) -> tuple[Tensor, ...]:
    if params is not None:
        params = tuple(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"params[{i}] is a {type(p).__name__}, not a tensor; "
                    "pass the tensors func reads."
                )
        return params
    if isinstance(func, nn.Module):
        return tuple(p for p in func.parameters() if p.requires_grad)
    raise TypeError(
        f"func is a {type(func).__name__}, not an nn.Module, so its parameters cannot be found; "
        "make it an nn.Module, or pass params=(tensors func reads) (params=() for none)."
    )


def _augmented_field(
    func: VectorField, params: tuple[Tensor, ...], shape: torch.Size
) -> VectorField:
    """The right-hand side ``[f, -a df/dz, -a df/dtheta]`` on the flat state ``[z, a, g]``."""
    n = shape.numel()

    def field(t: Tensor, state: Tensor) -> Tensor:
        z, a = state[:n].view(shape), state[n : 2 * n].view(shape)
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            dz = solvers.check_field_output(func(t, z), shape, "z")
            if dz.requires_grad:
                vjps = torch.autograd.grad(dz, (z, *params), -a, allow_unused=True)
            else:
                # f reads neither z nor any parameter (e.g. f(t, z) = -0.1 exp(-0.1 t)):
                # both products are 0
                vjps = (None,) * (1 + len(params))
        vjps = [torch.zeros_like(x) if v is None else v for v, x in zip(vjps, (z, *params))]
        return torch.cat([dz.detach().reshape(-1)] + [v.reshape(-1) for v in vjps])

    return field


def solve_backward(
    func: VectorField,
    z1: Tensor,
    a1: Tensor,
    t0: Tensor | float,
    t1: Tensor | float,
    method: str = "rk4",
    step_size: float | None = None,
    params: Sequence[Tensor] | None = None,
    max_steps: int = solvers.MAX_STEPS,
) -> BackwardSolution:
    """Solve the augmented adjoint system from ``t1`` back to ``t0`` with a fixed-step method.

    Starts from ``z(t1) = z1``, ``a(t1) = a1``, ``g(t1) = 0`` and returns ``z(t0)``, ``a(t0)``
    and ``g(t0) = int_{t0}^{t1} a df/dtheta dt``. ``params`` defaults to the trainable
    parameters of ``func`` when it is an ``nn.Module``. ``z1``, ``a1`` and the parameters must
    share one floating dtype and device (a ``TypeError`` says which differs); ``t0``, ``t1`` are
    numbers or one-element tensors, kept in that dtype. A NaN/Inf start is a ``ValueError``;
    NaN or Inf produced by the backward solve itself is a ``FloatingPointError``.
    """
    params = _as_parameters(func, params)
    t0, t1 = _check_backward_problem(z1, a1, t0, t1, params)  # now floats
    # the flat augmented state s = [z, a, g] at t1, with g(t1) = 0
    state = torch.cat(
        [z1.detach().reshape(-1), a1.detach().reshape(-1)]
        + [torch.zeros_like(p).reshape(-1) for p in params]
    )
    # from t1 down to t0 (z1 is floating: no rounding to ints)
    grid = torch.tensor([t1, t0], dtype=z1.dtype, device=z1.device)
    field = _augmented_field(func, params, z1.shape)
    try:
        final = solvers.integrate(field, state, grid, method, step_size, max_steps)[-1]
    except FloatingPointError as error:
        raise FloatingPointError(
            f"NaN or Inf in the adjoint backward solve from t={t1:g} to t={t0:g}: "
            f"{error} "
            "The backward dynamics of z can be unstable where the forward ones contract; "
            "try a smaller step_size, or backpropagate through the solver "
            "(dyndl_lite.solvers.odeint)."
        ) from None
    return _unflatten(final, z1.shape, params)


def _check_backward_problem(
    z1: Tensor, a1: Tensor, t0: Tensor | float, t1: Tensor | float, params: tuple[Tensor, ...]
) -> tuple[float, float]:
    """``(t0, t1)`` as floats, after checking that ``z1`` and ``a1`` are floating tensors of one
    non-empty shape, share their dtype and device with ``params``, and that the times and the
    start are finite (see :func:`solve_backward` for the errors)."""
    for value, name in ((z1, "z1"), (a1, "a1")):
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(
                f"{name} must be a floating torch tensor, got "
                f"{value.dtype if isinstance(value, Tensor) else type(value).__name__}; "
                "use .double() or .float()."
            )
    if a1.shape != z1.shape:
        raise ValueError(
            f"a1 has shape {tuple(a1.shape)} but z1 has {tuple(z1.shape)}; they must match."
        )
    if z1.numel() == 0:
        raise ValueError("z1 is empty; the state needs at least one component.")
    for value, name in ((a1, "a1"), *((p, f"params[{i}]") for i, p in enumerate(params))):
        if value.dtype != z1.dtype or value.device != z1.device:
            raise TypeError(
                f"{name} has dtype {value.dtype} on {value.device} "
                f"but z1 has {z1.dtype} on {z1.device}; "
                "convert them to one dtype and device (e.g. .double())."
            )
    times = []
    for value, name in ((t0, "t0"), (t1, "t1")):
        if isinstance(value, Tensor) and value.numel() != 1 or isinstance(value, bool):
            raise TypeError(f"{name} must be a number or a one-element tensor, got {value!r}.")
        if not torch.isfinite(torch.as_tensor(float(value))):
            raise ValueError(f"{name} must be finite, got {float(value)}.")
        times.append(float(value))
    if not (torch.isfinite(z1).all() and torch.isfinite(a1).all()):
        raise ValueError(
            "The adjoint backward solve starts from a NaN or Inf: "
            "z1 = z(t1) or a1 = dL/dz(t1) is not finite; "
            "check the loss and the forward solution."
        )
    return times[0], times[1]


def _unflatten(state: Tensor, shape: torch.Size, params: tuple[Tensor, ...]) -> BackwardSolution:
    """The flat augmented state ``[z, a, g]`` at ``t0`` as ``z``, ``a`` (shaped like ``z1``) and
    one gradient per parameter (shaped like it)."""
    n = shape.numel()
    grads, offset = [], 2 * n
    for p in params:
        grads.append(state[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
    return BackwardSolution(state[:n].view(shape), state[n : 2 * n].view(shape), tuple(grads))


class _OdeintAdjoint(torch.autograd.Function):
    """Forward: solve without recording a graph. Backward: the augmented system, interval by
    interval."""

    @staticmethod
    def forward(ctx, func, method, step_size, max_steps, y0, t, *params):
        with torch.no_grad():
            trajectory = solvers.integrate(func, y0, t.detach(), method, step_size, max_steps)
        ctx.func, ctx.method, ctx.step_size, ctx.max_steps = func, method, step_size, max_steps
        ctx.save_for_backward(t, trajectory, *params)
        return trajectory

    @staticmethod
    def backward(ctx, grad_trajectory):
        t, trajectory, *params = ctx.saved_tensors
        func, method, step_size, max_steps = ctx.func, ctx.method, ctx.step_size, ctx.max_steps
        params = tuple(params)
        if not torch.isfinite(grad_trajectory).all():
            raise FloatingPointError(
                "The gradient flowing into odeint_adjoint contains NaN or Inf; check the loss."
            )
        a = grad_trajectory[-1]
        z = trajectory[-1]
        grads = [torch.zeros_like(p) for p in params]
        grad_t = torch.zeros_like(t) if ctx.needs_input_grad[5] else None
        with torch.no_grad():
            for k in range(len(t) - 1, 0, -1):
                if grad_t is not None:
                    grad_t[k] = (grad_trajectory[k] * func(t[k], trajectory[k])).sum()
                solution = solve_backward(
                    func,
                    z,
                    a,
                    t[k - 1].detach(),
                    t[k].detach(),
                    method,
                    step_size,
                    params,
                    max_steps,
                )
                grads = [g + dg for g, dg in zip(grads, solution.grads)]
                # continue from the stored forward value at t[k-1], not the reconstruction:
                # this resets the drift of the backward z-solve at every output time
                z = trajectory[k - 1]
                a = solution.a + grad_trajectory[k - 1]
            if grad_t is not None:
                grad_t[0] = -((a - grad_trajectory[0]) * func(t[0], trajectory[0])).sum()
        return (None, None, None, None, a, grad_t, *grads)


def odeint_adjoint(
    func: VectorField,
    y0: Tensor,
    t: Tensor,
    method: str = "rk4",
    step_size: float | None = None,
    params: Sequence[Tensor] | None = None,
    max_steps: int = solvers.MAX_STEPS,
) -> Tensor:
    """Solve ``dy/dt = func(t, y)`` on the grid ``t``; backpropagate with the adjoint method.

    Same call and result as :func:`dyndl_lite.solvers.odeint` (shape ``(len(t), *y0.shape)``),
    but the forward solve records no autograd graph: the backward pass solves the augmented
    system ``[z, a, dL/dtheta]`` from ``t[-1]`` back to ``t[0]`` with the same method and step,
    so memory stays flat in the number of steps, at the price of about twice the function
    evaluations (a forward solve, then a backward one that also evaluates ``func``).

    Args:
        func: the vector field ``f(t, y)``; an ``nn.Module`` whose trainable parameters receive
            gradients, or any callable together with ``params``.
        y0, t, method, step_size, max_steps: as in :func:`dyndl_lite.solvers.odeint` (``max_steps``
            bounds the forward solve and each interval's backward solve).
        params: the tensors ``func`` reads that should receive gradients; defaults to
            ``func.parameters()`` (those with ``requires_grad``).

    Gradients flow to ``y0``, to ``params`` and to ``t``.
    """
    solvers.check_grid(t, y0)
    if method not in solvers.STEPS:
        raise ValueError(f"Unknown method {method!r}; choose one of {sorted(solvers.STEPS)}.")
    params = _as_parameters(func, params)
    for i, p in enumerate(params):
        if p.dtype != y0.dtype or p.device != y0.device:
            raise TypeError(
                f"parameter {i} has dtype {p.dtype} on {p.device} "
                f"but y0 has {y0.dtype} on {y0.device}; "
                "move func and y0 to one dtype and device (e.g. func.double(), y0.double())."
            )
    step_size = solvers._check_step_size(step_size)
    solvers.check_work(t, step_size, max_steps)
    return _OdeintAdjoint.apply(func, method, step_size, max_steps, y0, t, *params)
