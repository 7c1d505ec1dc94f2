"""Known answers for dyndl_lite.transport: optimal maps, W2, McCann interpolation, kinetic energy."""

import itertools

import numpy as np
import ot
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from dyndl_lite.transport import cost_matrix, dual_certificate, kinetic_energy, mccann, mixture, ot_map, w2


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
    # sample W2 converges at rate ~ m^(-1/2) up to logs in d = 2; 3% is a stated, comfortable tolerance at m = 2000
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
    for trial in range(20):
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
