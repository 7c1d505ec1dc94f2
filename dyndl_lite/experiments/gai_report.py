"""Chapter 10's verdicts in Markdown and words: Gai & Zhang's claims judged on a
:class:`~dyndl_lite.experiments.results.GaiTable`, and the book's controls.

:func:`verdict_markdown` and :func:`verdict_paragraph` judge "the residual network is straighter
and more optimal than the plain one" per weight decay (:func:`dyndl_lite.verdicts.gai`) beside the
paper's CIFAR-100 values; :func:`training_trends` asks whether LSS falls as training accuracy rises
during each run; :func:`generalization_markdown` and :func:`generalization_paragraph` judge the
lecture's "better generalization"; :func:`degradation` counts the weight decays at which the plain
network fits its training set worse.

The table's numbers come from evaluation records; :func:`recheck_scalars` and
:func:`ots_against_record` re-measure its LSS and OTS live on the records' own images
(:func:`compare_scalar`), beside :func:`dyndl_lite.recorded.show`'s re-check of the accuracies,
and :func:`dyndl_lite.experiments.gai.table_lines` prints the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dyndl_lite import protocols, recorded, records, significance, verdicts
from dyndl_lite.data import ImageData
from dyndl_lite.experiments.gai_paper import PAPER, PAPER_CIFAR10_WEIGHT_DECAYS, paper_cifar100_rows
from dyndl_lite.experiments.results import GaiTable
from dyndl_lite.geodesic import lss_summary, ots, tracks
from dyndl_lite.record_format import Record, command_for

#: Where a row's numbers come from (its ``source``).
FROM_RECORD = "evaluation record"
LIVE_NO_RECORD = "measured live, no evaluation record"
LIVE_TWIN = "measured live beside its twin, which has no evaluation record"


#: Training accuracies at or above this are "near the ceiling": little room left to rank them.
CEILING = 0.95
#: Epochs per run that :func:`training_trends` tests, spread evenly from the first to the last.
TREND_EPOCHS = 5


def records_of(table: GaiTable) -> dict[tuple[str, float], dict]:
    """``{(network, weight_decay): checkpoint record}`` of the table's rows."""
    return {(r["network"], r["weight_decay"]): r["record"] for r in table.rows}


def _with_margin(verdict: str, margin: float | None, digits: int) -> str:
    """``holds (margin 0.03)``: a verdict and the margin its difference was judged against."""
    return verdict if margin is None else f"{verdict} (margin {margin:.{digits}f})"


def unequal_budgets(rows: list[dict]) -> dict[float, tuple[int, int]]:
    """``{weight_decay: (residual epochs, plain epochs)}`` for the weight decays whose two
    networks were trained for different numbers of epochs (rows with ``epochs_run``): there the
    comparison mixes architecture with training length."""
    epochs: dict[float, dict[str, int]] = {}
    for r in rows:
        if "epochs_run" in r:
            epochs.setdefault(float(r["weight_decay"]), {})[r["network"]] = int(r["epochs_run"])
    return {
        g: (e["residual"], e["plain"])
        for g, e in sorted(epochs.items())
        if len(e) == 2 and e["residual"] != e["plain"]
    }


def verdict_markdown(table: GaiTable) -> str:
    """Per weight decay: our LSS and OTS, residual vs plain, with :func:`dyndl_lite.verdicts.gai`'s
    verdicts and the margin each difference had to clear, beside the paper's CIFAR-100 values at
    the same weight decay (judged by the sign, as the paper prints no error), where it has one.
    A weight decay whose two networks had different training lengths says so in its first cell."""
    rows = table.rows
    ours = verdicts.gai(rows)["per_weight_decay"]
    unequal = unequal_budgets(rows)
    theirs = {r["weight_decay"]: r for r in verdicts.gai(paper_cifar100_rows())["per_weight_decay"]}
    lines = []
    for r in ours:
        t = theirs.get(r["weight_decay"])
        lines.append(
            [
                f"{r['weight_decay']:g}"
                + (
                    " (residual / plain trained {} / {} epochs)".format(*unequal[r["weight_decay"]])
                    if r["weight_decay"] in unequal
                    else ""
                ),
                f"{r['lss_residual']:.2f} / {r['lss_plain']:.2f}",
                _with_margin(r["straighter"], r["lss_margin"], 2),
                f"{t['lss_residual']:.2f} / {t['lss_plain']:.2f}: {t['straighter']}"
                if t
                else "not in the paper",
                f"{r['ots_residual']:.3f} / {r['ots_plain']:.3f}",
                _with_margin(r["more_optimal"], r["ots_margin"], 3),
                f"{t['ots_residual']:.2f} / {t['ots_plain']:.2f}: {t['more_optimal']}"
                if t
                else "not in the paper",
            ]
        )
    return verdicts.markdown_table(
        [
            "γ",
            "LSS residual / plain (ours)",
            "straighter? (ours)",
            "paper, CIFAR-100 (theirs)",
            "OTS residual / plain (ours)",
            "more optimal? (ours, heuristic margin)",
            "paper, CIFAR-100 (theirs)",
        ],
        lines,
    )


def trend_epochs(epochs: int, points: int = TREND_EPOCHS) -> list[int]:
    """Indices of ``points`` epochs spread evenly over ``epochs`` recorded ones, first and last
    included (all of them when there are fewer)."""
    if epochs <= points:
        return list(range(epochs))
    return sorted({round(i * (epochs - 1) / (points - 1)) for i in range(points)})


def training_trends(
    records: dict[tuple[str, float], dict], points: int = TREND_EPOCHS
) -> list[dict]:
    """Per run, whether LSS falls as training accuracy rises during training
    (:func:`dyndl_lite.verdicts.falls_as_rises`: Spearman's rho with its exact permutation p-value)
    on ``points`` epochs of its record's ``dynamics`` spread evenly from the first to the last
    (:func:`trend_epochs`). Consecutive epochs are not exchangeable (both series drift with time,
    so a permutation test over all 160 epochs would call a weak drift significant); a few spread
    epochs, like the slides' snapshots, keep the test honest. ``records`` maps
    ``(network, weight_decay)`` to a checkpoint record. This per-epoch reading is the book's own
    extension: the slides show snapshots of tracks straightening, not a statistic."""
    out = []
    for (network, gamma), record in records.items():
        dyn = record["dynamics"]
        chosen = trend_epochs(len(dyn["epoch"]), points)
        row = {
            "network": network,
            "weight_decay": gamma,
            "epochs": len(dyn["epoch"]),
            "tested_epochs": [dyn["epoch"][i] for i in chosen],
            "lss_first": dyn["lss"][0],
            "lss_last": dyn["lss"][-1],
        }
        if len(chosen) >= 2:
            row.update(
                verdicts.falls_as_rises(
                    [dyn["lss"][i] for i in chosen], [dyn["train_acc"][i] for i in chosen]
                )
            )
        else:
            row.update(
                {
                    "rho": float("nan"),
                    "points": 1,
                    "p_low": 1.0,
                    "p_high": 1.0,
                    "verdict": verdicts.UNRESOLVED,
                }
            )
        out.append(row)
    return out


def generalization_markdown(table: GaiTable) -> str:
    """Per weight decay: residual and plain test accuracy and
    :func:`dyndl_lite.verdicts.generalizes_better`'s verdict on "the residual network generalizes
    better", with the difference and its margin of ``IMAGES_Z`` standard errors on the evaluation
    images, each margin saying whether its standard error is paired image by image (McNemar) or
    treats the two accuracies as independent."""
    lines = [
        [
            f"{r['weight_decay']:g}",
            f"{100 * r['residual']:.2f} / {100 * r['plain']:.2f}",
            f"{r['difference']:+.2f}",
            f"{r['margin']:.2f} ({r['images']:,} images, "
            f"{'paired' if r['paired'] else 'independent'})",
            r["verdict"],
        ]
        for r in verdicts.generalizes_better(table.rows)
    ]
    return verdicts.markdown_table(
        [
            "γ",
            "accuracy % residual / plain",
            "residual - plain (points)",
            f"margin {significance.IMAGES_Z:g} s.e.",
            "residual generalizes better?",
        ],
        lines,
    )


def generalization_paragraph(table: GaiTable) -> str:
    """The lecture's "better generalization" claim judged on MNIST in plain words, from
    :func:`dyndl_lite.verdicts.generalizes_better`, with the straightest residual network's
    accuracy beside it."""
    rows, data = table.rows, table.data
    per = verdicts.generalizes_better(rows)
    counts = verdicts.count(per)
    k = len(per)
    residual = [r for r in rows if r["network"] == "residual"]
    straightest = min(residual, key=lambda r: r["lss"])
    rank = sorted(residual, key=lambda r: -r["test_acc"]).index(straightest) + 1
    text = (
        f"**Better generalization?** On {data} the residual network's test accuracy is higher "
        f"than the plain one's beyond the margin at {counts[verdicts.HOLDS]} of {k} weight decays, "
        f"lower at {counts[verdicts.FAILS]}, and within the margin at "
        f"{counts[verdicts.UNRESOLVED]}; the differences run from "
        f"{min(r['difference'] for r in per):+.2f} to {max(r['difference'] for r in per):+.2f} "
        "points. The straightest residual network "
        f"(γ = {straightest['weight_decay']:g}, LSS {straightest['lss']:.2f}) is number {rank} of "
        f"{len(residual)} residual networks by test accuracy. "
    )
    if counts[verdicts.HOLDS] == k:
        text += "On MNIST the lecture's claim holds at every weight decay we trained."
    elif counts[verdicts.FAILS] > 0:
        text += (
            "On MNIST the lecture's claim that residual networks generalize better does not "
            f"hold at every weight decay: at {counts[verdicts.FAILS]} of {k} the plain network is "
            "measurably more accurate."
        )
    else:
        text += (
            "On MNIST the lecture's claim is not established: where the residual network is not "
            "measurably better, the data cannot tell the two apart."
        )
    return text


def degradation(records: dict[tuple[str, float], dict]) -> dict:
    """:func:`dyndl_lite.verdicts.degradation` from checkpoint records: per weight decay the final
    running training accuracy of the residual and the plain network, over the training images
    the records name (``train_subset`` or all of ``data.train_images``)."""
    gammas = sorted({g for (_, g) in records})
    train_acc = {
        g: (records[("residual", g)]["train_acc"], records[("plain", g)]["train_acc"])
        for g in gammas
        if ("residual", g) in records and ("plain", g) in records
    }
    counts = {
        rec["recipe"].get("train_subset") or rec["data"]["train_images"] for rec in records.values()
    }
    if len(counts) != 1:
        raise ValueError(f"the records were trained on different numbers of images: {counts}.")
    return verdicts.degradation(train_acc, int(counts.pop()))


def _ends_of_sweep(rows: list[dict]) -> str:
    """``"from γ = 0 to γ = 0.01 its LSS goes from 1.87 to 1.27 and its training accuracy from
    1.000 to 0.965. "``: the two ends of one network's weight-decay sweep."""
    low, high = (
        min(rows, key=lambda r: r["weight_decay"]),
        max(rows, key=lambda r: r["weight_decay"]),
    )
    return (
        f"from γ = {low['weight_decay']:g} to γ = {high['weight_decay']:g} its LSS goes from "
        f"{low['lss']:.2f} to {high['lss']:.2f} and its training accuracy from "
        f"{low['train_acc']:.3f} to {high['train_acc']:.3f}. "
    )


def _sweep_sentence(rows: list[dict], per: list[dict], data: str, budget: str) -> str:
    """What was measured, and at how many weight decays the residual network is straighter and
    more optimal, beside the paper's CIFAR-100 count and MNIST values."""
    k = len(per)
    straight = sum(r["straighter"] == verdicts.HOLDS for r in per)
    optimal = sum(r["more_optimal"] == verdicts.HOLDS for r in per)
    paper = verdicts.gai(paper_cifar100_rows())["per_weight_decay"]
    paper_both = sum(r["straighter"] == r["more_optimal"] == verdicts.HOLDS for r in paper)
    unresolved = sum(verdicts.UNRESOLVED in (r["straighter"], r["more_optimal"]) for r in per)
    res_lss = [r["lss_residual"] for r in per]
    res_ots = [r["ots_residual"] for r in per]
    unresolved_note = (
        f" (at {unresolved} of {k} a difference lies within its margin: not resolved)"
        if unresolved
        else ""
    )
    return (
        f"**Verdict** (MNIST, {k} weight decays, one seed each, {budget} epochs of training; "
        f"LSS and OTS on {data}). A difference counts when it exceeds two standard errors of "
        "the images' sampling (for OTS a heuristic margin: the points of one assignment are not "
        "independent draws, and OTS changes with their number). "
        f"The residual network is straighter than the plain one at {straight} of {k} weight decays "
        f"and more optimal at {optimal} of {k}{unresolved_note}; "
        f"Gai & Zhang's CIFAR-100 residual network is both at {paper_both} of their {len(paper)}. "
        f"Our residual LSS ranges over {min(res_lss):.2f}-{max(res_lss):.2f} and OTS over "
        f"{min(res_ots):.3f}-{max(res_ots):.3f}, "
        f"against the paper's MNIST ResNet {PAPER['mnist']['lss']} and {PAPER['mnist']['ots']}. "
    )


def _unequal_sentence(rows: list[dict]) -> str:
    """The weight decays whose two networks were trained for different numbers of epochs."""
    unequal = unequal_budgets(rows)
    if not unequal:
        return ""
    return (
        f"At γ = {', '.join(f'{g:g}' for g in unequal)} the residual and plain networks were "
        "trained for different numbers of epochs ("
        + "; ".join(f"{a} and {b}" for a, b in unequal.values())
        + "), so that comparison mixes architecture with training length. "
    )


def _across_sentence(rows: list[dict], across: dict, budget: str) -> str:
    """Whether the residual network's LSS falls as its training accuracy rises across weight
    decays, with the test's numbers, the sweep's ends and how much room the accuracies leave."""
    epochs = [r["epochs_run"] for r in rows]
    text = (
        f"The runs were trained for different numbers of epochs ({budget}), so the "
        "comparison across weight decays mixes training length with weight decay. "
        if min(epochs) != max(epochs)
        else ""
    )
    falls = {
        verdicts.HOLDS: "falls",
        verdicts.FAILS: "rises",
        verdicts.UNRESOLVED: "neither falls nor rises measurably",
    }[across["verdict"]]
    residual_rows = [r for r in rows if r["network"] == "residual"]
    accuracies = [r["train_acc"] for r in residual_rows]
    gammas = [r["weight_decay"] for r in residual_rows]
    p_value = (
        f"{across['p_high']:.3f} for a rise"
        if across["verdict"] == verdicts.FAILS
        else f"{across['p_low']:.3f} for a fall"
    )
    return text + (
        f"Across weight decays the residual network's LSS {falls} "
        f"as its training accuracy rises (Spearman's rho = {across['rho']:+.2f} "
        f"over {across['points']} points, "
        f"{'exact' if across['exact'] else 'random'} permutation p = {p_value}"
        f"; a direction counts at p <= {across['level']:g}): "
        + _ends_of_sweep(residual_rows)
        + f"Our weight decays span {min(gammas):g}-{max(gammas):g}, Gai & Zhang's CIFAR-10 "
        f"sweep {PAPER_CIFAR10_WEIGHT_DECAYS[0]:g}-{PAPER_CIFAR10_WEIGHT_DECAYS[1]:g}; and "
        f"our training accuracies lie within {100 * (max(accuracies) - min(accuracies)):.1f} "
        f"points of each other, between {min(accuracies):.3f} and {max(accuracies):.3f}"
        + (
            ", near the ceiling of 1, where there is little left to rank. "
            if min(accuracies) >= CEILING
            else ". "
        )
    )


def _during_sentence(trends: list[dict]) -> str:
    """How many residual runs have LSS falling as training accuracy rises during training."""
    during = [t for t in trends if t["network"] == "residual"]
    holds = sum(t["verdict"] == verdicts.HOLDS for t in during)
    return (
        "During training (the book's own extension: the slides show snapshots, not a statistic "
        "over epochs), LSS falls measurably as training accuracy rises in "
        f"{holds} of {len(during)} residual runs "
        f"(Spearman's rho over {TREND_EPOCHS} epochs of each record spread from the first to the "
        "last, exact permutation p <= 0.05). "
    )


def verdict_paragraph(table: GaiTable) -> str:
    """Plain words, with the numbers, for :func:`verdict_markdown` and :func:`training_trends` of
    the table's records; the training lengths are the rows' ``epochs_run``. LSS and OTS are
    measured on ``table.ots_points`` images of ``table.data`` (on ``table.data`` alone, which
    names the counts, when rows measured live use other counts than the records')."""
    rows = list(table.rows)
    if any("epochs_run" not in r for r in rows):
        raise ValueError("every row needs 'epochs_run' (the rows of gai.table have it).")
    epochs = [r["epochs_run"] for r in rows]
    budget = "-".join(str(e) for e in sorted({min(epochs), max(epochs)}))
    v = verdicts.gai(rows)
    per = v["per_weight_decay"]
    across = v["lss_falls_as_accuracy_rises"].get("residual")
    trends = training_trends(records_of(table))
    points = {r.get("ots_points", table.ots_points) for r in rows}
    measured = f"{table.ots_points:,} images of {table.data}" if len(points) == 1 else table.data
    text = _sweep_sentence(rows, per, measured, budget)
    text += _unequal_sentence(rows)
    if across is not None:
        text += _across_sentence(rows, across, budget)
    text += _during_sentence(trends)
    claims = [
        all(r["straighter"] == verdicts.HOLDS for r in per),
        all(r["more_optimal"] == verdicts.HOLDS for r in per),
        across is not None and across["verdict"] == verdicts.HOLDS,
    ]
    return text + (
        "All three of the paper's qualitative claims hold in our runs."
        if all(claims)
        else f"{sum(claims)} of the three qualitative claims "
        "(straighter at every weight decay, more optimal at every "
        "weight decay, LSS falling as accuracy rises across weight decays) hold in our runs."
    )


def full_points() -> int:
    """The point count of the full protocol's LSS and OTS (10,000: every MNIST test image), at
    which the table reads the records."""
    return max(protocols.gai_ots_points())


# ------------------------------------------------------------------ live re-checks of scalars

#: A live LSS on the record's own images passes within this fraction of the record's standard
#: error: only floating-point rounding (thread count, device) may differ on the same images, and a
#: hundredth of the sampling error lies far below any difference the chapter judges.
LSS_TOLERANCE_SE = 0.01


def compare_scalar(record: Record, scalar: str, live: float, left_out: int | None = None) -> str:
    """One line comparing a live re-measurement of ``record``'s ``scalar`` on the same images.

    ``lss-<m>`` passes when ``|live - recorded| <= LSS_TOLERANCE_SE * se`` and the tracks left
    out are as many; ``ots-<m>`` when the live count of matched points ``round(live m)`` lies
    within :func:`dyndl_lite.records.flip_allowance` ``(m)`` of the recorded count: the same points
    are matched again, so an unchanged network and code differ only where a near-tie of the
    assignment flips with rounding, and the spot check's allowance for flips bounds that. OTS is
    compared by its count of matched points only (the record stores no per-point matches), so
    flips that cancel (a point newly matched and another no longer matched) go undetected.
    Otherwise :class:`~dyndl_lite.records.SpotCheckError` naming the command that re-measures the
    record.
    """
    if scalar not in record.scalars:
        raise ValueError(f"scalar {scalar!r} is not in the record; it has {list(record.scalars)}.")
    kept, n = record.scalars[scalar], int(record.scalars[scalar]["n"])
    if scalar.startswith("lss-"):
        band = LSS_TOLERANCE_SE * (kept["se"] or 0.0)
        ok = abs(live - kept["value"]) <= band and left_out == kept["left_out"]
        line = (
            f"{scalar} {live:.5f} live vs {kept['value']:.5f} recorded (tolerance ±{band:.1e}, "
            f"{LSS_TOLERANCE_SE:g} s.e.; {left_out} vs {kept['left_out']} tracks left out)"
        )
    else:
        live_k, kept_k = round(live * n), round(kept["value"] * n)
        band = records.flip_allowance(n)
        ok = abs(live_k - kept_k) <= band
        line = f"{scalar} {live_k}/{n} matched live vs {kept_k} recorded (allowance ±{band})"
    if not ok:
        raise records.SpotCheckError(
            f"{record.checkpoint}: {line}: outside the tolerance. The network or the code changed "
            f"since the record was measured; re-measure with `{command_for(record.checkpoint)} "
            "--force`."
        )
    return line


def recheck_scalars(
    loaded: Mapping[str, Record], data: ImageData, mode: str, seed: int = 0
) -> list[str]:
    """Re-measure evaluation records' scalars live on ``data`` and compare them
    (:func:`compare_scalar`); lines to print. ``quick``: the LSS at :func:`full_points` of one
    network drawn with ``seed`` (one pass of its tracks, a fraction of a second); ``full``: every
    scalar (LSS and exact OTS at each point count) of every record. On data that are not the
    records' (the offline fallback) nothing is measured and the one line says why."""
    if mode not in ("quick", "full"):
        raise ValueError(f"mode must be 'quick' or 'full', got {mode!r}.")
    if not loaded:
        raise ValueError("loaded is empty: pass at least one evaluation record.")
    if not all(recorded.same_data(record, data) for record in loaded.values()):
        return [
            "Live re-check of LSS and OTS skipped: the records were measured on official MNIST "
            f"test images, and this run has {len(data):,} images of {data.name}."
        ]
    names = sorted(loaded)
    if mode == "quick":
        names = [names[int(np.random.default_rng(seed).integers(len(names)))]]
    lines = []
    for name in names:
        record = loaded[name]
        wanted = [f"lss-{full_points()}"] if mode == "quick" else list(record.scalars)
        model, _ = records.load_checkpoint(name, device=str(data.images.device))
        parts = []
        for points in sorted({int(s.split("-")[1]) for s in wanted}):
            track = tracks(model, data.subset(points, seed=0).images)
            summary = lss_summary(track)
            for scalar in (s for s in wanted if s.endswith(f"-{points}")):
                if scalar.startswith("lss-"):
                    parts.append(compare_scalar(record, scalar, summary.mean, summary.left_out))
                else:
                    parts.append(compare_scalar(record, scalar, ots(track[0], track[-1])))
        lines.append(
            f"scalar re-check of {name} (seed {seed}, {len(wanted)} of {len(record.scalars)} "
            "scalars, on the record's own images): " + "; ".join(parts)
        )
    return lines


def ots_against_record(record: Record, by_m: Sequence[dict], data: ImageData) -> list[str]:
    """The rows of :func:`dyndl_lite.experiments.gai.ots_against_points` whose ``points`` is a
    point count of ``record``'s OTS scalars, compared with it (:func:`compare_scalar`): the first
    ``m`` images of ``data.subset(., seed=0)`` are the record's own ``ots-<m>`` images. On data
    that are not the record's (the offline fallback), one line saying why nothing is compared."""
    if not recorded.same_data(record, data):
        return [
            f"Not compared with the evaluation record of {record.checkpoint}: it was measured on "
            f"official MNIST test images, and this run has {len(data):,} images of {data.name}."
        ]
    return [
        f"{record.checkpoint}, m = {r['points']:,}: "
        + compare_scalar(record, f"ots-{r['points']}", r["ots"])
        for r in by_m
        if f"ots-{r['points']}" in record.scalars
    ]
