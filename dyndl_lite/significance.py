"""Statistical tests behind the book's verdicts: numbers in, test statistics and p-values out.

Pure functions (no I/O, no models). :mod:`dyndl_lite.verdicts` turns their results into the
words "holds", "does not hold" and "not resolved"; this module only computes.

* :func:`seeds_rule` (Yan et al.'s tables): a mean difference over a few seeds against Student's
  t quantile for the seeds' degrees of freedom plus the test images' binomial error.
* :func:`paired_accuracy_difference` (Chen et al.'s "matches the error"): McNemar's paired
  difference of two classifiers on the same images, with a fixed equivalence margin; its paired
  standard error also judges Gai & Zhang's "better generalization" from per-image outcomes.
* :func:`binomial_difference` (Gai & Zhang's degradation gaps and OTS margins, and accuracies
  without per-image outcomes): two accuracies on ``n`` images each, as independent binomial
  estimates.
* :func:`count_margin` (the degradation count): how many of ``k`` differences are beyond their
  margins, out of how many could be by chance.
* :func:`spearman_permutation` (LSS falls as accuracy rises): the exact permutation p-value of
  Spearman's rho (:func:`rank_correlation` of the :func:`ranks`) over all ``n!`` orderings.
* :func:`seeds_difference`, :func:`wald_se`: the mean difference over seeds and the plain binomial
  error of a rate, as the chapters print them.

NaN or infinite inputs raise ``ValueError``: a p-value from a NaN would be silently wrong.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import special

#: One-sided level of the book's tests.
LEVEL = 0.05
#: The multiplier of the images' binomial standard error in :func:`seeds_rule` and of
#: :func:`binomial_difference`'s ``margin``: ``z_{0.975} = 1.96``, the normal quantile of a
#: two-sided 95 % interval, i.e. a one-sided bound at 2.5 %, stricter than :data:`LEVEL`. Kept as it
#: is (a change would move verdicts); :func:`seeds_rule` explains why its margin stays conservative.
IMAGES_Z = 1.96
#: Largest ``n`` for which :func:`spearman_permutation` enumerates all ``n!`` orderings.
EXACT_PERMUTATION_MAX = 8


def finite(values: Iterable[float] | np.ndarray, name: str) -> np.ndarray:
    """``values`` as a float64 array, or a ``ValueError`` naming ``name`` when it is empty or holds
    NaN or Inf: a p-value or a verdict computed from a NaN would be silently wrong."""
    array = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64)
    if array.size == 0:
        raise ValueError(f"{name} is empty: a test needs at least one value.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values ({array.tolist()}).")
    return array


def _count(n: object, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer (a number of images), got {n!r}.")
    return int(n)


# --------------------------------------------------------------------------- binomial errors


def wald_se(percent: float, n: int) -> float:
    """The plain (Wald) binomial standard error, in percentage points, of a rate measured on ``n``
    images: ``100 sqrt(p (1 - p) / n)`` with ``p = percent / 100`` (zero at 0 and 100 %; chapter 4
    prints it beside each error rate, :func:`accuracy_se` adjusts it for the tests).

    >>> wald_se(50.0, 100)
    5.0
    """
    p = float(finite([percent], "percent")[0]) / 100
    if not 0 <= p <= 1:
        raise ValueError(f"percent must lie in [0, 100], got {percent}.")
    return 100 * math.sqrt(p * (1 - p) / _count(n, "n"))


def accuracy_se(percent: float, n: int) -> float:
    """Binomial standard error, in percentage points, of an accuracy measured on ``n`` images,
    with Agresti and Caffo's adjustment (one success and one failure added, so that 0 or 100 %
    does not claim zero error): ``100 sqrt(q (1 - q) / (n + 2))``, ``q = (n p + 1) / (n + 2)``."""
    p = float(finite([percent], "percent")[0])
    if not 0 <= p <= 100:
        raise ValueError(f"percent must lie in [0, 100], got {p}.")
    n = _count(n, "n")
    q = (n * p / 100 + 1) / (n + 2)
    return 100 * math.sqrt(q * (1 - q) / (n + 2))


def binomial_difference(
    a_percent: float, b_percent: float, n_a: int, n_b: int | None = None
) -> dict:
    """``a - b`` of two accuracies (percent) on ``n_a`` and ``n_b`` images, as independent
    binomial estimates: ``se = sqrt(se_a^2 + se_b^2)`` (:func:`accuracy_se`), ``z = (a - b) / se``,
    two-sided ``p = 2 (1 - Phi(|z|))`` and the margin ``IMAGES_Z se`` (a difference beyond it
    arises by chance with probability about 2.5 % in each direction). The ``se`` assumes the two
    estimates independent. Measured on the same images, the error of the difference is
    ``sqrt(se_a^2 + se_b^2 - 2 cov)``: this ``se`` over-states it (a conservative test) only when
    the two classifiers' per-image correctness is non-negatively correlated, which two accuracies
    cannot show; with per-image outcomes use :func:`paired_accuracy_difference`'s paired ``se``."""
    n_b = n_a if n_b is None else n_b
    se = math.hypot(accuracy_se(a_percent, n_a), accuracy_se(b_percent, n_b))
    d = float(a_percent) - float(b_percent)
    z = d / se
    return {
        "difference": d,
        "se": se,
        "z": z,
        "p_two_sided": float(2 * special.ndtr(-abs(z))),
        "margin": IMAGES_Z * se,
    }


# --------------------------------------------------------------------------- seeds: Student's t


def seeds_difference(ours: Sequence[float], theirs: Sequence[float]) -> dict:
    """Mean, sample std and standard error of the paired differences ``d_s = ours[s] - theirs[s]``
    over seeds s: ``mean = (1/n) sum_s d_s``, ``std`` the sample standard deviation
    (``ddof = 1``) and ``se = std / sqrt(n)``; both ``None`` for a single seed.

    >>> seeds_difference([90.0, 92.0, 94.0], [88.0, 88.0, 88.0])["std"]
    2.0
    """
    a, b = finite(ours, "ours"), finite(theirs, "theirs")
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            "ours and theirs must be 1-D with one value per seed, "
            f"got shapes {a.shape} and {b.shape}."
        )
    d = a - b
    n = len(d)
    std = float(d.std(ddof=1)) if n > 1 else None
    return {
        "mean": float(d.mean()),
        "std": std,
        "se": None if std is None else std / math.sqrt(n),
        "seeds": n,
    }


def t_quantile(df: int, level: float = LEVEL) -> float:
    """The one-sided Student-t quantile ``t_{1 - level, df}`` (6.31 for df = 1, 2.92 for df = 2)."""
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"df (degrees of freedom) must be a positive integer, got {df!r}.")
    if not 0 < level < 0.5:
        raise ValueError(f"level must lie in (0, 0.5), got {level}.")
    return float(special.stdtrit(df, 1 - level))


def seeds_rule(
    differences: Sequence[float], images_se: float | None = None, level: float = LEVEL
) -> dict:
    """Is a difference positive, from its values ``d_s`` over seeds s = 1..n?

    ``mean = mean(d)``, ``se_seeds = std(d, ddof=1) / sqrt(n)``, and the margin

        ``margin = t_{1 - level, n - 1} se_seeds + IMAGES_Z images_se``

    where ``images_se`` is the binomial standard error of ``mean`` from the test images alone
    (:func:`images_se_of_mean`). The first term is a one-sided ``1 - level`` (95 %) bound for the
    seeds' spread (Student's t); the second is ``z_{0.975} = 1.96`` images' standard errors
    (:data:`IMAGES_Z`: the quantile of a two-sided 95 % interval, a one-sided 97.5 % bound). The two
    terms are added linearly, and ``a + b >= sqrt(a^2 + b^2)``, so the margin is at least as wide as
    the root of the sum of their squares: the rule is conservative, its size (the chance of
    "holds" when the true difference is 0) at most ``level`` under the normal approximation.

    Every verdict needs an error term: with one seed ``se_seeds`` is undefined and the margin is
    the images' term alone; with differences identical over seeds ``se_seeds = 0`` and only the
    images' term keeps a difference a few images wide from reading as significant. In both cases a
    missing (``None``) or zero ``images_se`` raises ``ValueError``: pass
    ``images_se=images_se_of_mean(...)`` of the seeds' accuracies and test image counts. Also
    returned: ``t = mean / se_seeds`` and its one-sided ``p = P(T_{n-1} >= t)``, both ``None``
    where they are undefined (one seed, or ``se_seeds = 0``)."""
    d = finite(differences, "differences")
    if d.ndim != 1:
        raise ValueError(f"differences must be 1-D (one per seed), got shape {d.shape}.")
    if images_se is not None and (not math.isfinite(images_se) or images_se < 0):
        raise ValueError(
            f"images_se must be a finite non-negative number or None, got {images_se!r}."
        )
    n = len(d)
    mean = float(d.mean())
    se = None if n == 1 else (0.0 if np.all(d == d[0]) else float(d.std(ddof=1)) / math.sqrt(n))
    if not se and not images_se:
        why = "one seed has no spread" if n == 1 else f"the {n} differences are identical"
        raise ValueError(
            f"images_se is {images_se!r} and {why}, so the verdict would have no error term: pass "
            "images_se, the images' binomial standard error of the mean difference "
            "(images_se_of_mean of the seeds' accuracies and test image counts)."
        )
    images_term = 0.0 if images_se is None else IMAGES_Z * float(images_se)
    if n == 1:
        return {
            "mean": mean,
            "seeds": 1,
            "se_seeds": None,
            "t": None,
            "p_one_sided": None,
            "t_quantile": None,
            "images_se": images_se,
            "margin": images_term,
        }
    t = mean / se if se > 0 else None
    p = float(special.stdtr(n - 1, -t)) if t is not None else None
    q = t_quantile(n - 1, level)
    return {
        "mean": mean,
        "seeds": n,
        "se_seeds": se,
        "t": t,
        "p_one_sided": p,
        "t_quantile": q,
        "images_se": images_se,
        "margin": q * se + images_term,
    }


def images_se_of_mean(
    a_percent: Sequence[float],
    b_percent: Sequence[float],
    images: Sequence[int],
    *,
    same_images: bool,
) -> float:
    """Binomial standard error, in points, of ``mean_s (a_s - b_s)`` over n seeds from the test
    images alone. Seed s measured both accuracies on ``images[s]`` images, and ``se_s`` is the
    standard error of ``a_s - b_s`` from :func:`binomial_difference` (unpaired: it treats the two
    networks' per-image errors as independent, which overstates the error only when their
    per-image correctness is non-negatively correlated, as is usual for two classifiers on the same
    images but not checked here; the records' per-image outcomes would give the paired error).

    * ``same_images=False``: each seed used its own, disjoint images, so the seeds' image-sampling
      errors are independent and ``se = sqrt(sum_s se_s^2) / n``.
    * ``same_images=True``: every seed used the same images, so the image-sampling error is common
      to the seeds and does not average out. Without per-image data the sound bound is the triangle
      inequality ``sd(mean_s e_s) <= mean_s sd(e_s)``: ``se = (1/n) sum_s se_s``.

    With one seed both give ``se_1``. ``same_images`` has no default: the caller must know."""
    if not isinstance(same_images, (bool, np.bool_)):
        raise ValueError(
            "same_images must be True (every seed measured on the same images) or False (each "
            f"seed on its own, disjoint images), got {same_images!r}."
        )
    a, b = finite(a_percent, "a_percent"), finite(b_percent, "b_percent")
    if a.shape != b.shape or a.ndim != 1 or len(images) != len(a):
        raise ValueError(
            f"a_percent, b_percent and images need one value per seed; got {a.shape}, {b.shape} "
            f"and {len(images)}."
        )
    ses = [binomial_difference(x, y, int(m))["se"] for x, y, m in zip(a, b, images, strict=True)]
    if same_images:
        return sum(ses) / len(ses)
    return math.sqrt(sum(s * s for s in ses)) / len(ses)


def paired_images_se(a_correct: np.ndarray, b_correct: np.ndarray) -> float:
    """Standard error, in points, of ``mean_s (acc_a(s) - acc_b(s))`` from the test images alone,
    when every seed s scored both networks on the same ``N`` images and their per-image outcomes
    are known: ``a_correct[s, i]`` whether seed s's network a classified image i correctly.

    The mean difference is the mean over images of ``u_i = mean_s (a_correct[s, i] -
    b_correct[s, i])``, so for images drawn independently from the test distribution

        ``se = 100 std(u, ddof=1) / sqrt(N)``.

    This pairs the networks image by image and counts the images' sampling error once, however
    many seeds share them (the image-clustered error); the seeds' own spread is the other term of
    :func:`seeds_rule`.

    >>> a = np.array([[True, True, False, True]])
    >>> b = np.array([[True, False, False, False]])
    >>> round(paired_images_se(a, b), 1)  # u = (0, 1, 0, 1): 100 * 0.577 / 2
    28.9
    """
    a, b = np.asarray(a_correct), np.asarray(b_correct)
    if a.dtype != bool or b.dtype != bool:
        raise ValueError("a_correct and b_correct must be boolean arrays (per-image correctness).")
    if a.ndim != 2 or a.shape != b.shape or a.shape[1] < 2:
        raise ValueError(
            "a_correct and b_correct must both be (seeds, images) with at least two images, got "
            f"shapes {a.shape} and {b.shape}."
        )
    u = (a.astype(np.float64) - b.astype(np.float64)).mean(axis=0)
    return float(100 * u.std(ddof=1) / math.sqrt(a.shape[1]))


# --------------------------------------------------------------------------- paired: McNemar


def mcnemar_p(a_only: int, discordant: int) -> float:
    """McNemar's exact two-sided p-value: ``a_only`` of ``discordant`` images against
    Binomial(``discordant``, 1/2). The distribution is symmetric, so the outcomes at least as
    unlikely as ``k = a_only`` are those at least as far from ``discordant / 2``:
    ``p = min(1, 2 P(X <= min(k, discordant - k)))`` (1 without discordant images).

    >>> round(mcnemar_p(0, 5), 4)
    0.0625
    """
    if not 0 <= a_only <= discordant:
        raise ValueError(
            f"a_only must lie in [0, discordant], got a_only={a_only}, discordant={discordant}."
        )
    if discordant == 0:
        return 1.0
    k = min(a_only, discordant - a_only)
    return float(min(1.0, 2 * special.bdtr(k, discordant, 0.5)))


def paired_accuracy_difference(
    correct_a: Sequence[bool], correct_b: Sequence[bool], margin: float, level: float = LEVEL
) -> dict:
    """McNemar's paired comparison of two classifiers on the same images, with an equivalence test.

    With ``n10`` images right for a only and ``n01`` right for b only (of ``n``), the difference of
    accuracies is ``d = 100 (n10 - n01) / n`` points with standard error
    ``se = 100 sqrt(((n10 + n01) / n - (d / 100)^2) / n)``. Equivalence within the fixed ``margin``
    (points, chosen before looking) is two one-sided tests at ``level``: the ``1 - 2 level``
    interval ``d -+ z_{1 - level} se`` lies inside ``(-margin, margin)``. ``p_mcnemar`` is McNemar's
    exact two-sided p-value for ``d != 0`` (binomial on the ``n10 + n01`` discordant images).
    Failing to find a difference (large ``p_mcnemar``) is not equivalence: only the interval is.
    """
    a = np.asarray(correct_a)
    b = np.asarray(correct_b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"correct_a and correct_b need one entry per image, same length; got {a.shape} and "
            f"{b.shape}."
        )
    if a.dtype != bool or b.dtype != bool:
        raise ValueError("correct_a and correct_b must be boolean arrays (per-image correctness).")
    if not math.isfinite(margin) or margin <= 0:
        raise ValueError(f"margin must be a positive number of points, got {margin!r}.")
    n = int(a.size)
    n10, n01 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    d = 100 * (n10 - n01) / n
    var = ((n10 + n01) / n - (d / 100) ** 2) / n
    se = 100 * math.sqrt(max(var, 0.0))
    z = float(special.ndtri(1 - level))
    low, high = d - z * se, d + z * se
    discordant = n10 + n01
    p = mcnemar_p(n10, discordant)
    return {
        "images": n,
        "a_only": n10,
        "b_only": n01,
        "difference": d,
        "se": se,
        "interval": (low, high),
        "interval_level": 1 - 2 * level,
        "margin": float(margin),
        "equivalent": bool(-margin < low and high < margin),
        "p_mcnemar": p,
    }


# --------------------------------------------------------------------------- counts


def count_margin(k: int, level: float = LEVEL) -> int:
    """The count of ``k`` independent one-sided tests at ``level`` that chance alone exceeds with
    probability at most ``level``: the smallest ``c`` with ``P(Binomial(k, level) >= c) <= level``.
    A count of "beyond the margin" results is evidence only when it reaches ``c``."""
    k = _count(k, "k")
    for c in range(k + 1):
        at_least_c = 1.0 if c == 0 else special.bdtrc(c - 1, k, level)  # P(X >= c)
        if at_least_c <= level * (1 + 1e-12):  # a tail equal to level, up to rounding
            return c
    return k + 1


# --------------------------------------------------------------------------- Spearman's rho


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing their average rank (as
    :func:`scipy.stats.rankdata`): the values equal to the ``j``-th smallest distinct one take
    the mean of the positions they fill in sorted order.

    >>> ranks([3, 1, 3]).tolist()
    [2.5, 1.0, 2.5]
    """
    _, which, counts = np.unique(finite(values, "values"), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # the last position (1-based) each distinct value fills
    return ((last - counts + 1 + last) / 2)[which]


def _rho(rx: np.ndarray, ry: np.ndarray) -> float:
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: the Pearson correlation of the ranks of ``x`` and ``y`` (:func:`ranks`),

    .. math::  \\rho = \\frac{\\sum_i (r_i - \\bar r)(s_i - \\bar s)}
               {\\sqrt{\\sum_i (r_i - \\bar r)^2 \\sum_i (s_i - \\bar s)^2}};

    NaN when either series is constant.

    >>> rank_correlation([1, 2, 3], [1, 100, 2])  # ranks only, not values
    0.5
    """
    rx, ry = ranks(x), ranks(y)
    if rx.shape != ry.shape or rx.ndim != 1 or len(rx) < 2:
        raise ValueError(
            f"x and y need the same length, at least 2; got {rx.shape} and {ry.shape}."
        )
    return _rho(rx, ry)


def spearman_permutation(x: Sequence[float], y: Sequence[float], draws: int = 100_000) -> dict:
    """Spearman's rho of ``(x, y)`` with permutation p-values under "no association".

    ``rho`` is the Pearson correlation of the (average) ranks. ``p_low = P(rho_pi <= rho)`` and
    ``p_high = P(rho_pi >= rho)`` over the orderings pi of y's ranks: exactly over all ``n!``
    orderings for ``n <= EXACT_PERMUTATION_MAX`` (n = 5: rho <= -0.9 has p = 5/120), otherwise over
    ``draws`` random orderings with a fixed seed, ``p = (1 + hits) / (1 + draws)``. ``exact`` says
    which. A constant series gives ``rho`` NaN and p-values 1."""
    xa, ya = finite(x, "x"), finite(y, "y")
    if xa.shape != ya.shape or xa.ndim != 1 or len(xa) < 2:
        raise ValueError(
            f"x and y need the same length, at least 2; got shapes {xa.shape} and {ya.shape}."
        )
    rx, ry = ranks(xa), ranks(ya)
    rho = _rho(rx, ry)
    n = len(xa)
    if not math.isfinite(rho):
        return {"rho": rho, "points": n, "p_low": 1.0, "p_high": 1.0, "exact": True}
    tol = 1e-12
    exact = n <= EXACT_PERMUTATION_MAX
    if exact:
        orderings = ry[np.array(list(itertools.permutations(range(n))))]
    else:
        rng = np.random.default_rng(0)
        orderings = ry[np.argsort(rng.random((int(draws), n)), axis=1)]
    cx = rx - rx.mean()
    cy = orderings - orderings.mean(axis=1, keepdims=True)
    rhos = (cy @ cx) / np.sqrt((cx @ cx) * (cy * cy).sum(axis=1))
    low, high = int(np.sum(rhos <= rho + tol)), int(np.sum(rhos >= rho - tol))
    if exact:
        p_low, p_high = low / len(rhos), high / len(rhos)
    else:
        p_low, p_high = (1 + low) / (1 + len(rhos)), (1 + high) / (1 + len(rhos))
    return {"rho": rho, "points": n, "p_low": p_low, "p_high": p_high, "exact": exact}
