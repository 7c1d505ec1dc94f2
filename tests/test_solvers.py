import math

import numpy as np
import pytest
import torch
import torchdiffeq

from dyndl_lite.solvers import (
    FLOAT64_STEP_SLACK,
    ORDER,
    check_field_output,
    euler,
    integrate,
    midpoint,
    odeint,
    rk4,
    step_count,
)


def decay_with_forcing(t, y):
    """y' = -2 t y, exact solution y(t) = y(0) exp(-t^2)."""
    return -2 * t * y


def measured_order(method: str) -> float:
    y0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    exact = y0 * math.exp(-4.0)
    steps = np.array([16, 32, 64, 128, 256])
    errors = [
        float((odeint(decay_with_forcing, y0, t, method, step_size=2.0 / n)[-1] - exact).norm())
        for n in steps
    ]
    slope, _ = np.polyfit(np.log(2.0 / steps), np.log(errors), 1)
    return slope


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_convergence_order_matches_theory(method):
    assert abs(measured_order(method) - ORDER[method]) < 0.15


def test_trajectory_shape_and_initial_value():
    y0 = torch.randn(4, 3, dtype=torch.float64)
    t = torch.linspace(0, 1, 6, dtype=torch.float64)
    ys = rk4(lambda t, y: -y, y0, t)
    assert ys.shape == (6, 4, 3)
    assert torch.equal(ys[0], y0)
    assert torch.allclose(ys[-1], y0 * math.exp(-1), rtol=1e-3)
    assert odeint(lambda t, y: -y, y0, t[:1]).shape == (1, 4, 3)


@pytest.mark.parametrize("method", ["euler", "midpoint"])
def test_same_numbers_as_torchdiffeq_fixed_grid(method):
    func = lambda t, y: torch.sin(t) * y - y**3  # noqa: E731
    y0 = torch.tensor([0.3, -1.2], dtype=torch.float64)
    t = torch.linspace(0, 2, 5, dtype=torch.float64)
    ours = odeint(func, y0, t, method, step_size=0.05)
    theirs = torchdiffeq.odeint(func, y0, t, method=method, options={"step_size": 0.05})
    assert torch.allclose(ours, theirs, atol=1e-12)


def test_step_size_subdivides_each_interval():
    func = lambda t, y: torch.cos(t) * y  # noqa: E731
    y0 = torch.ones(1, dtype=torch.float64)
    coarse = euler(func, y0, torch.tensor([0.0, 1.0], dtype=torch.float64), step_size=0.1)[-1]
    fine = euler(func, y0, torch.linspace(0, 1, 11, dtype=torch.float64))[-1]
    assert torch.allclose(coarse, fine, atol=1e-14)


def test_gradients_flow_through_the_solver():
    y0 = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    rate = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    y1 = midpoint(
        lambda t, y: -rate * y, y0, torch.tensor([0.0, 1.0], dtype=torch.float64), step_size=1e-3
    )[-1]
    y1.sum().backward()
    assert math.isclose(y0.grad.item(), math.exp(-0.7), rel_tol=1e-5)
    assert math.isclose(rate.grad.item(), -math.exp(-0.7), rel_tol=1e-5)


def test_integrate_runs_backwards_in_time():
    y1 = torch.tensor([math.exp(-1.0)], dtype=torch.float64)
    back = integrate(
        lambda t, y: -y, y1, torch.tensor([1.0, 0.0], dtype=torch.float64), "rk4", 0.01
    )[-1]
    assert math.isclose(back.item(), 1.0, rel_tol=1e-9)


def test_grid_must_be_strictly_increasing():
    y0 = torch.zeros(2)
    with pytest.raises(ValueError, match=r"strictly increasing.*t\[1\] = 0.5 and t\[2\] = 0.5"):
        odeint(lambda t, y: y, y0, torch.tensor([0.0, 0.5, 0.5, 1.0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        odeint(lambda t, y: y, y0, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="1-D"):
        odeint(lambda t, y: y, y0, torch.zeros(2, 2))


def test_mismatched_dtype_and_type_errors():
    with pytest.raises(TypeError, match="dtype"):
        odeint(lambda t, y: y, torch.zeros(2), torch.tensor([0.0, 1.0], dtype=torch.float64))
    with pytest.raises(TypeError, match="floating"):
        odeint(lambda t, y: y, torch.zeros(2, dtype=torch.int64), torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="torch tensors"):
        odeint(lambda t, y: y, [0.0], torch.tensor([0.0, 1.0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_mismatched_device_is_an_error():
    with pytest.raises(ValueError, match="one device"):
        odeint(lambda t, y: y, torch.zeros(2, device="cuda"), torch.tensor([0.0, 1.0]))


def test_nan_in_the_state_names_the_time():
    blow_up = lambda t, y: torch.where(t > 0.45, torch.full_like(y, float("nan")), y)  # noqa: E731
    with pytest.raises(FloatingPointError, match=r"from t=0\.5 to t=0\.6"):
        euler(blow_up, torch.ones(2), torch.tensor([0.0, 1.0]), step_size=0.1)


def test_bad_method_step_size_and_shape():
    y0, t = torch.ones(2), torch.tensor([0.0, 1.0])
    with pytest.raises(ValueError, match="Unknown method"):
        odeint(lambda t, y: y, y0, t, method="rk45")
    with pytest.raises(ValueError, match="step_size must be positive"):
        odeint(lambda t, y: y, y0, t, step_size=0.0)
    with pytest.raises(ValueError, match="must return a tensor shaped like y"):
        odeint(lambda t, y: y.sum(), y0, t)


# ---------------------------------------------------------------- issue 15: no silent wrong answers


def test_runaway_step_count_is_refused_before_any_work():
    calls = []

    def field(t, y):
        calls.append(1)
        return -y

    y0, t = torch.ones(2, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(
        ValueError, match=r"about 1,000,000,000 steps.*max_steps=1,000,000.*pass max_steps="
    ):
        odeint(field, y0, t, "euler", step_size=1e-9)
    assert calls == []  # refused up front, not after a billion steps
    with pytest.raises(ValueError, match=r"101 steps, more than max_steps=100"):
        # just under 0.01: 101 steps
        euler(field, y0, t, step_size=0.01 * (1 - 1e-4), max_steps=100)
    out = euler(field, y0, t, step_size=0.001, max_steps=1000)  # exactly at the limit: allowed
    assert torch.allclose(out[-1], y0 * (1 - 0.001) ** 1000)
    with pytest.raises(ValueError, match="max_steps must be a positive integer"):
        odeint(field, y0, t, max_steps=0)


def test_nan_initial_state_is_blamed_on_y0_not_the_step():
    y0 = torch.tensor([1.0, float("nan")])
    with pytest.raises(ValueError, match="y0 contains NaN or Inf"):
        odeint(lambda t, y: -y, y0, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="y0 is empty"):
        odeint(lambda t, y: -y, torch.zeros(0), torch.tensor([0.0, 1.0]))


def test_step_size_accepts_any_positive_number_and_names_bad_ones():
    y0, t = torch.ones(1, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    reference = rk4(lambda t, y: -y, y0, t, step_size=0.25)
    for h in (np.float32(0.25), torch.tensor(0.25), 0.25):
        assert torch.equal(rk4(lambda t, y: -y, y0, t, step_size=h), reference)
    for bad in (float("nan"), float("inf"), -0.1):
        with pytest.raises(ValueError, match="step_size must be positive and finite"):
            rk4(lambda t, y: -y, y0, t, step_size=bad)
    with pytest.raises(TypeError, match="step_size must be a positive number"):
        rk4(lambda t, y: -y, y0, t, step_size="0.1")


def test_a_float32_grid_takes_one_step_per_interval_of_the_step_size():
    # linspace(0, 1, 11) in float32 has intervals 0.1 +- 3e-8;
    # each is one Euler step of 0.1, not two
    from dyndl_lite.solvers import _substeps

    t = torch.linspace(0, 1, 11)
    assert [_substeps(t[k], t[k + 1], 0.1) for k in range(10)] == [1] * 10
    # a real remainder still adds a step
    assert _substeps(torch.tensor(0.0), torch.tensor(1.0), 0.3) == 4


def test_step_count_is_the_ceiling_of_span_over_step_up_to_the_relative_slack():
    assert step_count(1.0, 0.3) == 4 and step_count(-1.0, 0.3) == 4  # ceil(3.33), of |span|
    assert step_count(1.0, 0.1) == 10
    assert step_count(0.0, 0.1) == 1 and step_count(0.01, 0.1) == 1  # at least one step
    # 10.00005 steps: 10 within the default slack 1e-5, 11 with the float64 slack 1e-9
    assert step_count(1.0 + 5e-6, 0.1) == 10
    assert step_count(1.0 + 5e-6, 0.1, FLOAT64_STEP_SLACK) == 11


def test_check_field_output_passes_the_state_shape_and_refuses_any_other():
    dy = torch.zeros(2, 3)
    assert check_field_output(dy, torch.Size([2, 3])) is dy
    with pytest.raises(ValueError, match=r"func\(t, z\) returned \(1, 3\) .*shaped like z"):
        check_field_output(torch.zeros(1, 3), torch.Size([2, 3]), "z")  # would broadcast silently
    with pytest.raises(ValueError, match=r"func\(t, y\) returned float"):
        check_field_output(1.0, torch.Size([1]))
