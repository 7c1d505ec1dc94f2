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
:func:`table` evaluates the checkpoints (test accuracy, mean LSS and exact OTS) into a
:class:`~dyndl_lite.experiments.results.GaiTable`; :func:`verdict_markdown` and
:func:`verdict_paragraph` compare it with the paper. Every network is trained on clean images
(:data:`REGIMES`).

Gai & Zhang's numbers (:data:`PAPER`) and their provenance are
:mod:`~dyndl_lite.experiments.gai_paper`; the verdicts and the book's controls,
:mod:`~dyndl_lite.experiments.gai_report` (:func:`verdict_markdown`, :func:`verdict_paragraph` and
:data:`PAPER_SOURCE` are imported from those, so that ``gai`` has every name of the protocol).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dyndl_lite import pretrained, runs
from dyndl_lite.config import get_mode
from dyndl_lite.data import ImageData, load_mnist
from dyndl_lite.experiments.gai_paper import PAPER as PAPER
from dyndl_lite.experiments.gai_paper import PAPER_SOURCE as PAPER_SOURCE
from dyndl_lite.experiments.gai_paper import PAPER_WEIGHT_DECAYS
from dyndl_lite.experiments.gai_report import verdict_markdown as verdict_markdown
from dyndl_lite.experiments.gai_report import verdict_paragraph as verdict_paragraph
from dyndl_lite.experiments.results import GaiTable
from dyndl_lite.geodesic import fixed_basis_pca, lss_summary, ots, tracks
from dyndl_lite.models.residual import MNIST_DEPTH, MNIST_HIDDEN, MNIST_WIDTH, mnist_tracknet
from dyndl_lite.train import Recipe, evaluate

SEEDS = (0,)
#: How the training images are perturbed: never, in this experiment.
REGIMES = ("clean",)
# Gai & Zhang picture training up to epoch 160; the book's full recipe runs that long.
FULL_EPOCHS = 160
TRACK_POINTS = 1000  # fixed test images (seed 0 subset) for LSS during training
SNAPSHOT_POINTS = 200  # test images whose 2-D tracks are stored at SNAPSHOT_EPOCHS
# Test images for the exact OTS of the table (one assignment problem of this size), per mode.
OTS_POINTS = 2000
OTS_POINTS_BY_MODE = {"quick": OTS_POINTS, "full": 10_000}


def _clean(regime: str) -> None:
    """A ``ValueError`` naming ``regime`` unless it is one of :data:`REGIMES`."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES} for Gai & Zhang, got {regime!r}.")


def recipe(model: str, regime: str = "clean") -> Recipe:
    """The full recipe of ``model`` (a name of :data:`MODELS`): SGD, momentum 0.9, lr 0.01, batch
    128, :data:`FULL_EPOCHS` epochs, learning rate x0.1 at 60 % and 80 % of training, weight decay
    as named.

    Gai & Zhang give no MNIST schedule; this one is the book's choice.
    """
    _clean(regime)
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


def checkpoint_name(model: str, seed: int = 0, regime: str = "clean") -> str:
    """``gai-resnet-wd5e-4-seed0``, ``gai-plain-wd0-seed0``, ... for ``model`` of :data:`MODELS`."""
    _clean(regime)
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


def train(model: str, seed: int = 0, regime: str = "clean", **options: Any) -> Path:
    """Train (or resume) ``model`` (e.g. ``"resnet-wd5e-4"``); ``options`` as
    :func:`dyndl_lite.runs.train`."""
    _clean(regime)
    return runs.train(EXPERIMENT, model, seed, **options)


def load(
    model: str, seed: int = 0, regime: str = "clean", epochs: int | None = None
) -> tuple[torch.nn.Module, dict]:
    """Checkpoint ``gai-<model>-seed<S>`` (user folder first, then shipped; with ``epochs`` the
    run of that length) loaded, and its record."""
    _clean(regime)
    return runs.load(EXPERIMENT, model, seed, epochs=epochs)


def evaluate_row(model: torch.nn.Module, test: ImageData, ots_points: int = OTS_POINTS) -> dict:
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
    regime: str = "clean",
    mode: str = "quick",
    seeds: Sequence[int] | None = None,
    test: ImageData | None = None,
) -> GaiTable:
    """One row per (architecture, weight decay) of one seed (``seeds``, default ``(0,)``) from the
    checkpoints, evaluated now on ``test`` (default: MNIST test) by :func:`evaluate_row`, LSS and
    OTS on :data:`OTS_POINTS_BY_MODE` ``[mode]`` of its images, for every weight decay of
    :func:`available_weight_decays`. Each row also carries the checkpoint's ``record``
    (provenance, per-epoch dynamics, track snapshots), so that a chapter opens every checkpoint
    once."""
    _clean(regime)
    mode, seeds = get_mode(mode), (0,) if seeds is None else tuple(seeds)
    if len(seeds) != 1:
        raise ValueError(f"seeds must name one seed (the table is one seed's), got {seeds}.")
    weight_decays = available_weight_decays(seeds[0])
    if not weight_decays:
        raise FileNotFoundError(
            f"no weight decay has both chapter-10 checkpoints of seed {seeds[0]}; "
            "train them with `python -m dyndl_lite reproduce`."
        )
    test = load_mnist("test") if test is None else test
    rows, records = [], {}
    for residual in (True, False):
        for gamma in weight_decays:
            name = model_name(residual, gamma)
            model, record = load(name, seeds[0])
            records[checkpoint_name(name, seeds[0])] = record
            rows.append(
                {
                    "network": "residual" if residual else "plain",
                    "weight_decay": gamma,
                    **evaluate_row(model, test, OTS_POINTS_BY_MODE[mode]),
                    "train_acc": record["train_acc"],
                    "epochs_run": record["epochs_run"],
                    "record": record,
                }
            )
    return GaiTable(
        regime=regime,
        mode=mode,
        seeds=seeds,
        data=test.name,
        images=len(test),
        accuracy_label=test.accuracy_label,
        fallback=test.is_fallback,
        records={
            checkpoint_name(model_name(r["network"] == "residual", r["weight_decay"]), seeds[0]): r[
                "record"
            ]
            for r in rows
        },
        rows=tuple(rows),
        ots_points=rows[0]["ots_points"],
        weight_decays=tuple(weight_decays),
    )


# -------------------------------------------------------------- the chapter's pictures and controls

OLD_BASIS = "PCA refitted at each epoch (older record)"


def snapshot_basis(record: dict) -> str:
    """How a record's 2-D track pictures were projected (its ``snapshots["basis"]``; older records
    lack it)."""
    return record.get("snapshots", {}).get("basis", OLD_BASIS)


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
