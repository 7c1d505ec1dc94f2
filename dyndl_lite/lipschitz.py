"""Lipschitz constants of vector fields, and the two robustness theorems checked numerically.

For an ODE ``dz/dt = f(t, z)`` whose field is ``C``-Lipschitz in ``z``, Gronwall's
inequality gives, for two solutions started at ``x1`` and ``x2``,

.. math::  e^{-Ct} \\|x_1 - x_2\\| \\le \\|z_1(t) - z_2(t)\\| \\le e^{Ct} \\|x_1 - x_2\\|,

so distinct trajectories never meet (Theorem 1) and never separate faster than
``e^{Ct}`` (Theorem 2). This module estimates ``C`` for a trained field two ways,

* :func:`norm_product_bound`, an upper bound: for
  ``f(t, z) = W_L s(... s(W_1 [z, t] + b_1) ...) + b_L`` with a 1-Lipschitz
  activation ``s``, ``Lip_z f <= ||W_L||_2 ... ||W_2||_2 ||W_1^{(z)}||_2``,
  where ``W_1^{(z)}`` are the columns of ``W_1`` that multiply ``z``;
* :func:`pair_ratio_estimate`, a lower estimate:
  ``max ||f(t, z_2) - f(t, z_1)|| / ||z_2 - z_1||`` over many sampled pairs,

and provides the measurements behind the chapter's figures: pairwise distances
along trajectories (:func:`min_pairwise_distance`), the separation ratios of
Theorem 2 (:func:`separation_ratios`) and the orientation of a residual step
``x + h f(0, x)`` (:func:`residual_step_jacobian_det`), which an ODE flow always
preserves and a large step can reverse.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def norm_product_bound(field: nn.Module) -> float:
    """``prod_k ||W_k||_2`` over the linear layers of ``field.net`` (first layer: its ``z``
    columns only).

    An upper bound on ``sup_t Lip_z f(t, .)`` when every activation between the
    linear layers is 1-Lipschitz (tanh, ReLU). ``field`` is a
    :class:`dyndl_lite.toy.VectorFieldMLP` or any module with an ``nn.Sequential``
    ``net`` of linear layers and activations, taking ``[z, t]`` as input.
    """
    net = getattr(field, "net", None)
    if not isinstance(net, nn.Sequential):
        raise TypeError(
            "field must have an nn.Sequential `net` of Linear layers "
            "(e.g. dyndl_lite.toy.VectorFieldMLP)."
        )
    linears = [m for m in net if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("field.net holds no nn.Linear layer.")
    dim = getattr(field, "dim", linears[0].in_features)
    bound = 1.0
    with torch.no_grad():
        for k, layer in enumerate(linears):
            weight = layer.weight[:, :dim] if k == 0 else layer.weight
            bound *= torch.linalg.matrix_norm(weight, ord=2).item()
    return bound


def pair_ratio_estimate(
    field: nn.Module,
    points: Tensor,
    times: Tensor,
    pairs_per_time: int = 2000,
    radius: float = 0.05,
    seed: int = 0,
) -> float:
    """``max ||f(t, z + d) - f(t, z)|| / ||d||`` over random ``z`` from ``points``, ``t`` in
    ``times``, ``0 < ||d|| <= radius``.

    Every ratio is a lower bound on ``Lip_z f``; their maximum is a lower estimate of it.
    """
    if points.ndim != 2 or len(points) < 1:
        raise ValueError(f"points must have shape (n, dim), got {tuple(points.shape)}.")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}.")
    g = torch.Generator().manual_seed(seed)
    best = 0.0
    with torch.no_grad():
        for t in times:
            z = points[torch.randint(len(points), (pairs_per_time,), generator=g)]
            d = torch.randn(z.shape, generator=g)
            d = (
                d
                / d.norm(dim=1, keepdim=True)
                * radius
                * (0.01 + 0.99 * torch.rand(len(z), 1, generator=g))
            )
            ratio = (field(t, z + d) - field(t, z)).norm(dim=1) / d.norm(dim=1)
            best = max(best, ratio.max().item())
    return best


def min_pairwise_distance(trajectories: Tensor) -> Tensor:
    """``m(t_k) = min_{i < j} ||z_i(t_k) - z_j(t_k)||`` for trajectories of shape
    ``(K, n, dim)``."""
    if trajectories.ndim != 3 or trajectories.shape[1] < 2:
        raise ValueError(
            f"trajectories must have shape (times, n >= 2, dim), got {tuple(trajectories.shape)}."
        )
    distances = torch.cdist(trajectories, trajectories)
    n = distances.shape[1]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=distances.device)
    return distances[:, off_diagonal].min(dim=1).values


def separation_ratios(trajectories_1: Tensor, trajectories_2: Tensor) -> Tensor:
    """``||z_1(t_k) - z_2(t_k)|| / ||z_1(t_0) - z_2(t_0)||`` per pair, shape ``(K, n)``:
    Theorem 2's left side over its scale."""
    if trajectories_1.shape != trajectories_2.shape or trajectories_1.ndim != 3:
        raise ValueError("both trajectories must have the same shape (times, n, dim).")
    gaps = (trajectories_1 - trajectories_2).norm(dim=-1)
    if (gaps[0] == 0).any():
        raise ValueError("some pairs start at the same point; Theorem 2 needs x1 != x2.")
    return gaps / gaps[0]


def rowwise_jacobian(func, x: Tensor) -> Tensor:
    """Jacobians ``d func(x)_i / d x_i`` of a row-wise map ``(n, dim) -> (n, dim)``, shape
    ``(n, dim, dim)``.

    Row ``k`` of every Jacobian is the gradient of ``sum_i func(x)_{i,k}``, since
    row ``i`` of the output depends only on row ``i`` of the input.
    """
    if x.ndim != 2:
        raise ValueError(f"x must have shape (n, dim), got {tuple(x.shape)}.")
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = func(x)
        rows = [
            torch.autograd.grad(out[:, k].sum(), x, retain_graph=k + 1 < out.shape[1])[0]
            for k in range(out.shape[1])
        ]
    return torch.stack(rows, dim=1).detach()


def residual_step_jacobian_det(field: nn.Module, x: Tensor, h: float, t: float = 0.0) -> Tensor:
    """``det(I + h df/dz(t, x))`` at every row of ``x`` (shape ``(n, dim)``): the Jacobian of
    one residual step.

    A negative value means the step ``x -> x + h f(t, x)`` reverses orientation
    near ``x``; values of both signs on a connected open set prove the step is not
    injective there (a fold). The flow map of
    an ODE has Jacobian determinant ``exp(int_0^T div f dt) > 0`` (Liouville's
    formula), so an exact solution never folds.
    """
    time = torch.tensor(float(t), dtype=x.dtype)
    return torch.linalg.det(rowwise_jacobian(lambda z: z + h * field(time, z), x))


def flow_jacobian_det(flow_map, x: Tensor) -> Tensor:
    """``det(d flow_map / dx)`` at every row of ``x``; ``flow_map`` maps ``(n, dim) -> (n, dim)``
    row-wise."""
    return torch.linalg.det(rowwise_jacobian(flow_map, x))
