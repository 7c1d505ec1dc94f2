"""The from-scratch adjoint against two independent references, gradcheck, orders, clear errors.

All comparisons run in float64. The adjoint and backpropagation through the solver
differentiate different things (the exact ODE's gradient, discretised by the backward
solve, versus the exact gradient of the discrete forward solve), so they agree up to
the solver's discretisation error O(h^p), not to rounding: the tolerances below are
that error, and one test checks it shrinks at the order p.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchdiffeq
from torch import nn

from dyndl_lite.adjoint import odeint_adjoint, solve_backward
from dyndl_lite.models.blocks import ODEBlock
from dyndl_lite.solvers import odeint
from dyndl_lite.toy import VectorFieldMLP

T = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)


def _problem(seed: int = 0, width: int = 16):
    torch.manual_seed(seed)
    func = VectorFieldMLP(dim=2, width=width).double()
    y0 = torch.randn(5, 2, dtype=torch.float64)
    weights = torch.randn(len(T), 5, 2, dtype=torch.float64)  # L = sum_k <w_k, z(t_k)>
    return func, y0, weights


def _gradients(solve, func, y0, weights, **options) -> torch.Tensor:
    """dL/dy0, dL/dt and dL/dtheta, flattened into one vector."""
    y0 = y0.clone().requires_grad_(True)
    t = T.clone().requires_grad_(True)
    func.zero_grad()
    (solve(func, y0, t, **options) * weights).sum().backward()
    return torch.cat(
        [y0.grad.reshape(-1), t.grad.reshape(-1)] + [p.grad.reshape(-1) for p in func.parameters()]
    )


def test_agrees_with_backprop_through_the_solver_and_with_torchdiffeq():
    func, y0, weights = _problem()
    ours = _gradients(odeint_adjoint, func, y0, weights, method="rk4", step_size=0.02)
    through_solver = _gradients(odeint, func, y0, weights, method="rk4", step_size=0.02)
    reference = _gradients(
        torchdiffeq.odeint_adjoint, func, y0, weights, method="rk4", options={"step_size": 0.02}
    )
    scale = through_solver.abs().max()
    # rk4 with h = 0.02: discretisation error ~ h^4 = 1.6e-7 times derivatives of f;
    # rounding is ~1e-15
    assert (ours - through_solver).abs().max() < 1e-8 * scale
    assert (ours - reference).abs().max() < 1e-8 * scale
    assert (ours - through_solver).abs().max() > 0  # not the same computation


@pytest.mark.parametrize("method, order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_gap_to_backprop_shrinks_at_the_solver_order(method, order):
    func, y0, weights = _problem(1)
    steps = (0.1, 0.05) if order > 1 else (0.02, 0.01)
    gaps = []
    for h in steps:
        diff = _gradients(
            odeint_adjoint, func, y0, weights, method=method, step_size=h
        ) - _gradients(odeint, func, y0, weights, method=method, step_size=h)
        gaps.append(diff.abs().max().item())
    observed = math.log2(gaps[0] / gaps[1])
    assert observed == pytest.approx(order, abs=0.35)


def test_gradcheck():
    torch.manual_seed(2)
    func = VectorFieldMLP(dim=2, width=4).double()
    y0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    params = list(func.parameters())
    # the finite differences of gradcheck see the discrete solver; step 0.02 keeps the O(h^4) gap
    # below its tolerance
    assert torch.autograd.gradcheck(
        lambda y, *p: odeint_adjoint(func, y, T, "rk4", 0.02), (y0, *params)
    )


def test_time_gradients_match_the_closed_form():
    # dz/dt = lam z: L = z(t1) = z0 exp(lam (t1 - t0)), dL/dt1 = lam L, dL/dt0 = -lam L
    lam = nn.Parameter(torch.tensor(-0.7, dtype=torch.float64))
    t = torch.tensor([0.2, 1.5], dtype=torch.float64, requires_grad=True)
    z0 = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    z1 = odeint_adjoint(lambda s, z: lam * z, z0, t, "rk4", 0.01, params=(lam,))[-1]
    z1.sum().backward()
    exact = 2.0 * math.exp(-0.7 * 1.3)
    assert t.grad.tolist() == pytest.approx([0.7 * exact, -0.7 * exact], rel=1e-8)
    assert z0.grad.item() == pytest.approx(math.exp(-0.7 * 1.3), rel=1e-8)
    assert lam.grad.item() == pytest.approx(1.3 * exact, rel=1e-8)  # dL/dlam = (t1 - t0) L


@pytest.mark.parametrize("method, order", [("euler", 1), ("midpoint", 3), ("rk4", 5)])
def test_backward_reconstruction_of_z0_converges_at_the_round_trip_order(method, order):
    """Forward then backward on the same grid: error O(h^p) for odd order p, O(h^(p+1)) for even p.

    One step h then one step -h of a method with local error C(z) h^(p+1) gives
    z + C h^(p+1) + C (-h)^(p+1) + O(h^(p+2)): for even p the two local errors cancel.
    """
    func, y0, _ = _problem(3)
    t0, t1 = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    errors = []
    for h in (0.1, 0.05):
        z1 = odeint(func, y0, torch.stack([t0, t1]), method, h)[-1]
        back = solve_backward(func, z1, torch.zeros_like(z1), t0, t1, method, h)
        errors.append((back.z - y0).abs().max().item())
    assert math.log2(errors[0] / errors[1]) == pytest.approx(order, abs=0.35)


def test_odeblock_routes_fixed_step_adjoint_here():
    func, y0, _ = _problem(4)
    with_adjoint = ODEBlock(func, method="rk4", step_size=0.05, adjoint=True)
    with_adjoint(y0).sum().backward()
    grads = [p.grad.clone() for p in func.parameters()]
    # 20 steps of 4 evaluations each way
    assert with_adjoint.nfe_forward == 80 and with_adjoint.nfe_backward == 80
    func.zero_grad()
    ODEBlock(func, method="rk4", step_size=0.05)(y0).sum().backward()
    for g, p in zip(grads, func.parameters()):
        assert torch.allclose(g, p.grad, rtol=1e-6, atol=1e-9)


def test_bad_input_is_explained():
    y0 = torch.zeros(2)
    with pytest.raises(TypeError, match="not an nn.Module"):
        odeint_adjoint(lambda t, z: -z, y0, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        odeint_adjoint(VectorFieldMLP(dim=2), y0, torch.tensor([0.0, 1.0, 1.0]))

    # stable forward (Euler factor -0.9), backward factor 2.9 per step overflows
    class FastDecay(nn.Module):
        def __init__(self):
            super().__init__()
            self.rate = nn.Parameter(torch.tensor(1000.0))

        def forward(self, t, z):
            return -self.rate * z

    out = odeint_adjoint(
        FastDecay(), torch.ones(3, requires_grad=True), torch.tensor([0.0, 1.0]), "euler", 0.0019
    )
    assert torch.isfinite(out).all()
    with pytest.raises(FloatingPointError, match="adjoint backward solve"):
        out[-1].sum().backward()
    with pytest.raises(ValueError, match=r"func\(t, z\) returned \(\) .*shaped like z"):
        solve_backward(lambda t, z: z.sum(), y0, y0, 0.0, 1.0, params=())  # would broadcast


# ---------------------------------------------------------------- issue 15: no silent wrong answers


def test_field_that_does_not_read_the_state_has_zero_vjps():
    def forcing(t, z):  # dz/dt = -0.1 exp(-0.1 t): independent of z and of any parameter
        return torch.full_like(z, 1.0) * (-0.1 * torch.exp(-0.1 * t))

    y0 = torch.ones(3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    out = odeint_adjoint(forcing, y0, t, "rk4", 0.1, params=())
    exact = 1.0 + torch.exp(-0.1 * t) - 1.0  # z(t) = z0 + exp(-0.1 t) - 1
    assert torch.allclose(out[:, 0], exact, atol=1e-10)
    out[-1].sum().backward()
    assert torch.equal(y0.grad, torch.ones(3, dtype=torch.float64))  # dz(T)/dz0 = I
    back = solve_backward(
        forcing, out[-1].detach(), torch.ones(3, dtype=torch.float64), 0.0, 2.0, "rk4", 0.1, ()
    )
    assert torch.allclose(back.z, y0.detach(), atol=1e-10) and torch.equal(
        back.a, torch.ones(3, dtype=torch.float64)
    )


def test_solve_backward_keeps_the_time_grid_and_checks_dtypes():
    func = nn.Linear(2, 2, bias=False).double()
    z1, a1 = torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    with pytest.raises(TypeError, match="z1 must be a floating torch tensor"):
        solve_backward(
            lambda t, z: -z,
            torch.ones(2, dtype=torch.int64),
            torch.ones(2, dtype=torch.int64),
            0.0,
            0.5,
            params=(),
        )
    with pytest.raises(TypeError, match=r"a1 has dtype torch.float32.*z1 has torch.float64"):
        solve_backward(
            lambda t, z: func(z), z1, a1.float(), 0.0, 1.0, params=tuple(func.parameters())
        )
    with pytest.raises(TypeError, match=r"params\[0\] has dtype torch.float32"):
        solve_backward(
            lambda t, z: func.float()(z.float()).double(),
            z1,
            a1,
            0.0,
            1.0,
            params=(torch.zeros(2, 2),),
        )
    with pytest.raises(ValueError, match="t0 must be finite"):
        solve_backward(lambda t, z: -z, z1, a1, float("nan"), 1.0, params=())
    with pytest.raises(ValueError, match="z1 = z\\(t1\\) or a1 = dL/dz\\(t1\\) is not finite"):
        solve_backward(lambda t, z: -z, z1 * float("nan"), a1, 0.0, 1.0, params=())
    # a fractional interval is integrated as given (an integer grid would have rounded 0.5 to 0)
    back = solve_backward(
        lambda t, z: -z, z1, torch.zeros(2, dtype=torch.float64), 0.0, 0.5, "rk4", 0.01, params=()
    )
    assert torch.allclose(back.z, z1 * math.exp(0.5), rtol=1e-8)


def test_adjoint_refuses_runaway_step_counts():
    func, y0, t = VectorFieldMLP(dim=2).double(), torch.zeros(1, 2, dtype=torch.float64), T
    with pytest.raises(ValueError, match="max_steps"):
        odeint_adjoint(func, y0, t, "euler", 1e-8)
    out = odeint_adjoint(func, y0, t, "euler", 0.01, max_steps=100)
    assert out.shape == (3, 1, 2)
