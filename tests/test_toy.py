"""Toy data and vector fields: shapes, determinism, geometry, clear errors."""

from __future__ import annotations

import pytest
import torch

from dyndl_lite.toy import (
    ToyODENet,
    VectorFieldMLP,
    concentric_circles,
    reflection_1d,
    two_moons,
    two_spirals,
)


def test_two_spirals_are_point_reflections_of_each_other():
    x, y = two_spirals(200, noise=0.0, seed=3)
    assert x.shape == (200, 2) and y.shape == (200,) and x.dtype == torch.float32
    assert (y == 0).sum() == (y == 1).sum() == 100
    # without noise, class 1 is class 0 rotated by pi: the radius r(s) = s matches the angle 4 pi s
    r = x.norm(dim=1)
    angle = torch.atan2(x[:, 1], x[:, 0])
    expected = 4 * torch.pi * r + torch.pi * y
    assert torch.allclose(torch.cos(angle), torch.cos(expected), atol=1e-4)


def test_data_are_deterministic_for_a_seed():
    assert torch.equal(two_spirals(seed=1)[0], two_spirals(seed=1)[0])
    assert not torch.equal(two_spirals(seed=1)[0], two_spirals(seed=2)[0])


def test_concentric_circles_radii():
    x, y = concentric_circles(300, inner=0.5, ring=(1.0, 1.5))
    r = x.norm(dim=1)
    assert (r[y == 0] <= 0.5 + 1e-6).all()
    assert ((r[y == 1] >= 1.0 - 1e-6) & (r[y == 1] <= 1.5 + 1e-6)).all()


def test_reflection_targets():
    x, target = reflection_1d(9)
    assert torch.equal(target, -x) and x.shape == (9, 1)


def test_vector_field_shapes_and_time_dependence():
    f = VectorFieldMLP(dim=3, width=8)
    z = torch.randn(5, 3)
    assert f(torch.tensor(0.0), z).shape == (5, 3)
    assert not torch.allclose(f(torch.tensor(0.0), z), f(torch.tensor(1.0), z))
    autonomous = VectorFieldMLP(dim=3, width=8, time_dependent=False)
    assert torch.equal(autonomous(torch.tensor(0.0), z), autonomous(torch.tensor(1.0), z))


def test_toy_odenet_flow_starts_at_the_lifted_input():
    torch.manual_seed(0)
    net = ToyODENet(in_dim=2, out_dim=2, augment=1, width=8)
    x = torch.randn(4, 2)
    traj = net.flow(x, torch.linspace(0, 1, 3))
    assert traj.shape == (3, 4, 3)
    assert torch.equal(traj[0, :, :2], x) and torch.equal(traj[0, :, 2], torch.zeros(4))
    assert net(x).shape == (4, 2)
    assert net.block.nfe_forward == 40  # rk4, step 0.1 on [0, 1]: 10 steps of 4 evaluations


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: two_spirals(1), "at least 2"),
        (lambda: two_spirals(10, noise=-1.0), "non-negative"),
        (lambda: concentric_circles(10, inner=2.0), "inner < ring"),
        (lambda: VectorFieldMLP(dim=2)(torch.tensor(0.0), torch.zeros(3, 4)), "R\\^2"),
        (lambda: ToyODENet(augment=-1), "augment"),
    ],
)
def test_bad_input_is_explained(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_projection_readout_returns_the_flow_itself():
    net = ToyODENet(in_dim=1, out_dim=1, augment=1, width=8, linear_readout=False)
    x = torch.linspace(-1, 1, 5).unsqueeze(1)
    assert torch.equal(net(x), net.flow(x, torch.tensor([0.0, 1.0]))[-1, :, :1])
    with pytest.raises(ValueError, match="out_dim <= in_dim"):
        ToyODENet(in_dim=1, out_dim=3, linear_readout=False)


def test_two_moons_is_seeded_balanced_and_checked():
    x, y = two_moons(100, seed=3)
    x2, _ = two_moons(100, seed=3)
    assert x.shape == (100, 2) and x.dtype == torch.float32 and torch.equal(x, x2)
    assert (y == 0).sum() == (y == 1).sum() == 50
    clean, _ = two_moons(10, noise=0.0)
    assert torch.allclose(clean[:5].norm(dim=1), torch.ones(5))  # class 0 lies on the unit circle
    for bad in ({"n": 1}, {"noise": -0.1}, {"seed": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            two_moons(**bad)
