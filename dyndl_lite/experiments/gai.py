"""Chapter 10's experiment: residual vs plain MNIST networks across a weight-decay sweep
(Gai & Zhang 2021).

Networks: :func:`dyndl_lite.models.residual.mnist_tracknet` (tracks in R^32,
8 blocks; how tracks are formed is defined there, once). The experiment ``gai``
has one model per architecture and weight decay of :data:`PAPER_WEIGHT_DECAYS`
(``resnet-wd5e-4``, ``plain-wd0``, ...); :func:`train` trains it on
the MNIST training set with :func:`recipe`, recording after every epoch the
training accuracy and the mean LSS on :data:`TRACK_POINTS` fixed test images
and, at a few epochs, the tracks of :data:`SNAPSHOT_POINTS` test images drawn
separately (another seed; they may overlap the LSS images), pictured in 2-D on one
PCA basis, into checkpoint ``gai-{resnet|plain}-wd{gamma}-seed{S}``.
:func:`table` reads the checkpoints' evaluation records (:mod:`dyndl_lite.records`: test
accuracy with its per-image outcomes, mean LSS and exact OTS on all 10,000 MNIST test images,
protocol gai), measuring live only a reader's own checkpoint that has none, into a
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

from dyndl_lite import pretrained, protocols, records, runs
from dyndl_lite.config import get_mode
from dyndl_lite.data import ImageData, load_mnist
from dyndl_lite.experiments.gai_paper import PAPER as PAPER
from dyndl_lite.experiments.gai_paper import PAPER_SOURCE as PAPER_SOURCE
from dyndl_lite.experiments.gai_paper import PAPER_WEIGHT_DECAYS
from dyndl_lite.experiments.gai_report import (
    FROM_RECORD,
    LIVE_NO_RECORD,
    LIVE_TWIN,
    full_points,
)
from dyndl_lite.experiments.gai_report import verdict_markdown as verdict_markdown
from dyndl_lite.experiments.gai_report import verdict_paragraph as verdict_paragraph
from dyndl_lite.experiments.results import GaiTable
from dyndl_lite.geodesic import fixed_basis_pca, lss_summary, ots, tracks
from dyndl_lite.models.residual import MNIST_DEPTH, MNIST_HIDDEN, MNIST_WIDTH, mnist_tracknet
from dyndl_lite.record_format import Record, RecordError, record_path, remedy
from dyndl_lite.train import Recipe, evaluate

SEEDS = (0,)
#: How the training images are perturbed: never, in this experiment.
REGIMES = ("clean",)
# Gai & Zhang picture training up to epoch 160; the book's full recipe runs that long.
FULL_EPOCHS = 160
TRACK_POINTS = 1000  # fixed test images (seed 0 subset) for LSS during training
# test images whose 2-D tracks are stored at SNAPSHOT_EPOCHS: a subset drawn with seed 1,
# independently of the TRACK_POINTS images (seed 0), so the two sets may overlap
SNAPSHOT_POINTS = 200
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

    ``dynamics``: the epoch, the mean LSS on :data:`TRACK_POINTS` fixed test images
    (``test.subset(., seed=0)``) and the training accuracy. ``snapshot_tracks``: at
    :func:`snapshot_epochs`, the tracks (rounded to 1e-4) of :data:`SNAPSHOT_POINTS` test images
    drawn separately (``test.subset(., seed=1)``, independently of the LSS images, so some may be
    among them), projected at the end on one basis.
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
    """Accuracy on all of ``test`` (``test_acc``, :func:`dyndl_lite.accuracy.evaluate`) with its
    per-image outcomes (``correct``, a boolean array: :func:`dyndl_lite.protocols.outcomes`, whose
    sum must equal the accuracy's count), mean LSS (with its standard error over images,
    ``lss_se``) and exact OTS between x(0) and x(n) on at most ``ots_points`` of its images.

    The counts used are returned beside the numbers: ``eval_images`` (all of ``test``) and
    ``ots_points`` (``min(ots_points, len(test))``: the offline fallback holds only 1,000 images).
    ``accuracy_label`` says what the accuracy is (test accuracy only on official test data).
    """
    used = min(ots_points, len(test))
    sub = test.subset(used, seed=0).images
    track = tracks(model, sub)
    summary = lss_summary(track)
    accuracy = evaluate(model, test.images, test.labels)
    correct = protocols.outcomes(model, test.images, test.labels).numpy()
    if int(correct.sum()) != round(accuracy * len(test)):
        raise RuntimeError(
            f"the per-image outcomes count {int(correct.sum())} correct, the accuracy "
            f"{round(accuracy * len(test))}: the two evaluations disagree."
        )
    return {
        "test_acc": accuracy,
        "correct": correct,
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


# ------------------------------------------------------------------------------------ the table


def evaluation_record(name: str) -> Record | None:
    """The current evaluation record of checkpoint ``name`` (:func:`dyndl_lite.records.load`), or
    ``None`` when the checkpoint is a reader's own (user folder) and has no record: its row is
    then measured live. A shipped checkpoint without a record, and a stale or edited record
    anywhere, is a :class:`~dyndl_lite.record_format.RecordError` naming ``make evaluate``."""
    folder = pretrained.locate(name)
    if folder != pretrained.SHIPPED_DIR and not record_path(name, folder).exists():
        return None
    return records.load(name, folder)


def recorded_row(record: Record, points: int | None = None) -> dict:
    """A row's numbers from an evaluation record: ``test_acc = k / n`` of its ``clean`` cell
    (``eval_images = n``) with the cell's per-image outcomes (``correct``), and the mean LSS
    (``lss_se``, ``lss_left_out``) and OTS of its scalars ``lss-<points>`` and ``ots-<points>``
    (default :func:`full_points`)."""
    points = full_points() if points is None else points
    missing = [s for s in (f"lss-{points}", f"ots-{points}") if s not in record.scalars]
    if "clean" not in record.cells or missing:
        raise RecordError(
            f"The evaluation record of {record.checkpoint} lacks "
            f"{missing or ['the clean cell']}. {remedy(record.checkpoint)}"
        )
    clean, lss = record.cells["clean"], record.scalars[f"lss-{points}"]
    return {
        "test_acc": clean.k / clean.n,
        "correct": clean.outcomes,
        "lss": lss["value"],
        "lss_se": lss["se"],
        "lss_left_out": lss["left_out"],
        "ots": record.scalars[f"ots-{points}"]["value"],
        "eval_images": clean.n,
        "ots_points": points,
        "accuracy_label": "test accuracy",
    }


def _checkpoint_record(name: str, record: Record | None) -> dict:
    """Checkpoint ``name``'s training record (``loaded_from`` added), which must describe the
    weights its evaluation record was measured on."""
    folder = pretrained.locate(name)
    checkpoint = pretrained.load_record(name, folder) | {"loaded_from": str(folder)}
    if record is not None and checkpoint["weights_sha256"] != record.key["weights_sha256"]:
        raise RecordError(
            f"The training record of {name} describes other weights than its evaluation record. "
            f"{remedy(name)}"
        )
    return checkpoint


def _row(
    residual: bool,
    gamma: float,
    seed: int,
    record: Record | None,
    live: ImageData | None,
    mode: str,
) -> dict:
    """One row of :func:`table`: from ``record`` (:func:`recorded_row`), or, with ``live`` data,
    measured on them by :func:`evaluate_row` with :data:`OTS_POINTS_BY_MODE` ``[mode]`` (its
    ``source`` says which)."""
    name = checkpoint_name(model_name(residual, gamma), seed)
    if live is not None:
        model, checkpoint = load(model_name(residual, gamma), seed)
        numbers = evaluate_row(model, live, OTS_POINTS_BY_MODE[mode])
        source = LIVE_NO_RECORD if record is None else LIVE_TWIN
    elif record is not None:
        checkpoint = _checkpoint_record(name, record)
        numbers, source = recorded_row(record), FROM_RECORD
    else:
        raise ValueError(f"{name}: no evaluation record, and no data to measure it on live.")
    return {
        "network": "residual" if residual else "plain",
        "weight_decay": gamma,
        **numbers,
        "train_acc": checkpoint["train_acc"],
        "epochs_run": checkpoint["epochs_run"],
        "checkpoint": name,
        "source": source,
        "record": checkpoint,
    }


def _measured_on(rows: list[dict], test: ImageData | None, recorded: Record | None) -> str:
    """The table's data in words: the records' test set and protocol, and the weight decays
    measured live on ``test`` (with their counts)."""
    parts = []
    if recorded is not None:
        key = recorded.key
        parts.append(
            f"{key['data']}, from the networks' evaluation records (protocol {key['protocol']} "
            f"v{key['protocol_version']})"
        )
    live = [r for r in rows if r["source"] != FROM_RECORD]
    if live and test is not None:
        gammas = ", ".join(sorted({f"{r['weight_decay']:g}" for r in live}, key=float))
        parts.append(
            f"γ = {gammas} measured live on {test.name} (accuracy on all "
            f"{live[0]['eval_images']:,} images, LSS and OTS on {live[0]['ots_points']:,} of "
            "them): no evaluation record"
        )
    return "; ".join(parts)


def table(
    regime: str = "clean",
    mode: str = "quick",
    seeds: Sequence[int] | None = None,
    test: ImageData | None = None,
) -> GaiTable:
    """One row per (architecture, weight decay) of :func:`available_weight_decays` for one seed
    (``seeds``, default ``(0,)``), residual rows first.

    In every mode a row's numbers are its network's evaluation record's (:func:`recorded_row`:
    test accuracy on all 10,000 official MNIST test images, mean LSS and exact OTS on all of them,
    the Gai protocol), whatever ``test`` holds; a chapter re-checks them live with
    :func:`dyndl_lite.recorded.show` and
    :func:`~dyndl_lite.experiments.gai_report.recheck_scalars`. Only a weight decay where a
    network is a reader's own checkpoint without a record (user folder) is measured live on
    ``test`` (default: MNIST test) by :func:`evaluate_row`, both networks of the pair (compared on
    the same images), LSS and OTS on :data:`OTS_POINTS_BY_MODE` ``[mode]`` of its images; each
    row's ``source`` says which (:data:`FROM_RECORD`, :data:`LIVE_NO_RECORD`, :data:`LIVE_TWIN`).
    Each row also carries its per-image outcomes ``correct`` (on the ``eval_images`` images, the
    same for both networks of a weight decay: what
    :func:`dyndl_lite.verdicts.generalizes_better` pairs), its ``checkpoint`` name and training
    ``record`` (provenance, per-epoch dynamics, track snapshots)."""
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
    found = {
        (residual, g): evaluation_record(checkpoint_name(model_name(residual, g), seeds[0]))
        for residual in (True, False)
        for g in weight_decays
    }
    live_gammas = {g for (_, g), record in found.items() if record is None}
    if live_gammas and test is None:
        test = load_mnist("test")
    rows = [
        _row(residual, g, seeds[0], record, test if g in live_gammas else None, mode)
        for (residual, g), record in found.items()
    ]
    from_records = [r for r in rows if r["source"] == FROM_RECORD]
    shown = (from_records or rows)[0]  # the counts of the table: the records', where there are
    first = found[shown["network"] == "residual", shown["weight_decay"]] if from_records else None
    return GaiTable(
        regime=regime,
        mode=mode,
        seeds=seeds,
        data=_measured_on(rows, test, first),
        images=shown["eval_images"],
        accuracy_label="; ".join(dict.fromkeys(r["accuracy_label"] for r in rows)),
        fallback=bool(live_gammas) and test is not None and test.is_fallback,
        records={r["checkpoint"]: r["record"] for r in rows},
        rows=tuple(rows),
        ots_points=shown["ots_points"],
        weight_decays=tuple(weight_decays),
    )


def table_lines(table: GaiTable) -> list[str]:
    """The chapter's table of :func:`dyndl_lite.experiments.gai.table`: what it was measured on,
    one line per row (a row measured live is marked ``†``), and what the columns mean."""
    acc = "test acc" if table.accuracy_label == "test accuracy" else "accuracy"
    counts = {(r["eval_images"], r["ots_points"]) for r in table.rows}
    what = "Accuracy, LSS (mean per-sample LSS) and exact OTS"
    if len(counts) == 1:
        images, points = counts.pop()
        what = (
            f"Accuracy on all {images:,} images, LSS (mean per-sample LSS) and exact OTS on "
            f"{'all' if points == images else ''} {points:,} of them"
        ).replace("  ", " ")
    lines = [
        f"{table.mode} mode. {what}: {table.data}.",
        f"{'network':>9} {'gamma':>7} {acc:>12} {'train acc':>10} {'epochs':>6} "
        f"{'LSS':>6} {'s.e.':>5} {'OTS':>6}  tracks without LSS*",
    ]
    for r in table.rows:
        mark = "" if r["source"] == FROM_RECORD else f"  † {r['source']}"
        lines.append(
            f"{r['network']:>9} {r['weight_decay']:7.0e} {r['test_acc']:12.4f} "
            f"{r['train_acc']:10.4f} {r['epochs_run']:6d} {r['lss']:6.2f} "
            f"{r['lss_se']:5.3f} {r['ots']:6.3f}  {r['lss_left_out']}{mark}"
        )
    return lines + [
        "* tracks with a zero-length step (possible only in the plain network) have no LSS "
        "and are left out of the mean",
        "s.e.: standard error of the mean LSS over the images (their sampling alone)",
        "train acc: the training loop's running accuracy over the last epoch's batches "
        "(from the checkpoint record)",
    ]


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
