"""Verdicts: does a paper's claim hold in our runs? Table rows in, verdict rows out.

Pure functions (no I/O, no models): the chapters measure, these functions apply a
stated rule to the measured numbers, and the chapters print the result. Each
rule is in the docstring of its function, so the book's prose can point here.

* :func:`yan` (Yan et al. 2020, Tables 1-2): per column, the difference
  ``ODENet - CNN`` of accuracies, mean and spread over seeds.
* :func:`chen` (Chen et al. 2018, Table 1): per model, whether the book's target
  error is met; and the claim "the ODE-Net matches the ResNet's error with a
  third of the parameters" from the error gap and the parameter ratio.
* :func:`gai` (Gai & Zhang 2021): per weight decay, whether the residual
  network is straighter (lower LSS) and more optimal (higher OTS) than the plain
  one, by more than two standard errors of the images' sampling;
  :func:`falls_as_rises`: whether LSS falls as training accuracy rises (sign of
  a rank correlation).

Verdict words are the constants :data:`HOLDS`, :data:`FAILS` and
:data:`UNRESOLVED`; NaN or infinite inputs raise ``ValueError`` (a verdict from
a NaN would be silently wrong).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

HOLDS = "holds"
FAILS = "does not hold"
UNRESOLVED = "not resolved"

#: The book's targets on the official MNIST test set (issue 13): test error in %, at most.
CHEN_TARGETS = {"mlp": 1.8, "resnet": 0.6, "rknet": 0.6, "odenet": 0.6}
#: "A third of the parameters": the claim needs the ResNet to have at least this many times the
#: ODE-Net's.
CHEN_PARAMETER_RATIO = 2.0


def _finite(values: Iterable[float], name: str) -> np.ndarray:
    array = np.asarray(
        list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64
    )
    if array.size == 0:
        raise ValueError(f"{name} is empty: a verdict needs at least one measurement.")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} contains NaN or infinite values ({array.tolist()}): no verdict from those."
        )
    return array


# --------------------------------------------------------------------------- Yan et al. (2020)


def difference(ours: Sequence[float], theirs: Sequence[float]) -> dict:
    """Mean, sample std and standard error of the paired differences ``ours[s] - theirs[s]`` over
    seeds s.

    ``mean = (1/n) sum_s d_s`` with ``d_s = ours[s] - theirs[s]``; ``std`` is the sample standard
    deviation (``ddof = 1``) of the ``d_s`` and ``se = std / sqrt(n)``; both are ``None`` for a
    single seed.
    """
    a, b = _finite(ours, "ours"), _finite(theirs, "theirs")
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


def sign_verdict(mean: float, margin: float | None) -> str:
    """The claim "the difference is positive": :data:`HOLDS` when ``mean > margin``, :data:`FAILS`
    when ``mean < -margin``, else :data:`UNRESOLVED` (the difference lies within the margin of zero,
    or is exactly zero). ``margin=None`` is a margin of zero: the sign alone decides."""
    mean = float(_finite([mean], "mean")[0])
    if margin is not None and (not math.isfinite(margin) or margin < 0):
        raise ValueError(f"margin must be a finite non-negative number or None, got {margin!r}.")
    margin = 0.0 if margin is None else margin
    if mean > margin:
        return HOLDS
    if mean < -margin:
        return FAILS
    return UNRESOLVED


def accuracy_difference_se(a_percent: float, b_percent: float, n: int) -> float:
    """Standard error, in percentage points, of the difference of two accuracies each measured on
    ``n`` images, as independent binomial estimates with Agresti and Caffo's adjustment (one success
    and one failure added to each, so that an accuracy of 0 or 100 % does not claim zero error):
    ``100 sqrt(q_a (1 - q_a) / (n + 2) + q_b (1 - q_b) / (n + 2))`` with
    ``q = (n p + 1) / (n + 2)``."""
    a, b = (float(x) for x in _finite([a_percent, b_percent], "accuracies"))
    if not (0 <= a <= 100 and 0 <= b <= 100):
        raise ValueError(f"accuracies must lie in [0, 100], got {a} and {b}.")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (images) must be a positive integer, got {n!r}.")
    q = [(n * p / 100 + 1) / (n + 2) for p in (a, b)]
    return 100 * math.sqrt(sum(x * (1 - x) for x in q) / (n + 2))


def yan(
    columns: Sequence[str],
    odenet_seeds: Sequence[Sequence[float]],
    cnn_seeds: Sequence[Sequence[float]],
    paper: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    images: Sequence[int] | None = None,
) -> list[dict]:
    """One verdict row per column of Yan et al.'s table: is the ODENet more robust than the CNN?

    Rule: with ``d_s = acc_ODENet(seed s) - acc_CNN(seed s)`` in percentage points (seeds paired,
    as the two networks of one seed share the data order, the noise draw and the test images), the
    claim holds for the column when ``mean(d)`` exceeds its margin, and fails when it is below
    minus the margin (:func:`sign_verdict`). The margin is two standard errors, as in
    :func:`chen`: with at least two seeds, ``2 std(d)/sqrt(n)`` over seeds (for many seeds about a
    95 % test; for two or three seeds a weaker one, where Student's t would ask for 12.7 or 4.3
    standard errors); with one seed and ``images[j]`` (the images column j was measured on), two
    binomial standard errors of the difference (:func:`accuracy_difference_se`, the test images'
    sampling error alone), so that a difference of a few images out of a thousand is not read as a
    verdict; with one seed and no counts, the sign alone. ``odenet_seeds[s][j]`` is seed s's
    accuracy in column j.
    With ``paper`` (``{"cnn": [(mean, std), ...], "odenet": [...]}``) each row also carries the
    paper's difference of means.
    """
    ode, cnn = (
        _finite(np.asarray(odenet_seeds, dtype=float), "odenet_seeds"),
        _finite(np.asarray(cnn_seeds, dtype=float), "cnn_seeds"),
    )
    if ode.ndim != 2 or ode.shape != cnn.shape or ode.shape[1] != len(columns):
        raise ValueError(
            f"odenet_seeds and cnn_seeds must both be (seeds, {len(columns)} columns); "
            f"got {ode.shape} and {cnn.shape}."
        )
    if images is not None and len(images) != len(columns):
        raise ValueError(
            f"images must give one count per column ({len(columns)}), got {len(images)}."
        )
    rows = []
    for j, column in enumerate(columns):
        diff = difference(ode[:, j], cnn[:, j])
        if diff["se"] is None and images is not None:  # one seed: the test images' sampling error
            diff["se"] = accuracy_difference_se(float(ode[0, j]), float(cnn[0, j]), int(images[j]))
            diff["se_kind"] = f"binomial, {int(images[j]):,} images"
        margin = None if diff["se"] is None else 2 * diff["se"]
        row = {
            "column": column,
            "odenet": float(ode[:, j].mean()),
            "cnn": float(cnn[:, j].mean()),
            **diff,
            "verdict": sign_verdict(diff["mean"], margin),
        }
        if paper is not None:
            row["paper_difference"] = paper["odenet"][j][0] - paper["cnn"][j][0]
            row["paper_verdict"] = (
                HOLDS
                if row["paper_difference"] > 0
                else (FAILS if row["paper_difference"] < 0 else UNRESOLVED)
            )
        rows.append(row)
    return rows


def count(rows: Iterable[Mapping], key: str = "verdict") -> dict[str, int]:
    """How many rows have each verdict: ``{HOLDS: k, FAILS: l, UNRESOLVED: m}``."""
    out = {HOLDS: 0, FAILS: 0, UNRESOLVED: 0}
    for row in rows:
        out[row[key]] += 1
    return out


# --------------------------------------------------------------------------- Chen et al. (2018)


def binomial_se(error_percent: float, n: int) -> float:
    """Standard error, in percentage points, of an error rate measured on ``n`` test images:
    ``100 sqrt(p (1 - p) / n)`` with ``p = error_percent / 100``."""
    p = float(_finite([error_percent], "error_percent")[0]) / 100
    if not 0 <= p <= 1:
        raise ValueError(f"error_percent must lie in [0, 100], got {error_percent}.")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (test images) must be a positive integer, got {n!r}.")
    return 100 * math.sqrt(p * (1 - p) / n)


def chen(
    rows: Sequence[Mapping], test_images: int, targets: Mapping[str, float] = CHEN_TARGETS
) -> dict:
    """Chen et al.'s Table 1 judged from our rows (``model``, ``test_error_percent``,
    ``parameters``, ``paper_test_error_percent``; measured on ``test_images`` images).

    Per model: ``target_met = error <= targets[model]`` and the gap to the paper, ``error - paper``.

    The claim "the ODE-Net matches the ResNet's error with a third of the parameters":
    ``gap = err_ODE - err_ResNet`` (points) and ``ratio = params_ResNet / params_ODE``. The accuracy
    half holds when ``gap <= 2 se`` with ``se = sqrt(se_ODE^2 + se_ResNet^2)`` the binomial standard
    error of the gap (:func:`binomial_se`), i.e. the ODE-Net is not measurably worse; the parameter
    half when ``ratio >= CHEN_PARAMETER_RATIO``. The claim is *reproduced* (:data:`HOLDS`) when both
    halves hold and both models meet their targets (converged as in the paper); when the halves hold
    but a target is missed the verdict is :data:`UNRESOLVED` (true of young networks only);
    otherwise :data:`FAILS`.
    """
    by_model = {}
    for row in rows:
        model = row["model"]
        if model not in targets:
            raise ValueError(
                f"no target for model {model!r}; targets are given for {sorted(targets)}."
            )
        error = float(_finite([row["test_error_percent"]], f"test_error_percent of {model}")[0])
        by_model[model] = {
            "model": model,
            "error": error,
            "paper_error": float(row["paper_test_error_percent"]),
            "parameters": int(row["parameters"]),
            "target": targets[model],
            "target_met": error <= targets[model],
            "gap_to_paper": error - float(row["paper_test_error_percent"]),
            "se": binomial_se(error, test_images),
        }
    if "odenet" not in by_model or "resnet" not in by_model:
        raise ValueError(
            f"the claim compares the ODE-Net with the ResNet; rows hold only {sorted(by_model)}."
        )
    ode, res = by_model["odenet"], by_model["resnet"]
    gap = ode["error"] - res["error"]
    se = math.sqrt(ode["se"] ** 2 + res["se"] ** 2)
    ratio = res["parameters"] / ode["parameters"]
    accuracy_half, parameter_half = gap <= 2 * se, ratio >= CHEN_PARAMETER_RATIO
    converged = ode["target_met"] and res["target_met"]
    verdict = (HOLDS if converged else UNRESOLVED) if accuracy_half and parameter_half else FAILS
    return {
        "models": list(by_model.values()),
        "gap": gap,
        "gap_se": se,
        "ratio": ratio,
        "accuracy_half": accuracy_half,
        "parameter_half": parameter_half,
        "converged": converged,
        "verdict": verdict,
        "paper_gap": ode["paper_error"] - res["paper_error"],
    }


def trend(values: Sequence[float], window: int = 50, relative: float = 0.05) -> dict:
    """Which way a training curve goes (e.g. NFE per forward pass, Chen et al. Fig. 3d: it rises).

    ``first`` and ``last`` are the means of the first and last ``window`` values (``window`` is cut
    to half the length for short curves), ``lowest`` / ``highest`` the extreme window means and
    their start index. ``direction`` is ``"rises"`` when ``last > (1 + relative) first``,
    ``"falls"`` when ``last < (1 - relative) first``, else ``"flat"``.
    """
    x = _finite(values, "values")
    if len(x) < 2:
        raise ValueError(f"a trend needs at least two values, got {len(x)}.")
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}.")
    if not 0 <= relative < 1:
        raise ValueError(f"relative must lie in [0, 1), got {relative}.")
    w = min(int(window), len(x) // 2)
    means = np.convolve(x, np.ones(w) / w, mode="valid")
    first, last = float(means[0]), float(means[-1])
    direction = (
        "rises"
        if last > (1 + relative) * first
        else ("falls" if last < (1 - relative) * first else "flat")
    )
    return {
        "first": first,
        "last": last,
        "lowest": float(means.min()),
        "lowest_at": int(means.argmin()),
        "highest": float(means.max()),
        "highest_at": int(means.argmax()),
        "window": w,
        "direction": direction,
    }


# --------------------------------------------------------------------------- Gai & Zhang (2021)


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing their average rank."""
    x = _finite(values, "values")
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):  # average the ranks of ties
        tie = x == value
        r[tie] = r[tie].mean()
    return r


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: the Pearson correlation of the ranks of ``x`` and ``y``; NaN when either is
    constant."""
    rx, ry = ranks(x), ranks(y)
    if len(rx) != len(ry) or len(rx) < 2:
        raise ValueError(f"x and y need the same length, at least 2; got {len(rx)} and {len(ry)}.")
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def falls_as_rises(lss: Sequence[float], accuracy: Sequence[float]) -> dict:
    """Does LSS fall as training accuracy rises? ``rho`` = Spearman correlation of (accuracy, LSS)
    over the points given (weight decays, or epochs); :data:`HOLDS` when ``rho < 0``, :data:`FAILS`
    when ``rho > 0``, :data:`UNRESOLVED` when ``rho = 0`` or undefined (a constant series).
    ``points`` says how many there are: with three points a rank correlation of -1 happens by chance
    with probability 1/6."""
    rho = rank_correlation(accuracy, lss)
    verdict = UNRESOLVED if not math.isfinite(rho) or rho == 0 else (HOLDS if rho < 0 else FAILS)
    return {"rho": rho, "points": len(lss), "verdict": verdict}


def _gai_lss_margin(res: Mapping, plain: Mapping) -> float | None:
    """Two standard errors of ``LSS_plain - LSS_res`` from the rows' ``lss_se``, or None."""
    if res.get("lss_se") is None or plain.get("lss_se") is None:
        return None
    se = _finite([res["lss_se"], plain["lss_se"]], "lss_se")
    return 2 * math.sqrt(float((se**2).sum()))


def _gai_ots_margin(res: Mapping, plain: Mapping) -> float | None:
    """Two binomial standard errors of ``OTS_res - OTS_plain`` on ``ots_points`` points, or
    None."""
    if res.get("ots_points") is None or plain.get("ots_points") is None:
        return None
    if res["ots_points"] != plain["ots_points"]:
        raise ValueError(
            f"ots_points differ ({res['ots_points']} and {plain['ots_points']}): "
            "measure both networks' OTS on the same points."
        )
    n = int(res["ots_points"])
    return 2 * accuracy_difference_se(100 * res["ots"], 100 * plain["ots"], n) / 100


def gai(rows: Sequence[Mapping]) -> dict:
    """Gai & Zhang's claims judged from rows with ``network`` ("residual" or "plain"),
    ``weight_decay``, ``lss``, ``ots`` and ``train_acc``.

    Per weight decay present for both networks, by :func:`sign_verdict`:

    * ``straighter``: ``LSS_plain - LSS_res`` against the margin
      ``2 sqrt(se_res^2 + se_plain^2)`` when both rows carry ``lss_se`` (the standard error of a
      mean LSS over images; the two means are treated as independent, which over-states the
      error of a difference measured on the same images, so the margin is conservative);
    * ``more_optimal``: ``OTS_res - OTS_plain`` against two binomial standard errors of the
      difference (:func:`accuracy_difference_se` on ``ots_points`` points) when both rows carry
      ``ots_points``. This is an approximation: the points of one optimal assignment are not
      independent draws.

    Rows without those fields (a paper's printed values) are judged by the sign alone.
    Across weight decays, per network: :func:`falls_as_rises` of (LSS, train_acc)
    (at least two weight decays).

    Example::

        >>> rows = [
        ...     {"network": "residual", "weight_decay": 0.0, "lss": 1.2, "lss_se": 0.01,
        ...      "ots": 0.95, "ots_points": 2000, "train_acc": 0.99},
        ...     {"network": "plain", "weight_decay": 0.0, "lss": 1.21, "lss_se": 0.01,
        ...      "ots": 0.80, "ots_points": 2000, "train_acc": 0.98},
        ... ]
        >>> r = gai(rows)["per_weight_decay"][0]
        >>> r["straighter"], r["more_optimal"]
        ('not resolved', 'holds')
    """
    table: dict[str, dict[float, Mapping]] = {"residual": {}, "plain": {}}
    for row in rows:
        if row["network"] not in table:
            raise ValueError(f"network must be 'residual' or 'plain', got {row['network']!r}.")
        _finite(
            [row["lss"], row["ots"], row["train_acc"]],
            f"lss/ots/train_acc of {row['network']} {row['weight_decay']}",
        )
        table[row["network"]][float(row["weight_decay"])] = row
    per_gamma = []
    for gamma in sorted(set(table["residual"]) & set(table["plain"])):
        res, plain = table["residual"][gamma], table["plain"][gamma]
        lss_margin = _gai_lss_margin(res, plain)
        ots_margin = _gai_ots_margin(res, plain)
        per_gamma.append(
            {
                "weight_decay": gamma,
                "lss_residual": res["lss"],
                "lss_plain": plain["lss"],
                "ots_residual": res["ots"],
                "ots_plain": plain["ots"],
                "lss_margin": lss_margin,
                "ots_margin": ots_margin,
                "straighter": sign_verdict(plain["lss"] - res["lss"], lss_margin),
                "more_optimal": sign_verdict(res["ots"] - plain["ots"], ots_margin),
            }
        )
    if not per_gamma:
        raise ValueError("no weight decay has both a residual and a plain row: nothing to compare.")
    trend = {}
    for network, by_gamma in table.items():
        if len(by_gamma) >= 2:
            gammas = sorted(by_gamma)
            trend[network] = falls_as_rises(
                [by_gamma[g]["lss"] for g in gammas], [by_gamma[g]["train_acc"] for g in gammas]
            )
    return {"per_weight_decay": per_gamma, "lss_falls_as_accuracy_rises": trend}


# --------------------------------------------------------------------------- printing


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table from a header and rows of cells (converted with ``str``)."""
    header = [str(h) for h in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(c) for c in row]
        if len(cells) != len(header):
            raise ValueError(f"a row has {len(cells)} cells, the header {len(header)}: {cells}.")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
