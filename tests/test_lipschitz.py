"""Lipschitz estimates and orientation checks against linear fields, where everything is known in
closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dyndl_lite import lipschitz
from dyndl_lite.models.blocks import ODEBlock
from dyndl_lite.toy import VectorFieldMLP


def linear_field(matrix: torch.Tensor) -> VectorFieldMLP:
    """``f(t, z) = A z`` written as a VectorFieldMLP whose hidden layers are the identity (no
    activation)."""
    field = VectorFieldMLP(dim=2, width=2, depth=1, activation=nn.Identity)
    with torch.no_grad():
        field.net[0].weight.copy_(torch.cat([matrix, torch.zeros(2, 1)], dim=1))
        field.net[0].bias.zero_()
        field.net[2].weight.copy_(torch.eye(2))
        field.net[2].bias.zero_()
    return field


A = torch.tensor([[0.3, -2.0], [1.0, -0.5]])


def test_linear_field_bounds_meet_at_the_spectral_norm():
    field = linear_field(A)
    spectral = torch.linalg.matrix_norm(A, ord=2).item()
    assert lipschitz.norm_product_bound(field) == pytest.approx(spectral, rel=1e-5)
    points = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    estimate = lipschitz.pair_ratio_estimate(
        field, points, torch.linspace(0, 1, 3), pairs_per_time=4000
    )
    # float32 differences over |d| >= 5e-4
    assert 0.99 * spectral <= estimate <= spectral * (1 + 1e-3)


def test_lower_estimate_never_exceeds_upper_bound_for_a_nonlinear_field():
    torch.manual_seed(0)
    field = VectorFieldMLP(dim=2, width=16, depth=2)
    points = torch.randn(300, 2)
    assert lipschitz.pair_ratio_estimate(
        field, points, torch.linspace(0, 1, 5)
    ) <= lipschitz.norm_product_bound(field)


def test_residual_step_and_flow_determinants_match_closed_forms():
    field = linear_field(A)
    x = torch.randn(5, 2)
    h = 1.5
    expected_step = torch.linalg.det(torch.eye(2) + h * A).item()
    assert torch.allclose(
        lipschitz.residual_step_jacobian_det(field, x, h),
        torch.full((5,), expected_step),
        atol=1e-5,
    )
    # Liouville: det of the time-1 flow map of z' = A z is exp(trace A).
    block = ODEBlock(field, t1=1.0, method="rk4", step_size=0.01)
    dets = lipschitz.flow_jacobian_det(block, x)
    assert torch.allclose(dets, torch.full((5,), math.exp(A.trace().item())), rtol=1e-4)


def test_min_pairwise_distance_and_separation_ratios():
    points = torch.tensor(
        [[[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]]
    )
    assert torch.allclose(lipschitz.min_pairwise_distance(points), torch.tensor([1.0, 1.0]))
    ratios = lipschitz.separation_ratios(
        points, torch.zeros_like(points) + torch.tensor([0.0, -1.0])
    )
    assert ratios[0].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="x1 != x2"):
        lipschitz.separation_ratios(points, points)


def test_block_bounds_hold_for_every_pair_and_are_attained_by_a_one_unit_block():
    from dyndl_lite.models.residual import block_bounds, toy_resnet

    torch.manual_seed(0)
    model = toy_resnet(depth=3, hidden=16)
    bounds = block_bounds(model)
    assert all(len(v) == 3 for v in bounds.values()) and np.all(
        bounds["lip"] <= bounds["frobenius"] + 1e-12
    )
    z, w = torch.randn(500, 2) * 3, torch.randn(500, 2) * 3
    with torch.no_grad():
        for k, block in enumerate(model.blocks):
            gz, gw = block(z).double(), block(w).double()
            assert (
                (gz - gw).norm(dim=1) <= bounds["lip"][k] * (z - w).double().norm(dim=1) + 1e-5
            ).all()
            assert (
                gz.norm(dim=1)
                <= bounds["lip"][k] * z.double().norm(dim=1) + bounds["bias"][k] + 1e-5
            ).all()
        # g(z) = 2 * 3 * relu(z_1): Lipschitz constant exactly 6, no bias
        one = toy_resnet(depth=1, hidden=1)
        one.blocks[0].inner.weight.copy_(torch.tensor([[3.0, 0.0]]))
        one.blocks[0].outer.weight.copy_(torch.tensor([[2.0], [0.0]]))
        one.blocks[0].inner.bias.zero_(), one.blocks[0].outer.bias.zero_()
    b = block_bounds(one)
    assert (
        b["lip"][0] == pytest.approx(6.0)
        and b["bias"][0] == 0.0
        and b["frobenius"][0] == pytest.approx(6.5)
    )
