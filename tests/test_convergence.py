"""dyndl_lite.convergence: measured orders, NFE counts and the log-log fit."""

import math

import numpy as np
import pytest
import torch

from dyndl_lite.convergence import (
    adaptive_study,
    convergence_study,
    global_error,
    loglog_slope,
)
from dyndl_lite.models.blocks import CountedField
from dyndl_lite.solvers import ORDER


def growth(t, y):
    """y' = y cos t, exact y(t) = y(0) exp(sin t): depends on t, so a wrong stage time is caught."""
    return y * torch.cos(t)


def growth_exact(t):
    return torch.exp(torch.sin(t))[:, None] * torch.tensor([1.0, -2.0], dtype=t.dtype)


Y0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
SPAN = (0.0, 2.0)


def test_loglog_slope_recovers_power_law():
    h = np.array([0.1, 0.05, 0.025, 0.0125])
    slope, intercept = loglog_slope(h, 3.0 * h**2.5)
    assert slope == pytest.approx(2.5, abs=1e-12)
    assert math.exp(intercept) == pytest.approx(3.0, rel=1e-10)


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_measured_order_matches_theory(method):
    study = convergence_study(growth, Y0, growth_exact, SPAN, [16, 32, 64, 128, 256], method)
    assert abs(study.order - ORDER[method]) < 0.15
    assert np.all(np.diff(study.errors) < 0), "the error must shrink as h does"
    assert study.predicted(study.step_sizes) == pytest.approx(study.errors, rel=0.3)


def test_nfe_counts_every_stage():
    study = convergence_study(growth, Y0, growth_exact, SPAN, [10, 20], "rk4")
    assert study.nfe.tolist() == [40, 80]
    assert study.step_sizes == pytest.approx([0.2, 0.1])


def test_global_error_is_max_over_the_grid_not_the_end_point():
    # Euler on y' = cos t, y(0) = 0 over a full period: the end-point error is tiny by symmetry,
    # the error in the middle is not.
    def field(t, y):
        return torch.cos(t).expand_as(y)

    def exact(t):
        return torch.sin(t)[:, None]

    y0 = torch.zeros(1, dtype=torch.float64)
    n = 8
    err = global_error(field, y0, exact, (0.0, 2 * math.pi), n, "euler")
    t = torch.linspace(0, 2 * math.pi, n + 1, dtype=torch.float64)
    euler = torch.cumsum(
        torch.cat([torch.zeros(1, dtype=torch.float64), (t[1] - t[0]) * torch.cos(t[:-1])]), 0
    )
    assert abs(euler[-1] - 0) < 1e-12
    assert err == pytest.approx(float((euler - torch.sin(t)).abs().max()), rel=1e-12)
    assert err > 0.3


def test_accepts_a_solver_callable():
    calls = []

    def my_euler(func, y0, t):
        calls.append(len(t))
        ys = [y0]
        for k in range(len(t) - 1):
            ys.append(ys[-1] + (t[k + 1] - t[k]) * func(t[k], ys[-1]))
        return torch.stack(ys)

    study = convergence_study(growth, Y0, growth_exact, SPAN, [32, 64, 128], my_euler)
    assert calls == [33, 65, 129]
    assert study.method == "my_euler" and abs(study.order - 1) < 0.15


def test_adaptive_study_error_and_cost_move_with_tolerance():
    t = torch.linspace(*SPAN, 11, dtype=torch.float64)
    study = adaptive_study(growth, Y0, growth_exact, t, [1e-3, 1e-6, 1e-9])
    assert np.all(np.diff(study.nfe) > 0), "tighter tolerance must cost more evaluations"
    assert np.all(np.diff(study.errors) < 0), "tighter tolerance must give a smaller error"
    assert study.errors[-1] < 1e-7


def test_counted_field_counts_calls():
    counted = CountedField(lambda t, y: -y)
    y = torch.ones(2)
    for _ in range(3):
        counted(torch.tensor(0.0), y)
    assert counted.nfe == 3


@pytest.mark.parametrize(
    "x, y, match",
    [
        ([0.1], [0.2], "at least two"),
        ([0.1, 0.2], [0.0, 1e-3], "positive finite"),
        ([0.1, 0.2], [float("nan"), 1e-3], "diverged"),
        ([0.1, 0.2, 0.3], [1.0, 2.0], "same length"),
    ],
)
def test_loglog_slope_rejects_bad_points(x, y, match):
    with pytest.raises(ValueError, match=match):
        loglog_slope(x, y)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="at least two different"):
        convergence_study(growth, Y0, growth_exact, SPAN, [8, 8])
    with pytest.raises(ValueError, match="positive integers"):
        convergence_study(growth, Y0, growth_exact, SPAN, [0, 8])
    with pytest.raises(ValueError, match="t1 > t0"):
        global_error(growth, Y0, growth_exact, (1.0, 0.0), 8)
    with pytest.raises(ValueError, match="exact\\(t\\) returned"):
        global_error(growth, Y0, lambda t: torch.exp(torch.sin(t)), SPAN, 8)
    with pytest.raises(TypeError, match="method must be"):
        global_error(growth, Y0, growth_exact, SPAN, 8, method=3)
    with pytest.raises(ValueError, match="positive numbers"):
        adaptive_study(
            growth, Y0, growth_exact, torch.linspace(0, 1, 3, dtype=torch.float64), [1e-3, 0.0]
        )


def test_stability_function_is_the_taylor_polynomial_of_the_method_order():
    from dyndl_lite.convergence import stability_function

    w = np.array([-2.0, -2.785, -1.0 + 1.5j, 0.3j, 0.5])
    taylor = {p: sum(w**j / math.factorial(j) for j in range(p + 1)) for p in (1, 2, 4)}
    for method, p in ORDER.items():
        np.testing.assert_allclose(stability_function(method, w), taylor[p], rtol=1e-12, atol=1e-12)
    assert abs(stability_function("euler", -2.2)) > 1 > abs(stability_function("euler", -1.9))


def test_euler_error_respects_the_gronwall_bound():
    """E(h) <= M h / (2L) (exp(L (t1 - t0)) - 1) for y' = y cos t (L = 1, M = max |y''| = e)."""
    study = convergence_study(
        growth, Y0[:1], lambda t: growth_exact(t)[:, :1], SPAN, [8, 16, 32, 64], "euler"
    )
    bound = math.e * study.step_sizes / 2 * math.expm1(SPAN[1] - SPAN[0])
    assert np.all(study.errors <= bound)
    assert np.all(study.errors > bound / 1e3), "the bound is pessimistic, not vacuous"
