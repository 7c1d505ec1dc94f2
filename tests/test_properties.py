"""Property-based tests (Hypothesis) of the public functions of solvers, adjoint, attacks,
transport, geodesic.

Two kinds of property, for each function:

* any finite input of valid shape gives a finite result that satisfies the function's
  contract (a trajectory starts at y0; an adjoint gradient agrees with backpropagation; a
  perturbation stays in its ball and in [0, 1]; an OT map is a permutation whose cost no
  swap of two targets lowers; LSS >= 1; OTS in [0, 1]; the track lower bound is at most
  both distances it is made of);
* any input with NaN/Inf, an empty tensor, a wrong dtype or a wrong shape raises a
  ``ValueError`` or ``TypeError`` whose message names the argument.

The profile is fixed (``derandomize=True``, no example database, no deadline) so that CI
runs the same examples every time, in seconds.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from dyndl_lite import attacks, geodesic, solvers, transport
from dyndl_lite.adjoint import odeint_adjoint, solve_backward

PROFILE = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)

finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False, width=64)
bad_value = st.sampled_from([float("nan"), float("inf"), float("-inf")])


def clouds(max_m: int = 7, max_d: int = 3):
    """Two point clouds (m, d) of equal shape with finite coordinates."""
    return st.tuples(st.integers(1, max_m), st.integers(1, max_d)).flatmap(
        lambda shape: st.tuples(
            arrays(np.float64, shape, elements=finite), arrays(np.float64, shape, elements=finite)
        )
    )


def with_bad_entry(array: np.ndarray, data) -> np.ndarray:
    """``array`` with one entry replaced by NaN or +-Inf, drawn by Hypothesis."""
    out = array.copy()
    index = tuple(data.draw(st.integers(0, n - 1)) for n in out.shape)
    out[index] = data.draw(bad_value)
    return out


def raises_naming(name: str, exceptions=(ValueError, TypeError)):
    """``pytest.raises`` for a ValueError/TypeError whose message names the argument ``name``."""
    return pytest.raises(exceptions, match=rf"(^|\W){re.escape(name)}\W")


# --------------------------------------------------------------------------- solvers


@PROFILE
@given(
    y0=arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 3)), elements=finite),
    rate=st.floats(-2.0, 2.0),
    method=st.sampled_from(sorted(solvers.STEPS)),
    steps=st.integers(1, 20),
)
def test_solver_trajectory_is_finite_and_starts_at_y0(y0, rate, method, steps):
    y0 = torch.from_numpy(y0)
    t = torch.linspace(0.0, 1.0, 4, dtype=torch.float64)
    out = solvers.odeint(lambda t, y: rate * y, y0, t, method, step_size=1.0 / steps)
    assert out.shape == (4, *y0.shape) and torch.isfinite(out).all()
    assert torch.equal(out[0], y0)
    # a linear field keeps each component's sign and scales it by one factor per time
    factor = out[-1][y0 != 0] / y0[y0 != 0]
    assert torch.allclose(factor, factor[:1].expand_as(factor)) if len(factor) else True


@PROFILE
@given(y0=arrays(np.float64, st.integers(1, 4), elements=finite), data=st.data())
def test_solver_refuses_non_finite_y0_and_t(y0, data):
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    with raises_naming("y0"):
        solvers.odeint(lambda t, y: -y, torch.from_numpy(with_bad_entry(y0, data)), t)
    with raises_naming("t"):
        solvers.odeint(
            lambda t, y: -y, torch.from_numpy(y0), torch.from_numpy(with_bad_entry(t.numpy(), data))
        )


@PROFILE
@given(dtype=st.sampled_from([torch.int64, torch.int32, torch.bool]), n=st.integers(0, 3))
def test_solver_refuses_wrong_dtypes_and_empty_states(dtype, n):
    t = torch.tensor([0.0, 1.0])
    with raises_naming("y0"):
        solvers.odeint(lambda t, y: -y, torch.zeros(3, dtype=dtype), t)
    with raises_naming("y0"):
        solvers.odeint(lambda t, y: -y, torch.zeros(0, n), t)
    with raises_naming("t"):
        solvers.odeint(lambda t, y: -y, torch.zeros(2), torch.zeros(2, 2))


# --------------------------------------------------------------------------- adjoint


@PROFILE
@given(
    a=arrays(np.float64, (2, 2), elements=st.floats(-1.0, 1.0)),
    y0=arrays(np.float64, (3, 2), elements=st.floats(-2.0, 2.0)),
)
def test_adjoint_gradient_agrees_with_backpropagation(a, y0):
    field = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        field.weight.copy_(torch.from_numpy(a))
    func = lambda t, z: field(z)  # noqa: E731
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    grads = []
    for solve in (
        lambda y: odeint_adjoint(func, y, t, "rk4", 0.05, params=tuple(field.parameters())),
        lambda y: solvers.odeint(func, y, t, "rk4", 0.05),
    ):
        y = torch.from_numpy(y0).requires_grad_(True)
        field.zero_grad()
        solve(y)[1:].square().sum().backward()
        grads.append((y.grad.clone(), field.weight.grad.clone()))
        assert torch.isfinite(grads[-1][0]).all() and torch.isfinite(grads[-1][1]).all()
    for ours, reference in zip(*grads):  # the two differ by the discretisation error O(h^4)
        assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-5)


@PROFILE
@given(z=arrays(np.float64, st.integers(1, 4), elements=finite), data=st.data())
def test_adjoint_refuses_non_finite_and_mismatched_input(z, data):
    z1 = torch.from_numpy(z)
    with raises_naming("y0"):
        odeint_adjoint(
            lambda t, y: -y,
            torch.from_numpy(with_bad_entry(z, data)),
            torch.tensor([0.0, 1.0], dtype=torch.float64),
            params=(),
        )
    with raises_naming("a1"):
        solve_backward(
            lambda t, y: -y, z1, torch.from_numpy(with_bad_entry(z, data)), 0.0, 1.0, params=()
        )
    with raises_naming("a1"):
        solve_backward(lambda t, y: -y, z1, z1.float(), 0.0, 1.0, params=())
    with raises_naming("z1"):
        solve_backward(lambda t, y: -y, z1.long(), z1.long(), 0.0, 1.0, params=())


# --------------------------------------------------------------------------- attacks


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


images = arrays(
    np.float32,
    st.tuples(st.integers(1, 5), st.just(1), st.just(2), st.just(2)),
    elements=st.floats(0.0, 1.0, width=32),
)


@PROFILE
@given(
    x=images,
    eps=st.floats(0.0, 0.5),
    steps=st.integers(1, 4),
    random_start=st.booleans(),
    data=st.data(),
)
def test_perturbations_stay_in_their_ball_and_the_box(x, eps, steps, random_start, data):
    x = torch.from_numpy(x)
    y = torch.tensor(data.draw(st.lists(st.integers(0, 2), min_size=len(x), max_size=len(x))))
    model = tiny_model()
    generator = torch.Generator().manual_seed(0)
    for adv in (
        attacks.fgsm(model, x, y, eps),
        attacks.pgd(model, x, y, eps, steps=steps, random_start=random_start, generator=generator),
        *attacks.fgsm_sweep(model, x, y, [0.0, eps]),
    ):
        assert adv.shape == x.shape and torch.isfinite(adv).all()
        assert (adv - x).abs().max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    noisy = attacks.gaussian(x, 255 * eps, generator=generator)
    assert torch.isfinite(noisy).all() and noisy.min() >= 0 and noisy.max() <= 1


@PROFILE
@given(x=images, data=st.data())
def test_attacks_refuse_bad_images_eps_and_labels(x, data):
    model, y = tiny_model(), torch.zeros(len(x), dtype=torch.int64)
    with raises_naming("images"):
        attacks.fgsm(model, torch.from_numpy(with_bad_entry(x, data)), y, 0.1)
    with raises_naming("images"):
        attacks.pgd(model, torch.from_numpy(x).double().long(), y, 0.1)
    with raises_naming("images"):
        attacks.gaussian(torch.zeros(0, 1, 2, 2), 1.0)
    with raises_naming("eps"):
        attacks.fgsm(
            model, torch.from_numpy(x), y, data.draw(bad_value | st.floats(max_value=-1e-9))
        )
    with raises_naming("sigma"):
        attacks.gaussian(torch.from_numpy(x), data.draw(bad_value))
    with raises_naming("labels"):
        attacks.fgsm(model, torch.from_numpy(x), y.float(), 0.1)
    with raises_naming("labels"):
        attacks.fgsm(model, torch.from_numpy(x), torch.zeros(len(x) + 1, dtype=torch.int64), 0.1)


# --------------------------------------------------------------------------- transport


@PROFILE
@given(pair=clouds(), solver=st.sampled_from(transport.SOLVERS), offset=st.sampled_from([0.0, 1e6]))
def test_ot_map_is_a_permutation_no_swap_improves(pair, solver, offset):
    x, y = pair
    perm = transport.ot_map(x + offset, y + offset, solver=solver)
    m = len(x)
    assert sorted(perm.tolist()) == list(range(m))
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)  # exact differences, no offset
    tol = 1e-9 * max(1.0, cost.max())
    for i in range(m):
        for j in range(i + 1, m):  # swapping the targets of i and j never lowers the total cost
            assert cost[i, perm[i]] + cost[j, perm[j]] <= cost[i, perm[j]] + cost[j, perm[i]] + tol
    w = transport.w2(x + offset, y + offset)
    assert np.isfinite(w) and w >= 0
    assert w == pytest.approx(np.sqrt(cost[np.arange(m), perm].mean()), rel=1e-6, abs=1e-6)
    # W2(x, x) = 0 up to rounding: squared costs carry ~1e-16 relative error,
    # so W2 ~1e-8 of the scale
    assert transport.w2(x, x) <= 1e-7 * max(1.0, np.abs(x).max())


@PROFILE
@given(pair=clouds(), t=st.floats(0.0, 1.0))
def test_mccann_path_is_straight_with_kinetic_energy_w2_squared(pair, t):
    x, y = pair
    perm = transport.ot_map(x, y)
    path = transport.mccann(x, y, np.linspace(0.0, 1.0, 5), perm=perm)
    assert np.allclose(path[0], x) and np.allclose(path[-1], y[perm])
    assert np.allclose(transport.mccann(x, y, t, perm=perm), (1 - t) * x + t * y[perm])
    assert transport.kinetic_energy(path) == pytest.approx(
        transport.w2(x, y) ** 2, rel=1e-9, abs=1e-9
    )


@PROFILE
@given(pair=clouds(), data=st.data())
def test_transport_refuses_bad_points_times_and_perms(pair, data):
    x, y = pair
    with raises_naming("x"):
        transport.ot_map(with_bad_entry(x, data), y)
    with raises_naming("y"):
        transport.w2(x, with_bad_entry(y, data))
    with raises_naming("x"):
        transport.ot_map(x.astype(str), y)
    with pytest.raises(ValueError, match=r"x and y"):
        transport.ot_map(x, np.vstack([y, y]))
    with pytest.raises(ValueError, match=r"x and y"):
        transport.ot_map(x[:0], y[:0])
    with raises_naming("t"):
        transport.mccann(x, y, data.draw(bad_value | st.floats(1.0001, 10)))
    if len(x) > 1:
        with raises_naming("perm"):
            transport.mccann(x, y, 0.5, perm=np.zeros(len(x), dtype=np.int64))
    with raises_naming("path"):
        transport.kinetic_energy(with_bad_entry(np.stack([x, y]), data))


# --------------------------------------------------------------------------- geodesic


def track_batches(max_layers: int = 5, max_m: int = 4, max_d: int = 3):
    return st.tuples(
        st.integers(2, max_layers), st.integers(1, max_m), st.integers(1, max_d)
    ).flatmap(lambda shape: arrays(np.float64, shape, elements=finite))


@PROFILE
@given(track=track_batches())
def test_lss_is_at_least_one(track):
    steps = np.linalg.norm(np.diff(track, axis=0), axis=-1)
    assume(np.all(steps > 1e-6))
    score = geodesic.lss(track)
    assert score.shape == (track.shape[1],)
    # n / ||sum of n unit vectors|| >= 1 (inf if they cancel exactly)
    assert np.all(score >= 1 - 1e-9)
    single = geodesic.lss(track[:, 0])
    assert single == pytest.approx(score[0])


@PROFILE
@given(pair=clouds(max_m=5), solver=st.sampled_from(transport.SOLVERS))
def test_ots_is_a_fraction_and_one_for_the_optimal_map(pair, solver):
    x, y = pair
    score = geodesic.ots(x, y, solver=solver)
    assert 0.0 <= score <= 1.0
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    totals = sorted(
        cost[np.arange(len(x)), list(p)].sum() for p in itertools.permutations(range(len(x)))
    )
    # a unique optimal map
    if len(totals) == 1 or totals[1] - totals[0] > 1e-6 * max(1.0, totals[0]):
        assert geodesic.ots(x, y[transport.ot_map(x, y, solver=solver)], solver=solver) == 1.0


@PROFILE
@given(
    points=st.tuples(st.integers(1, 4), st.integers(1, 3)).flatmap(
        lambda shape: st.tuples(*[arrays(np.float64, shape, elements=finite) for _ in range(4)])
    )
)
def test_track_lower_bound_is_finite_and_below_both_distances(points):
    x1, x2, fx1, fx2 = points
    bound = geodesic.track_lower_bound(x1, x2, fx1, fx2)
    a, b = np.linalg.norm(x1 - x2, axis=-1), np.linalg.norm(fx1 - fx2, axis=-1)
    assert np.all(np.isfinite(bound)) and np.all(bound >= 0)
    assert np.all(bound <= np.minimum(a, b) * (1 + 1e-12) + 1e-300)
    track1, track2 = np.stack([x1, fx1]), np.stack([x2, fx2])
    assert np.all(geodesic.track_distance(track1, track2) >= 0)


@PROFILE
@given(track=track_batches(), data=st.data())
def test_geodesic_refuses_bad_tracks(track, data):
    with raises_naming("track"):
        geodesic.lss(with_bad_entry(track, data))
    with raises_naming("track"):
        geodesic.track_distance(track, with_bad_entry(track, data))
    with raises_naming("track"):
        geodesic.lss(track[:, :0])
    with raises_naming("track"):
        geodesic.lss(track[:1])
    with raises_naming("fx"):
        geodesic.ots(track[0], with_bad_entry(track[-1], data))
    with raises_naming("fx2"):
        geodesic.track_lower_bound(track[0], track[0], track[-1], with_bad_entry(track[-1], data))
