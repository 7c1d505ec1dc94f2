"""Known answers for dyndl_lite.transport: optimal maps, W2, McCann interpolation, kinetic
energy."""

import itertools

import numpy as np
import ot
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from dyndl_lite.transport import (
    cost_matrix,
    dual_certificate,
    kinetic_energy,
    mccann,
    mixture,
    ot_map,
    w2,
)


def test_monotone_map_is_optimal_in_1d():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.exponential(size=40)
    perm = ot_map(x, y)
    # in 1-D the optimal map sends the k-th smallest x to the k-th smallest y
    expected = np.empty(40, dtype=int)
    expected[np.argsort(x)] = np.argsort(y)
    np.testing.assert_array_equal(perm, expected)


def test_translation_is_optimal_and_w2_is_its_length():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    shift = np.array([0.5, -1.0, 2.0])
    order = rng.permutation(60)
    y = (x + shift)[order]  # y[order^-1[i]] = x[i] + shift
    perm = ot_map(x, y)
    np.testing.assert_array_equal(order[perm], np.arange(60))
    assert w2(x, y) == pytest.approx(np.linalg.norm(shift), rel=1e-10)


def test_brute_force_agrees_on_small_cloud():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    cost = cost_matrix(x, y)
    best = min(itertools.permutations(range(6)), key=lambda p: cost[np.arange(6), p].sum())
    np.testing.assert_array_equal(ot_map(x, y), best)
    np.testing.assert_array_equal(ot_map(x, y, solver="pot"), best)


def test_w2_agrees_with_pot_emd2():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 5)), rng.uniform(size=(200, 5))
    weights = np.full(200, 1 / 200)
    assert w2(x, y) ** 2 == pytest.approx(ot.emd2(weights, weights, ot.dist(x, y)), rel=1e-9)


def test_w2_between_gaussian_samples_approaches_closed_form():
    # W2(N(m1, s1^2 I), N(m2, s2^2 I))^2 = |m1 - m2|^2 + d (s1 - s2)^2 in d dimensions
    rng = np.random.default_rng(4)
    m, d = 2000, 2
    x = rng.normal(0.0, 1.0, size=(m, d))
    y = rng.normal(3.0, 2.0, size=(m, d))
    exact = np.sqrt(d * 3.0**2 + d * (2.0 - 1.0) ** 2)
    # sample W2 converges at rate ~ m^(-1/2) up to logs in d = 2; 3% is a stated, comfortable
    # tolerance at m = 2000
    assert w2(x, y) == pytest.approx(exact, rel=0.03)


def test_accepts_torch_and_rejects_bad_shapes():
    x = torch.randn(10, 2)
    assert w2(x, x) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="same size"):
        ot_map(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="solver"):
        ot_map(x, x, solver="sinkhorn")


def test_mccann_endpoints_and_kinetic_energy_equals_w2_squared():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(50, 2)), rng.normal(2.0, 0.5, size=(50, 2))
    perm = ot_map(x, y)
    path = mccann(x, y, np.linspace(0, 1, 11))
    np.testing.assert_allclose(path[0], x)
    np.testing.assert_allclose(path[-1], y[perm])
    assert kinetic_energy(path) == pytest.approx(w2(x, y) ** 2, rel=1e-10)
    # McCann's path is the geodesic: a constant-speed path along a non-optimal matching costs more
    bad = np.linspace(0, 1, 11)[:, None, None] * (y - x)[None] + x[None]
    assert kinetic_energy(bad) > kinetic_energy(path)


def test_mixture_keeps_points_of_both_measures():
    x, y = np.zeros((10, 2)), np.ones((10, 2))
    mid = mixture(x, y, 0.3)
    assert (mid[:, 0] == 1).sum() == 3
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mccann(x, y, 1.5)


def test_kinetic_energy_rejects_single_snapshot():
    with pytest.raises(ValueError, match="two snapshots"):
        kinetic_energy(np.zeros((1, 4, 2)))


def test_pot_and_scipy_agree_and_pot_duals_certify_the_map():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(300, 8)), rng.normal(1.0, 2.0, size=(300, 8))
    perm = ot_map(x, y, solver="pot")
    np.testing.assert_array_equal(perm, ot_map(x, y, solver="scipy"))
    weights = np.full(300, 1 / 300)
    cost = cost_matrix(x, y)
    _, log = ot.emd(weights, weights, cost, log=True)
    assert dual_certificate(cost, perm, log["u"], log["v"]) < 1e-9 * cost.max()


def test_certificate_bounds_the_gap_to_the_optimum():
    # weak duality: for any potentials, cost(sigma) - cost(optimum) <= 2 m eps
    rng = np.random.default_rng(7)
    m = 40
    cost = cost_matrix(rng.normal(size=(m, 3)), rng.normal(size=(m, 3)))
    optimum = cost[np.arange(m), linear_sum_assignment(cost)[1]].sum()
    for _trial in range(20):
        sigma = rng.permutation(m)
        u, v = rng.normal(size=m), rng.normal(size=m)
        eps = dual_certificate(cost, sigma, u, v)
        assert cost[np.arange(m), sigma].sum() - optimum <= 2 * m * eps + 1e-9
    # a suboptimal assignment is never certified, whatever the potentials
    sigma = linear_sum_assignment(cost)[1].copy()
    sigma[[0, 1]] = sigma[[1, 0]]
    gap = cost[np.arange(m), sigma].sum() - optimum
    assert gap > 0
    _, log = ot.emd(np.full(m, 1 / m), np.full(m, 1 / m), cost, log=True)
    assert dual_certificate(cost, sigma, log["u"], log["v"]) >= gap / (2 * m)


def test_dual_certificate_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        dual_certificate(np.zeros((3, 3)), np.arange(2), np.zeros(3), np.zeros(3))


# ---------------------------------------------------------------- issue 15: no silent wrong answers


def test_far_from_origin_clouds_keep_their_optimal_map_and_w2():
    # unit spread, common offset 1e7: the raw expansion |x|^2 + |y|^2 - 2 x.y
    # rounds each cost by ~1e-2
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = rng.normal(size=(200, 2))
    perm, distance = ot_map(x, y), w2(x, y)
    far_x, far_y = x + 1e7, y + 1e7
    for solver in ("pot", "scipy"):
        np.testing.assert_array_equal(ot_map(far_x, far_y, solver=solver), perm)
    assert w2(far_x, far_y) == pytest.approx(distance, rel=1e-7)
    # differences first: no cancellation
    exact = ((far_x[:, None, :] - far_y[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(cost_matrix(far_x, far_y), exact, rtol=0, atol=1e-6)
    # only the clouds' relative position matters: a shift of y alone moves W2^2 by |shift|^2 + cross
    # terms, but never the map
    np.testing.assert_array_equal(ot_map(x, y + np.array([1e7, -3e6])), perm)


def test_certificate_rejects_a_suboptimal_assignment_on_far_clouds():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 2)) + 1e7, rng.normal(size=(30, 2)) + 1e7
    perm = ot_map(x, y)
    cost = cost_matrix(x - 1e7, y - 1e7)
    _, log = ot.emd(np.full(30, 1 / 30), np.full(30, 1 / 30), cost, log=True)
    assert dual_certificate(cost, perm, log["u"], log["v"]) < 1e-9 * cost.max()
    worse = perm.copy()
    worse[[0, 1]] = worse[[1, 0]]
    # the swap breaks complementary slackness
    assert dual_certificate(cost, worse, log["u"], log["v"]) > 1e-6


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_points_are_named(bad):
    x, y = np.zeros((4, 2)), np.ones((4, 2))
    x_bad = x.copy()
    x_bad[2, 1] = bad
    for call in (lambda: ot_map(x_bad, y), lambda: w2(x_bad, y), lambda: cost_matrix(x_bad, y)):
        with pytest.raises(ValueError, match=r"x contains NaN or Inf \(first at index \(2, 1\)\)"):
            call()
    with pytest.raises(ValueError, match="y contains NaN or Inf"):
        ot_map(y, x_bad)
    with pytest.raises(ValueError, match="path contains NaN or Inf"):
        kinetic_energy(np.stack([x_bad, y]))


def test_mccann_checks_t_and_perm():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    with pytest.raises(ValueError, match=r"t must be .* in \[0, 1\]"):
        mccann(x, y, float("nan"))
    with pytest.raises(ValueError, match=r"t must be .* in \[0, 1\]"):
        mccann(x, y, np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="perm is not a permutation"):
        mccann(x, y, 0.5, perm=np.array([0, 0, 1, 2, 3]))
    with pytest.raises(ValueError, match="perm must be an integer array of shape"):
        mccann(x, y, 0.5, perm=np.arange(4))
    with pytest.raises(ValueError, match=r"t must be a number in \[0, 1\]"):
        mixture(x, y, float("nan"))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        ot_map(np.array([["a"], ["b"]]), y[:2, :1])
