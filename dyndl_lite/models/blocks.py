"""Building blocks shared by the book's networks.

``ODEBlock`` turns a vector field ``f(t, z)`` (an ``nn.Module``) into a layer
``z(0) -> z(t1)`` with

.. math::  z(t_1) = z(0) + \\int_0^{t_1} f(t, z(t))\\, dt,

solved by torchdiffeq's adaptive solvers (``dopri5`` and friends) or by the
package's own fixed-step solvers (``euler``, ``midpoint``, ``rk4``), and counts
the function evaluations of the last forward and backward pass.

:func:`evaluation_mode` is the one place that puts a network in eval mode for a
computation and restores its previous mode afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from dyndl_lite import solvers

FIXED_STEP = tuple(solvers.STEPS)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with ``min(32, channels)`` groups, as in Chen et al.'s reference code."""
    return nn.GroupNorm(min(32, channels), channels)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the ``with`` body with ``model`` in eval mode; restore its previous mode on exit.

    On entry ``was_training = model.training`` and ``model.eval()``; on exit, also when the
    body raises, ``model.train(was_training)``, which sets every submodule back to
    ``was_training`` (a model whose submodules were in mixed modes comes back uniform, as
    ``model.train(...)`` always does). Yields ``model``.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class ConcatConv2d(nn.Module):
    """A 2-D convolution that also sees time: ``conv([t * 1, z])`` with one extra input channel."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels + 1, out_channels, kernel_size, stride, padding, bias=bias
        )

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        time_channel = torch.ones_like(z[:, :1]) * t
        return self.conv(torch.cat([time_channel, z], dim=1))


class CountedField(nn.Module):
    """Wraps a vector field ``f(t, z)`` (a module or any callable) and counts its evaluations in
    ``nfe``.

    The count is the cost measure of an ODE solver: each evaluation of ``f`` is one
    forward pass of the network in a neural ODE.
    """

    def __init__(self, func):
        super().__init__()
        self.func = func
        self.nfe = 0

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.func(t, z)


class ODEBlock(nn.Module):
    """The layer ``z(0) -> z(t1)`` of the ODE ``dz/dt = func(t, z)``.

    Args:
        func: the vector field, an ``nn.Module`` called as ``func(t, z)``.
        t1: integration time; the block integrates over ``[0, t1]``.
        method: ``"dopri5"`` (or another torchdiffeq method) for adaptive steps,
            or one of ``"euler"``, ``"midpoint"``, ``"rk4"`` for the package's
            fixed-step solvers.
        rtol, atol: tolerances of adaptive solvers.
        step_size: internal step of fixed-step solvers (default: one step).
        adjoint: backpropagate with the adjoint method instead of through the
            solver's operations: torchdiffeq's ``odeint_adjoint`` for adaptive
            methods, :func:`dyndl_lite.adjoint.odeint_adjoint` for fixed-step ones.

    After a forward pass ``nfe_forward`` holds the number of function
    evaluations; after a backward pass ``nfe_backward`` holds those of the
    backward pass (zero when backpropagating through the solver, whose cost is
    then in the autograd graph instead).
    """

    def __init__(
        self,
        func: nn.Module,
        t1: float = 1.0,
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-3,
        step_size: float | None = None,
        adjoint: bool = False,
    ):
        super().__init__()
        if not isinstance(func, nn.Module):
            raise TypeError(
                "func must be an nn.Module so that its parameters train, "
                f"got {type(func).__name__}."
            )
        if not t1 > 0:
            raise ValueError(f"t1 must be positive, got {t1}.")
        self.field = CountedField(func)
        self.t1, self.method, self.rtol, self.atol = float(t1), method, rtol, atol
        self.step_size, self.adjoint = step_size, adjoint
        self.nfe_forward = 0

    def extra_repr(self) -> str:
        tolerances = (
            f"rtol={self.rtol}, atol={self.atol}"
            if self.method not in FIXED_STEP
            else f"step_size={self.step_size}"
        )
        return f"t1={self.t1}, method={self.method!r}, {tolerances}, adjoint={self.adjoint}"

    def trajectory(self, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The solution at every time of the grid ``t`` (first dimension ``len(t)``)."""
        t = t.to(z0)
        if self.method in FIXED_STEP:
            if self.adjoint:
                from dyndl_lite.adjoint import odeint_adjoint

                return odeint_adjoint(
                    self.field, z0, t, method=self.method, step_size=self.step_size
                )
            return solvers.odeint(self.field, z0, t, method=self.method, step_size=self.step_size)
        import torchdiffeq

        solve = torchdiffeq.odeint_adjoint if self.adjoint else torchdiffeq.odeint
        return solve(self.field, z0, t, rtol=self.rtol, atol=self.atol, method=self.method)

    def forward(self, z0: torch.Tensor) -> torch.Tensor:
        self.field.nfe = 0
        out = self.trajectory(z0, torch.tensor([0.0, self.t1]))[-1]
        self.nfe_forward = self.field.nfe
        self.field.nfe = 0  # from here on the counter counts the backward pass
        return out

    @property
    def nfe_backward(self) -> int:
        """Function evaluations since the last forward pass: those of the backward pass."""
        return self.field.nfe
