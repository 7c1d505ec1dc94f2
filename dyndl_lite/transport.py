"""Discrete optimal transport between two point clouds of equal size.

Both clouds carry uniform weights ``1/m`` and the cost is the squared
Euclidean distance ``c(x, y) = ||x - y||^2``. Between two such empirical
measures the Kantorovich problem has an optimal plan that is a permutation
(Birkhoff-von Neumann), so optimal transport is the *assignment problem*

.. math::  \\sigma^\\star = \\arg\\min_{\\sigma \\in S_m}
           \\sum_{i=1}^m \\|x_i - y_{\\sigma(i)}\\|^2,
           \\qquad W_2(\\mu, \\nu)^2 = \\frac1m \\sum_i \\|x_i - y_{\\sigma^\\star(i)}\\|^2,

solved exactly by POT's network simplex ``ot.emd`` (Flamary et al. 2021; the
default) or by SciPy's ``linear_sum_assignment`` (Jonker-Volgenant).

Exactness is checked, not assumed. The network simplex also returns dual
potentials ``(u, v)``; if ``u_i + v_j <= C_ij`` for every pair and
``u_i + v_{sigma(i)} = C_{i sigma(i)}`` on the assignment (each up to ``eps``),
then for every permutation ``pi``

.. math::  \\sum_i C_{i\\pi(i)} \\ge \\sum_i u_i + \\sum_j v_j - m\\,\\varepsilon
           \\ge \\sum_i C_{i\\sigma(i)} - 2m\\,\\varepsilon,

(weak LP duality), so no permutation is cheaper than ``sigma`` by more than
``2 m eps``. :func:`dual_certificate` computes ``eps``; :func:`ot_map` refuses
a POT answer whose ``eps`` exceeds ``1e-9`` times the largest cost.

Precision. Each cloud is centred before any cost is formed. With means ``a`` of
x and ``b`` of y and centred points ``x~ = x - a``, ``y~ = y - b``,

.. math::  \\sum_i \\|x_i - y_{\\pi(i)}\\|^2
           = \\sum_i \\|\\tilde x_i - \\tilde y_{\\pi(i)}\\|^2 + m \\|a - b\\|^2

for every permutation ``pi`` (the cross terms sum to zero), so the optimal map
is the one of the centred clouds, and its cost matrix, computed as
``|x~_i|^2 + |y~_j|^2 - 2 x~_i . y~_j``, loses no digits to a large common offset
(computed from raw coordinates near 1e7, the same expansion rounds every
entry by about 1e-2). The certificate is checked on that accurate matrix.

Public functions: :func:`ot_map`, :func:`w2`, :func:`mccann`,
:func:`kinetic_energy`, :func:`cost_matrix`, :func:`dual_certificate`.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

ArrayLike = np.ndarray | torch.Tensor
SOLVERS = ("pot", "scipy")
#: largest certificate violation accepted, relative to the largest cost (float64 rounding is ~1e-12)
CERTIFICATE_RTOL = 1e-9
_BLOCK_ROWS = 1024  # rows of the cost matrix handled at once by dual_certificate


def as_numpy(a: ArrayLike, name: str = "array") -> np.ndarray:
    """``a`` as a float64 numpy array (torch tensors are detached and moved to the CPU); real
    numbers only."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(a).__name__}.")
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers, got dtype {a.dtype}; convert it with .astype(float)."
        )
    return a.astype(np.float64, copy=False)


def check_finite(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` unchanged if every entry is finite; else a ``ValueError`` naming ``name`` and the
    first bad index."""
    if not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(
            f"{name} contains NaN or Inf (first at index {bad}); remove or fix those points first."
        )
    return a


def _centred(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x - mean x, y - mean y, mean x - mean y)``: the clouds centred separately, and the shift
    between them."""
    a, b = x.mean(0), y.mean(0)
    return x - a, y - b, a - b


def _expanded_cost(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|x_i|^2 + |y_j|^2 - 2 x_i . y_j``, clipped at 0; accurate to a few ulps of the largest
    |x|^2, |y|^2."""
    return np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T, 0.0)


def _check_clouds(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_numpy(x, "x"), as_numpy(y, "y")
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"x and y must have shape (m, d); got {x.shape} and {y.shape}.")
    if x.shape != y.shape:
        raise ValueError(
            "x and y must be point clouds of the same size and dimension, "
            f"got {x.shape} and {y.shape}; "
            "this module transports uniform measures with equally many points "
            "(subsample the larger one)."
        )
    if len(x) == 0:
        raise ValueError("x and y are empty: need at least one point.")
    if x.shape[1] == 0:
        raise ValueError(
            f"x and y have dimension 0 (shape {x.shape}); points need at least one coordinate."
        )
    return check_finite(x, "x"), check_finite(y, "y")


def cost_matrix(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """``C[i, j] = ||x_i - y_j||^2`` for clouds of shape (m, d), computed without an (m, m, d)
    tensor.

    From the centred clouds: ``C = ||x~_i - y~_j||^2 + 2 (a - b).(x~_i - y~_j) + ||a - b||^2``
    (``a``, ``b`` the means), so a large common offset costs no precision.
    """
    x, y = _check_clouds(x, y)
    xc, yc, shift = _centred(x, y)
    cost = (
        _expanded_cost(xc, yc)
        + 2.0 * ((xc @ shift)[:, None] - (yc @ shift)[None, :])
        + shift @ shift
    )
    return np.maximum(cost, 0.0)


def dual_certificate(cost: np.ndarray, perm: np.ndarray, u: np.ndarray, v: np.ndarray) -> float:
    """Largest violation ``eps`` of the optimality conditions of the assignment ``perm`` with
    potentials (u, v):

    .. math::  \\varepsilon = \\max\\Big(\\max_{i,j}\\,(u_i + v_j - C_{ij}),\\;
               \\max_i\\,|C_{i\\sigma(i)} - u_i - v_{\\sigma(i)}|\\Big).

    ``eps = 0`` proves ``perm`` optimal (dual feasibility plus complementary
    slackness); in general no permutation is cheaper by more than ``2 m eps``.
    The dense check runs in blocks of rows, so it needs no second (m, m) array.
    """
    cost = np.asarray(cost, dtype=np.float64)
    m = len(cost)
    if cost.shape != (m, m) or np.shape(perm) != (m,) or np.shape(u) != (m,) or np.shape(v) != (m,):
        raise ValueError(
            f"need an (m, m) cost and perm, u, v of shape (m,); got {cost.shape}, "
            f"{np.shape(perm)}, {np.shape(u)}, {np.shape(v)}."
        )
    perm = check_permutation(perm, m)
    for array, name in (
        (cost, "cost"),
        (np.asarray(u, dtype=np.float64), "u"),
        (np.asarray(v, dtype=np.float64), "v"),
    ):
        check_finite(array, name)
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    feasibility = max(
        float((u[s : s + _BLOCK_ROWS, None] + v[None, :] - cost[s : s + _BLOCK_ROWS]).max())
        for s in range(0, m, _BLOCK_ROWS)
    )
    slackness = float(np.abs(cost[np.arange(m), perm] - u - v[perm]).max())
    return max(feasibility, slackness, 0.0)


def check_permutation(perm: ArrayLike, m: int, name: str = "perm") -> np.ndarray:
    """``perm`` as an int64 array if it is a permutation of ``0..m-1``; else a ``ValueError``
    naming ``name``."""
    array = np.asarray(perm.detach().cpu() if isinstance(perm, torch.Tensor) else perm)
    if array.shape != (m,) or array.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be an integer array of shape ({m},), "
            f"got {array.dtype} of shape {array.shape}."
        )
    if not np.array_equal(np.sort(array), np.arange(m)):
        raise ValueError(
            f"{name} is not a permutation of 0..{m - 1} (repeated or out-of-range indices); "
            "use ot_map(x, y) to get one."
        )
    return array.astype(np.int64, copy=False)


def ot_map(x: ArrayLike, y: ArrayLike, solver: str = "pot") -> np.ndarray:
    """Exact optimal transport map between uniform clouds: ``x[i]`` goes to ``y[perm[i]]``.

    ``perm`` minimises ``sum_i ||x_i - y_perm(i)||^2`` over all permutations.
    ``solver`` is ``"pot"`` (``ot.emd``, network simplex; its optimal plan is a
    permutation matrix times ``1/m``, and its dual potentials are checked with
    :func:`dual_certificate`) or ``"scipy"`` (``linear_sum_assignment``).
    Both are exact; on point clouds the network simplex is much faster
    (``bench/ot.py``: the cost ``-2 x_i . y_j`` + const has rank d, which slows
    the shortest augmenting paths of Jonker-Volgenant). Both solve the problem of
    the separately centred clouds, which has the same optimal maps (module docstring).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}.")
    x, y = _check_clouds(x, y)
    xc, yc, _ = _centred(x, y)
    cost = _expanded_cost(xc, yc)  # ||x~_i - y~_j||^2: same optimal permutations as ||x_i - y_j||^2
    m = len(cost)
    if solver == "scipy":
        rows, cols = linear_sum_assignment(cost)
        perm = np.empty(m, dtype=np.int64)
        perm[rows] = cols
        return perm
    if not cost.max() > 0:  # all points coincide (after centring): every permutation is optimal
        return np.arange(m, dtype=np.int64)
    import ot  # POT, imported lazily: only this branch needs it

    # unit scale (same optimal plans): potentials and certificate in well-scaled numbers
    cost = cost / cost.max()
    weights = np.full(m, 1.0 / m)
    plan, log = ot.emd(weights, weights, cost, numItermax=max(100_000, 50 * m * m), log=True)
    if log["warning"] is not None:
        raise RuntimeError(f"POT's ot.emd stopped early ({log['warning']}); use solver='scipy'.")
    perm = plan.argmax(axis=1).astype(np.int64)
    if not np.allclose(plan[np.arange(m), perm], 1.0 / m, rtol=1e-6):
        raise RuntimeError(
            "POT's ot.emd returned a plan that is not a permutation; use solver='scipy'."
        )
    eps = dual_certificate(cost, perm, log["u"], log["v"])
    # the cost is scaled to a largest entry of 1: the tolerance is relative
    if eps > CERTIFICATE_RTOL:
        raise RuntimeError(
            "POT's answer is not certified optimal: "
            f"its dual potentials violate the optimality conditions by {eps:.3g} "
            f"of the largest cost; use solver='scipy'."
        )
    return perm


def w2(x: ArrayLike, y: ArrayLike) -> float:
    """2-Wasserstein distance
    ``W_2 = (min_sigma (1/m) sum_i ||x_i - y_sigma(i)||^2)^{1/2}`` (not its square)."""
    x, y = _check_clouds(x, y)
    perm = ot_map(x, y)
    return float(np.sqrt(((x - y[perm]) ** 2).sum(1).mean()))


def mccann(
    x: ArrayLike, y: ArrayLike, t: float | ArrayLike, perm: np.ndarray | None = None
) -> np.ndarray:
    """Displacement (McCann) interpolation ``x_t = (1 - t) x + t y[perm]`` along the OT map.

    ``t`` is a float in [0, 1] (returns shape (m, d)) or a 1-D array of times
    (returns shape (len(t), m, d)). ``perm`` defaults to :func:`ot_map` (x, y).
    """
    x, y = _check_clouds(x, y)
    perm = ot_map(x, y) if perm is None else check_permutation(perm, len(x))
    times = as_numpy(np.asarray(t) if not isinstance(t, torch.Tensor) else t, "t")
    if times.ndim > 1 or not np.all((times >= 0) & (times <= 1)):  # NaN fails both comparisons
        raise ValueError(f"t must be a number or a 1-D array of times in [0, 1], got {t}.")
    target = y[perm]
    if times.ndim == 0:
        return (1.0 - times) * x + times * target
    return (1.0 - times)[:, None, None] * x[None] + times[:, None, None] * target[None]


def mixture(x: ArrayLike, y: ArrayLike, t: float, seed: int = 0) -> np.ndarray:
    """Mixture interpolation ``(1 - t) mu + t nu`` as a cloud of m points: a random ``round(t m)``
    of them from y.

    The *vertical* interpolation of measures, which moves mass by teleporting
    it rather than along paths; contrast with :func:`mccann`.
    """
    x, y = _check_clouds(x, y)
    if (
        isinstance(t, bool)
        or not isinstance(t, (int, float, np.floating, np.integer))
        or not 0 <= t <= 1
    ):
        raise ValueError(f"t must be a number in [0, 1], got {t!r}.")
    chosen = np.random.default_rng(seed).permutation(len(x))[: int(round(t * len(x)))]
    out = x.copy()
    out[chosen] = y[chosen]
    return out


def kinetic_energy(path: ArrayLike) -> float:
    """Action ``int_0^1 ||v_t||^2_{L^2(mu_t)} dt`` of a particle path sampled uniformly on [0, 1].

    ``path`` has shape (K+1, m, d): K+1 snapshots at ``t_k = k/K`` of m
    particles. With ``v_k = K (x_{k+1} - x_k)`` on each step,

    .. math::  E = \\sum_{k=0}^{K-1} \\frac1K \\cdot \\frac1m \\sum_i \\|v_{k,i}\\|^2
                 = K \\sum_k \\frac1m \\sum_i \\|x_{k+1,i} - x_{k,i}\\|^2 .

    For the McCann path E equals ``W_2^2`` exactly; by Benamou-Brenier every
    other path between the same endpoints has ``E >= W_2^2``.
    """
    path = as_numpy(path, "path")
    if path.ndim == 2:
        path = path[:, :, None]
    if path.ndim != 3:
        raise ValueError(f"path must have shape (K+1, m, d), got {path.shape}.")
    if len(path) < 2:
        raise ValueError(f"path needs at least two snapshots (K >= 1), got {len(path)}.")
    if path.shape[1] == 0:
        raise ValueError(f"path holds no particles (shape {path.shape}).")
    check_finite(path, "path")
    steps = len(path) - 1
    return float(steps * ((np.diff(path, axis=0) ** 2).sum(-1).mean(-1)).sum())
