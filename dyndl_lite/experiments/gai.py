"""Chapter 10's experiment: residual vs plain MNIST networks across a weight-decay sweep
(Gai & Zhang 2021).

Networks: :func:`dyndl_lite.models.residual.mnist_tracknet` (tracks in R^32,
8 blocks; how tracks are formed is defined there, once). The experiment ``gai``
has one model per architecture and weight decay of :data:`PAPER_WEIGHT_DECAYS`
(``resnet-wd5e-4``, ``plain-wd0``, ...); :func:`train` trains it on
the MNIST training set with :func:`recipe`, recording after every epoch the
training accuracy and the mean LSS on :data:`TRACK_POINTS` fixed test images
and, at a few epochs, the tracks of :data:`SNAPSHOT_POINTS` others (pictured in
2-D on one PCA basis), into checkpoint ``gai-{resnet|plain}-wd{gamma}-seed{S}``.
:func:`table` evaluates the checkpoints: test accuracy, mean LSS and exact OTS;
:func:`verdict_markdown` and :func:`verdict_paragraph` compare them with the paper.

Paper numbers (:data:`PAPER`) are Gai & Zhang's, copied here with their provenance;
the book prints them beside ours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dyndl_lite import pretrained, runs, verdicts
from dyndl_lite.geodesic import fixed_basis_pca, lss_summary, ots, tracks
from dyndl_lite.models.residual import MNIST_DEPTH, MNIST_HIDDEN, MNIST_WIDTH, mnist_tracknet
from dyndl_lite.train import Recipe, evaluate

PAPER_WEIGHT_DECAYS = (
    0.0,
    5e-4,
    1e-3,
    5e-3,
    1e-2,
)  # Gai & Zhang's sweep (CIFAR-100), all trainable here
SEEDS = (0,)
FULL_EPOCHS = (
    160  # Gai & Zhang picture training up to epoch 160; the book's full recipe runs that long
)
TRACK_POINTS = 1000  # fixed test images (seed 0 subset) for LSS during training
SNAPSHOT_POINTS = 200  # test images whose 2-D tracks are stored at SNAPSHOT_EPOCHS
OTS_POINTS = (
    2000  # test images for the exact OTS of the table (one assignment problem of this size)
)

PAPER_SOURCE = (
    "Gai & Zhang, A Mathematical Principle of Deep Learning: Learn the Geodesic Curve in the "
    "Wasserstein Space, arXiv:2102.09235 (2021)"
)
PAPER = {
    # MNIST ResNet with L2 regularisation, as printed.
    "mnist": {"lss": 1.12, "ots": 0.96},
    # CIFAR-100 weight-decay sweep, values read off their plots (about +-0.02).
    "cifar100": {
        "weight_decay": [0.0, 5e-4, 1e-3, 5e-3, 1e-2],
        "resnet_test_acc_pct": [74.5, 76.4, 77.1, 79.7, 78.1],
        "plain_test_acc_pct": [57.4, 64.2, 69.6, 67.8, 44.2],
        "resnet_ots": [1.0, 1.0, 0.99, 0.96, 0.86],
        "plain_ots": [0.15, 0.0, 0.22, 0.06, 0.0],  # "~0" in the paper is written 0.0 here
        "resnet_lss": [1.38, 1.28, 1.30, 1.55, 1.82],
        "plain_lss": [4.6, 4.1, 4.0, 3.5, 3.9],
    },
}


def recipe(model: str) -> Recipe:
    """The full recipe of ``model`` (a name of :data:`MODELS`): SGD, momentum 0.9, lr 0.01, batch
    128, :data:`FULL_EPOCHS` epochs, learning rate x0.1 at 60 % and 80 % of training, weight decay
    as named.

    Gai & Zhang give no MNIST schedule; this one is the book's choice.
    """
    weight_decay = parse_model(model)[1]
    epochs = FULL_EPOCHS
    return Recipe(
        name=f"gai-mnist-wd{wd_tag(weight_decay)}-{epochs}ep",
        epochs=epochs,
        batch_size=128,
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        weight_decay=weight_decay,
        milestones=(math.ceil(0.6 * epochs), math.ceil(0.8 * epochs)),
        gamma=0.1,
    )


def wd_tag(weight_decay: float) -> str:
    """``0`` -> ``"0"``, ``5e-4`` -> ``"5e-4"``, ``1e-2`` -> ``"1e-2"`` (used in checkpoint
    names)."""
    if weight_decay == 0:
        return "0"
    mantissa, exponent = f"{weight_decay:.0e}".split("e")
    return (
        f"{mantissa}e-{int(exponent[1:])}"
        if exponent.startswith("-")
        else f"{mantissa}e{int(exponent)}"
    )


def checkpoint_name(model: str, seed: int = 0) -> str:
    """``gai-resnet-wd5e-4-seed0``, ``gai-plain-wd0-seed0``, ... for ``model`` of :data:`MODELS`."""
    parse_model(model)
    return f"gai-{model}-seed{seed}"


def snapshot_epochs(epochs: int) -> tuple[int, ...]:
    """Epochs at which 2-D track pictures are stored: 1, then about a quarter, half and all of
    training."""
    return tuple(sorted({1, max(1, epochs // 4), max(1, epochs // 2), epochs}))


def mean_lss(model: torch.nn.Module, images: torch.Tensor) -> float:
    """Mean over images of the per-sample LSS of their tracks (tracks with a zero-length step left
    out)."""
    return lss_summary(tracks(model, images)).mean


def model_name(residual: bool, weight_decay: float) -> str:
    """``resnet-wd5e-4`` / ``plain-wd0``: the command line's name of a network of the sweep."""
    return f"{'resnet' if residual else 'plain'}-wd{wd_tag(weight_decay)}"


MODELS = tuple(model_name(residual, g) for residual in (True, False) for g in PAPER_WEIGHT_DECAYS)


def parse_model(model: str) -> tuple[bool, float]:
    """``(residual, weight_decay)`` of a model name of :data:`MODELS`."""
    for residual in (True, False):
        for gamma in PAPER_WEIGHT_DECAYS:
            if model_name(residual, gamma) == model:
                return residual, gamma
    raise ValueError(f"unknown chapter-10 model {model!r}; choose one of {', '.join(MODELS)}.")


def training_callback(test, recipe_: Recipe):
    """The per-epoch measurements of a chapter-10 run, kept in ``history.extra`` (saved with the
    training state).

    ``dynamics``: the epoch, the mean LSS on :data:`TRACK_POINTS` fixed test images and the
    training accuracy. ``snapshot_tracks``: at :func:`snapshot_epochs`, the tracks of
    :data:`SNAPSHOT_POINTS` other test images (rounded to 1e-4), projected at the end on one basis.
    """
    probe = test.subset(min(TRACK_POINTS, len(test)), seed=0).images
    pictured = test.subset(min(SNAPSHOT_POINTS, len(test)), seed=1).images
    wanted = snapshot_epochs(recipe_.epochs)

    def record(epoch: int, model, history) -> None:
        dynamics = history.extra.setdefault("dynamics", {"epoch": [], "lss": [], "train_acc": []})
        dynamics["epoch"].append(epoch)
        dynamics["lss"].append(mean_lss(model, probe))
        dynamics["train_acc"].append(history.train_acc[-1])
        if epoch in wanted:
            history.extra.setdefault("snapshot_tracks", {})[str(epoch)] = np.round(
                tracks(model, pictured).numpy(), 4
            ).tolist()

    return record


def finish_record(model, history, test) -> dict:
    """The chapter-10 fields of a record: architecture, LSS through training, and 2-D track
    snapshots."""
    raw = history.extra["snapshot_tracks"]
    last = max(raw, key=int)
    pictured = test.subset(min(SNAPSHOT_POINTS, len(test)), seed=1)
    return {
        "architecture": {
            "residual": bool(model.residual),
            "width": MNIST_WIDTH,
            "hidden": MNIST_HIDDEN,
            "depth": MNIST_DEPTH,
        },
        "dynamics": {
            **history.extra["dynamics"],
            "lss_points": f"{test.name}, fixed subset of {min(TRACK_POINTS, len(test)):,} (seed 0)",
        },
        "snapshots": {
            "labels": pictured.labels.tolist(),
            "basis": (
                f"one PCA basis, fitted to all layers of the epoch-{last} tracks, for every epoch"
            ),
            "tracks_pca_2d": {
                e: np.round(p, 4).tolist() for e, p in fixed_basis_pca(raw, last).items()
            },
        },
    }


EXPERIMENT = runs.Experiment(
    name="gai",
    models=MODELS,
    build=lambda model: mnist_tracknet(parse_model(model)[0]),
    recipe=recipe,
    checkpoint_name=checkpoint_name,
    description=(
        "Gai & Zhang (2021): residual vs plain MNIST networks across weight decay (chapter 10)"
    ),
    callback=training_callback,
    finish=finish_record,
)
EXPERIMENTS = (EXPERIMENT,)


def train(model: str, seed: int = 0, **options) -> Path:
    """Train (or resume) ``model`` (e.g. ``"resnet-wd5e-4"``); ``options`` as
    :func:`dyndl_lite.runs.train`."""
    return runs.train(EXPERIMENT, model, seed, **options)


def load(model: str, seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """Checkpoint ``gai-<model>-seed<S>`` (user folder first, then shipped) loaded, and its
    record."""
    return runs.load(EXPERIMENT, model, seed)


def evaluate_row(model: torch.nn.Module, test, ots_points: int = OTS_POINTS) -> dict:
    """Accuracy on all of ``test``, mean LSS (with its standard error over images, ``lss_se``)
    and exact OTS between x(0) and x(n) on at most ``ots_points`` of its images.

    The counts used are returned beside the numbers: ``eval_images`` (all of ``test``) and
    ``ots_points`` (``min(ots_points, len(test))``: the offline fallback holds only 1,000 images).
    ``accuracy_label`` says what the accuracy is (test accuracy only on official test data).
    """
    used = min(ots_points, len(test))
    sub = test.subset(used, seed=0).images
    track = tracks(model, sub)
    summary = lss_summary(track)
    return {
        "test_acc": evaluate(model, test.images, test.labels),
        "lss": summary.mean,
        "lss_se": summary.se,
        "lss_left_out": summary.left_out,
        "ots": ots(track[0], track[-1]),
        "eval_images": len(test),
        "ots_points": used,
        "accuracy_label": getattr(test, "accuracy_label", "accuracy"),
    }


def available_weight_decays(seed: int = 0) -> list[float]:
    """Weight decays of :data:`PAPER_WEIGHT_DECAYS` for which both the residual and the plain
    network have a checkpoint of ``seed`` (user folder or shipped): the ones the chapters
    evaluate."""
    return [
        g
        for g in PAPER_WEIGHT_DECAYS
        if all(
            pretrained.exists(checkpoint_name(model_name(residual, g), seed))
            for residual in (True, False)
        )
    ]


def table(
    test,
    weight_decays: Sequence[float] | None = None,
    seed: int = 0,
    ots_points: int = OTS_POINTS,
) -> list[dict]:
    """One row per (architecture, weight decay) from the checkpoints, evaluated now;
    ``weight_decays`` defaults to :func:`available_weight_decays`. Each row also carries the
    checkpoint's ``record`` (provenance, per-epoch dynamics, track snapshots), so that a chapter
    opens every checkpoint once."""
    if weight_decays is None:
        weight_decays = available_weight_decays(seed)
    if not weight_decays:
        raise FileNotFoundError(
            f"no weight decay has both chapter-10 checkpoints of seed {seed}; "
            "train them with `python -m dyndl_lite reproduce` or pass weight_decays."
        )
    rows = []
    for residual in (True, False):
        for gamma in weight_decays:
            model, record = load(model_name(residual, gamma), seed)
            rows.append(
                {
                    "network": "residual" if residual else "plain",
                    "weight_decay": gamma,
                    **evaluate_row(model, test, ots_points),
                    "train_acc": record["train_acc"],
                    "epochs_run": record["epochs_run"],
                    "record": record,
                }
            )
    return rows


# --------------------------------------------------------------- verdicts and controls (chapter 10)

#: The weight decays of Gai & Zhang's CIFAR-10 training-accuracy observation (their figure).
PAPER_CIFAR10_WEIGHT_DECAYS = (1e-4, 2e-1)
#: Training accuracies at or above this are "near the ceiling": little room left to rank them.
CEILING = 0.95

OLD_BASIS = "PCA refitted at each epoch (older record)"


def snapshot_basis(record: dict) -> str:
    """How a record's 2-D track pictures were projected (its ``snapshots["basis"]``; older records
    lack it)."""
    return record.get("snapshots", {}).get("basis", OLD_BASIS)


def paper_cifar100_rows() -> list[dict]:
    """Gai & Zhang's CIFAR-100 values as table rows for :func:`dyndl_lite.verdicts.gai`. The paper
    plots test accuracy only, so it stands in the ``train_acc`` field; use these rows for the
    per-weight-decay comparisons, not for the training-accuracy trend."""
    p = PAPER["cifar100"]
    return [
        {
            "network": net,
            "weight_decay": g,
            "lss": p[f"{key}_lss"][i],
            "ots": p[f"{key}_ots"][i],
            "train_acc": p[f"{key}_test_acc_pct"][i] / 100,
        }
        for i, g in enumerate(p["weight_decay"])
        for net, key in (("residual", "resnet"), ("plain", "plain"))
    ]


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


def verdict_markdown(rows: list[dict]) -> str:
    """Per weight decay: our LSS and OTS, residual vs plain, with :func:`dyndl_lite.verdicts.gai`'s
    verdicts and the margin each difference had to clear, beside the paper's CIFAR-100 values at
    the same weight decay (judged by the sign, as the paper prints no error), where it has one.
    A weight decay whose two networks had different training lengths says so in its first cell."""
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


#: Epochs per run that :func:`training_trends` tests, spread evenly from the first to the last.
TREND_EPOCHS = 5


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


def generalization_markdown(rows: list[dict]) -> str:
    """Per weight decay: residual and plain test accuracy and
    :func:`dyndl_lite.verdicts.generalizes_better`'s verdict on "the residual network generalizes
    better", with the difference and its binomial margin on the evaluation images."""
    lines = [
        [
            f"{r['weight_decay']:g}",
            f"{100 * r['residual']:.2f} / {100 * r['plain']:.2f}",
            f"{r['difference']:+.2f}",
            f"{r['margin']:.2f} ({r['images']:,} images)",
            r["verdict"],
        ]
        for r in verdicts.generalizes_better(rows)
    ]
    return verdicts.markdown_table(
        [
            "γ",
            "accuracy % residual / plain",
            "residual - plain (points)",
            "margin 1.96 s.e.",
            "residual generalizes better?",
        ],
        lines,
    )


def generalization_paragraph(rows: list[dict], data: str) -> str:
    """The lecture's "better generalization" claim judged on MNIST in plain words, from
    :func:`dyndl_lite.verdicts.generalizes_better`, with the straightest residual network's
    accuracy beside it."""
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


def ots_against_points(
    model: torch.nn.Module, test, points: Sequence[int] = (250, 500, 1000, 2000)
) -> list[dict]:
    """Exact OTS of ``model`` between x(0) and x(n) on the first ``m`` images of one fixed random
    subset of ``test`` (seed 0), for each ``m`` in ``points``: OTS is a statement about a set of
    points, and it changes with their number (more points, more near-ties for the assignment)."""
    m_max = min(max(points), len(test))
    track = tracks(model, test.subset(m_max, seed=0).images)
    return [
        {"points": int(m), "ots": ots(track[0, :m], track[-1, :m])}
        for m in sorted(points)
        if m <= m_max
    ]


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


def verdict_paragraph(rows: list[dict], trends: list[dict], data: str) -> str:
    """Plain words, with the numbers, for :func:`verdict_markdown` and :func:`training_trends`;
    the training lengths are the rows' ``epochs_run`` (:func:`table`)."""
    if any("epochs_run" not in r for r in rows):
        raise ValueError("every row needs 'epochs_run' (the rows of gai.table have it).")
    epochs = [r["epochs_run"] for r in rows]
    v = verdicts.gai(rows)
    per = v["per_weight_decay"]
    k = len(per)
    straight = sum(r["straighter"] == verdicts.HOLDS for r in per)
    optimal = sum(r["more_optimal"] == verdicts.HOLDS for r in per)
    across = v["lss_falls_as_accuracy_rises"].get("residual")
    during = [t for t in trends if t["network"] == "residual"]
    during_holds = sum(t["verdict"] == verdicts.HOLDS for t in during)
    res_lss = [r["lss_residual"] for r in per]
    res_ots = [r["ots_residual"] for r in per]
    paper = verdicts.gai(paper_cifar100_rows())["per_weight_decay"]
    paper_both = sum(r["straighter"] == r["more_optimal"] == verdicts.HOLDS for r in paper)
    unresolved = sum(verdicts.UNRESOLVED in (r["straighter"], r["more_optimal"]) for r in per)
    budget = "-".join(str(e) for e in sorted({min(epochs), max(epochs)}))
    unresolved_note = (
        f" (at {unresolved} of {k} a difference lies within its margin: not resolved)"
        if unresolved
        else ""
    )
    text = (
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
    unequal = unequal_budgets(rows)
    if unequal:
        text += (
            f"At γ = {', '.join(f'{g:g}' for g in unequal)} the residual and plain networks were "
            "trained for different numbers of epochs ("
            + "; ".join(f"{a} and {b}" for a, b in unequal.values())
            + "), so that comparison mixes architecture with training length. "
        )
    if across is not None:
        if min(epochs) != max(epochs):
            text += (
                f"The runs were trained for different numbers of epochs ({budget}), so the "
                "comparison across weight decays mixes training length with weight decay. "
            )
        falls = {
            verdicts.HOLDS: "falls",
            verdicts.FAILS: "rises",
            verdicts.UNRESOLVED: "neither falls nor rises measurably",
        }[across["verdict"]]
        residual_rows = [r for r in rows if r["network"] == "residual"]
        accuracies = [r["train_acc"] for r in residual_rows]
        gammas = [r["weight_decay"] for r in residual_rows]
        text += (
            f"Across weight decays the residual network's LSS {falls} "
            f"as its training accuracy rises (Spearman's rho = {across['rho']:+.2f} "
            f"over {across['points']} points, "
            f"{'exact' if across['exact'] else 'random'} permutation p = "
            + (
                f"{across['p_high']:.3f} for a rise"
                if across["verdict"] == verdicts.FAILS
                else f"{across['p_low']:.3f} for a fall"
            )
            + f"; a direction counts at p <= {across['level']:g}): "
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
    text += (
        "During training (the book's own extension: the slides show snapshots, not a statistic "
        "over epochs), LSS falls measurably as training accuracy rises in "
        f"{during_holds} of {len(during)} residual runs "
        f"(Spearman's rho over {TREND_EPOCHS} epochs of each record spread from the first to the "
        "last, exact permutation p <= 0.05). "
    )
    claims = [
        straight == k,
        optimal == k,
        across is not None and across["verdict"] == verdicts.HOLDS,
    ]
    text += (
        "All three of the paper's qualitative claims hold in our runs."
        if all(claims)
        else f"{sum(claims)} of the three qualitative claims "
        "(straighter at every weight decay, more optimal at every "
        "weight decay, LSS falling as accuracy rises across weight decays) hold in our runs."
    )
    return text
