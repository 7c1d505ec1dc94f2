"""Chen et al. (2018), Table 1: four MNIST models, their training run, and the table read from
their evaluation records.

The models are :mod:`dyndl_lite.models.chen`'s MLP, ResNet, RK-Net and ODE-Net; the
paper's recipe is :func:`recipe` (torchdiffeq's ``examples/odenet_mnist.py``);
checkpoints are ``chen-<model>-seed<S>``. :func:`train` trains one
(``python -m dyndl_lite train chen --model resnet --epochs 10``); :func:`table`
reads the evaluation records (:mod:`dyndl_lite.records`, protocol
:data:`dyndl_lite.protocols.CHEN`) of the checkpoints found (user folder first, then shipped) into
a :class:`~dyndl_lite.experiments.results.ChenTable`, measuring live only a user-folder checkpoint
without a record, and :func:`verdict_markdown` / :func:`verdict_paragraph`
(:mod:`~dyndl_lite.experiments.chen_report`) compare it with the paper. Every network is trained
on clean images (:data:`REGIMES`). Chapter 4 also runs
:func:`~dyndl_lite.experiments.chen_measure.adjoint_nfe_sweep` (Fig. 3c) live;
:func:`~dyndl_lite.experiments.chen_measure.tolerance_sweep` (Fig. 3a) is what the records' sweep
was measured with.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from dyndl_lite import pretrained, protocols, records, runs, significance, verdicts
from dyndl_lite.config import get_mode
from dyndl_lite.data import ImageData, load_mnist
from dyndl_lite.experiments.chen_measure import adjoint_nfe_sweep as adjoint_nfe_sweep
from dyndl_lite.experiments.chen_measure import correct_per_image, tolerance_sweep
from dyndl_lite.experiments.chen_report import FROM_RECORD, MEASURED_LIVE
from dyndl_lite.experiments.chen_report import verdict_markdown as verdict_markdown
from dyndl_lite.experiments.chen_report import verdict_paragraph as verdict_paragraph
from dyndl_lite.experiments.results import ChenTable
from dyndl_lite.models.blocks import count_parameters
from dyndl_lite.models.chen import MODELS, PAPER_PARAMETERS_M, PAPER_TEST_ERROR_PERCENT, chen_model
from dyndl_lite.record_format import data_key
from dyndl_lite.train import Recipe

#: Chen et al.'s Table 1 as published: test error (%) and parameters (millions) per model.
PAPER = {
    model: {
        "test_error_percent": PAPER_TEST_ERROR_PERCENT[model],
        "parameters_m": PAPER_PARAMETERS_M[model],
    }
    for model in MODELS
}
PAPER_SOURCE = (
    "Chen, Rubanova, Bettencourt, Duvenaud, Neural Ordinary Differential Equations, NeurIPS 2018, "
    "Table 1"
)


#: Chen et al.'s recipe, from torchdiffeq's ``examples/odenet_mnist.py``: SGD 0.1, momentum 0.9,
#: batch 128, 160 epochs, learning rate x0.1 at epochs 60, 100 and 140, RandomCrop(28, padding=4).
PAPER_RECIPE = Recipe("chen-full", epochs=160, lr=0.1, milestones=(60, 100, 140), crop_padding=4)


#: The book's own runs (plans/book.toml): the recipe compressed to 15 epochs, 40 for the cheap MLP.
BOOK_EPOCHS = {"mlp": 40, "resnet": 15, "rknet": 15, "odenet": 15}
#: How the training images are perturbed: never, in Chen et al.'s experiment.
REGIMES = ("clean",)


def _checked(model: str, regime: str) -> None:
    """A ``ValueError`` naming ``model`` or ``regime`` unless they are of :data:`MODELS` and
    :data:`REGIMES`."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}.")
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES} for Chen et al., got {regime!r}.")


def recipe(model: str, regime: str = "clean") -> Recipe:
    """The paper's recipe, the same for every model: :data:`PAPER_RECIPE`."""
    _checked(model, regime)
    return PAPER_RECIPE


def checkpoint_name(model: str, seed: int = 0, regime: str = "clean") -> str:
    """``chen-<model>-seed<S>``."""
    _checked(model, regime)
    return f"chen-{model}-seed{seed}"


EXPERIMENT = runs.Experiment(
    name="chen",
    models=MODELS,
    build=chen_model,
    recipe=recipe,
    checkpoint_name=checkpoint_name,
    book_epochs=lambda model: BOOK_EPOCHS[model],
    description="Chen et al. (2018) Table 1: four MNIST models, checkpoints chen-<model>-seed<S>",
)
EXPERIMENTS = (EXPERIMENT,)


def train(model: str, seed: int = 0, regime: str = "clean", **options: Any) -> Path:
    """Train (or resume) Chen et al.'s ``model``; ``options`` as :func:`dyndl_lite.runs.train`.
    Returns the weights path."""
    _checked(model, regime)
    return runs.train(EXPERIMENT, model, seed, **options)


def load(
    model: str, seed: int = 0, regime: str = "clean", epochs: int | None = None
) -> tuple[torch.nn.Module, dict]:
    """Chen et al.'s ``model`` with checkpoint ``chen-<model>-seed<S>`` loaded (the book's run, or
    with ``epochs`` the run of that length), and its record."""
    _checked(model, regime)
    return runs.load(EXPERIMENT, model, seed, epochs=epochs)


def _one_seed(seeds: Sequence[int] | None) -> int:
    """The seed of a table of one seed's networks (default 0), or a ``ValueError`` naming
    ``seeds``."""
    seeds = (0,) if seeds is None else tuple(seeds)
    if len(seeds) != 1:
        raise ValueError(f"seeds must name one seed (the table is one seed's), got {seeds}.")
    return seeds[0]


#: Where a row of :func:`table` has its numbers from: a current evaluation record
#: (:mod:`dyndl_lite.records`, the paper's full protocol on official MNIST test), or, for a
#: checkpoint of the user folder without one, a measurement on the chapter's data now.


def _evaluation_record(name: str, folder: Path) -> records.Record | None:
    """The current evaluation record of checkpoint ``name`` in ``folder``
    (:func:`dyndl_lite.records.load`: a missing, edited or stale record raises a
    :class:`~dyndl_lite.records.RecordError` naming ``make evaluate``), or ``None`` for a
    checkpoint of the user folder that has no record file (a reader's own ``train``). A shipped
    checkpoint must have a current record."""
    if not pretrained.inside_shipped(folder) and not records.record_path(name, folder).exists():
        return None
    return records.load(name, folder)


def _base_row(model: str, net: torch.nn.Module, record: dict) -> dict:
    """The numbers of a row of :func:`table` that do not depend on where its error comes from:
    parameters, the training record and the paper's numbers."""
    return {
        "model": model,
        "parameters": count_parameters(net),
        "recorded_test_error_percent": (
            None if record.get("test_acc") is None else 100 * (1 - record["test_acc"])
        ),
        "epochs_run": record["epochs_run"],
        "record": record,
        "paper_parameters_m": PAPER[model]["parameters_m"],
        "paper_test_error_percent": PAPER[model]["test_error_percent"],
    }


def _recorded_row(
    model: str, net: torch.nn.Module, record: dict, evaluation: records.Record
) -> dict:
    """A row of :func:`table` read from the checkpoint's evaluation record ``evaluation``: test
    error ``100 (1 - k / n)`` of its ``clean`` cell, ``k`` of the ``n`` official MNIST test images
    classified correctly."""
    clean = evaluation.cells["clean"]
    return _base_row(model, net, record) | {
        "test_error_percent": 100 * (1 - clean.value),
        "eval_images": clean.n,
        "eval_seconds": None,
        "data": evaluation.key["data"],
        # records are measured on official MNIST test only (records.official_test_data)
        "accuracy_label": "test accuracy",
        "source": FROM_RECORD,
    }


def _live_row(
    model: str,
    net: torch.nn.Module,
    record: dict,
    correct: torch.Tensor,
    test: ImageData,
    seconds: float,
) -> dict:
    """A row of :func:`table` measured now on ``test``: error ``100 (1 - mean_i correct_i)`` of
    the per-image correctness ``correct`` (:func:`correct_per_image`) on all of ``test``."""
    return _base_row(model, net, record) | {
        "test_error_percent": 100 * (1 - correct.double().mean().item()),
        "eval_images": len(test),
        "eval_seconds": seconds,
        "data": test.name,
        "accuracy_label": test.accuracy_label,
        "source": MEASURED_LIVE,
    }


def _recorded_sweep(evaluation: records.Record) -> list[dict]:
    """The ODE-Net's tolerance sweep (Chen et al. Fig. 3a) read from its evaluation record, one row
    per ``tol-<tol>`` cell in order of decreasing tolerance: the test error
    ``100 (1 - k / n)`` of the cell (all ``n`` images), and the scalars ``solver-error-<tol>``
    (measured on ``reference_images`` images against a solve at ``reference_tol``) and
    ``nfe-forward-<tol>`` (mean forward NFE per batch), as :func:`tolerance_sweep` measured them."""
    tols = sorted(
        (protocols.parse_cell(c)[1] for c in evaluation.cells if c.startswith("tol-")),
        reverse=True,
    )
    rows = []
    for tol in tols:
        cell = evaluation.cells[f"tol-{tol:.0e}"]
        error = evaluation.scalars[f"solver-error-{tol:.0e}"]
        rows.append(
            {
                "tol": tol,
                "solver_error": error["value"],
                "test_error_percent": 100 * (1 - cell.value),
                "nfe_forward": evaluation.scalars[f"nfe-forward-{tol:.0e}"]["value"],
                "reference_tol": error["reference_tol"],
                "reference_images": error["n"],
                "images": cell.n,
                "data": evaluation.key["data"],
                "source": FROM_RECORD,
            }
        )
    return rows


class _Outcomes(NamedTuple):
    """One network's per-image correctness as :func:`table` found it: on which images (the SHA-256
    of :func:`~dyndl_lite.record_format.data_key`, and their name) and from where
    (:data:`FROM_RECORD` or :data:`MEASURED_LIVE`)."""

    net: torch.nn.Module
    data_sha256: str
    correct: np.ndarray
    data: str
    source: str


def _paired(found: dict[str, _Outcomes], test: ImageData | None, margin: float) -> dict:
    """The ResNet against the ODE-Net on the same images (McNemar,
    :func:`dyndl_lite.significance.paired_accuracy_difference` with the ResNet first, so that
    ``difference`` is ``err_ODE - err_ResNet`` in points) with ``data`` (the images' name) and
    ``sources`` (per model, where its outcomes come from). Outcomes on the same images (two
    evaluation records, or a record and a live measurement on the records' images) are paired as
    they are; otherwise both networks are measured live on all of ``test`` (default MNIST test)."""
    res, ode = found["resnet"], found["odenet"]
    if res.data_sha256 == ode.data_sha256:
        a, b, data = res.correct, ode.correct, res.data
        sources = {"resnet": res.source, "odenet": ode.source}
    else:
        test = test if test is not None else load_mnist("test")
        a, b = (correct_per_image(o.net, test).numpy() for o in (res, ode))
        data, sources = test.name, {"resnet": "measured live", "odenet": "measured live"}
    paired = significance.paired_accuracy_difference(
        np.asarray(a, dtype=bool), np.asarray(b, dtype=bool), margin
    )
    return paired | {"data": data, "sources": sources}


def _from_record(
    model: str, net: torch.nn.Module, record: dict, evaluation: records.Record
) -> tuple[dict, _Outcomes, list[dict]]:
    """A model's row, per-image outcomes and (for an ODE-Net) sweep, read from its evaluation
    record."""
    outcomes = _Outcomes(
        net,
        evaluation.key["data_sha256"],
        evaluation.cells["clean"].outcomes,
        evaluation.key["data"],
        FROM_RECORD,
    )
    sweep = _recorded_sweep(evaluation) if model == "odenet" else []
    return _recorded_row(model, net, record, evaluation), outcomes, sweep


def _from_live(
    model: str, net: torch.nn.Module, record: dict, test: ImageData
) -> tuple[dict, _Outcomes, list[dict]]:
    """A model's row, per-image outcomes and (for an ODE-Net) sweep, measured live on all of
    ``test`` (a checkpoint of the user folder without an evaluation record)."""
    start = time.perf_counter()
    correct = correct_per_image(net, test)
    row = _live_row(model, net, record, correct, test, time.perf_counter() - start)
    outcomes = _Outcomes(
        net, data_key(test)["data_sha256"], correct.numpy(), test.name, MEASURED_LIVE
    )
    sweep = []
    if model == "odenet":
        extra = {"images": len(test), "data": test.name, "source": MEASURED_LIVE}
        sweep = [r | extra for r in tolerance_sweep(net, test)]
    return row, outcomes, sweep


def table(
    regime: str = "clean",
    mode: str = "quick",
    seeds: Sequence[int] | None = None,
    test: ImageData | None = None,
) -> ChenTable:
    """Chen et al.'s Table 1 from the checkpoints of one seed (``seeds``, default ``(0,)``), one
    row per model with a checkpoint (user folder first, then shipped): its parameters, its test
    error, the error recorded at training time, the epochs run and the paper's numbers; the
    ODE-Net against the ResNet on the same images (paired, McNemar); and the ODE-Net's tolerance
    sweep (Chen et al. Fig. 3a).

    Each network's numbers are read from its **evaluation record** (:mod:`dyndl_lite.records`,
    protocol :data:`dyndl_lite.protocols.CHEN`: all 10,000 official MNIST test images), the same in
    both modes and whatever ``test`` is: error ``100 (1 - k / n)`` of the record's ``clean`` cell,
    the paired comparison from the two records' per-image outcomes, the sweep from the ``tol-*``
    cells and the ``solver-error-*`` / ``nfe-forward-*`` scalars. A record that is missing (for a
    shipped checkpoint), edited or stale raises a :class:`~dyndl_lite.records.RecordError` naming
    ``make evaluate``. A checkpoint of the user folder without a record is measured live on all of
    ``test`` (default: :func:`~dyndl_lite.data.load_mnist` ``("test")``, loaded only then), its row
    labelled :data:`MEASURED_LIVE` (its sweep too, by :func:`tolerance_sweep`). A training record
    without a test accuracy (a run on the offline fallback) has ``recorded_test_error_percent``
    ``None``. The live re-check of the records is :func:`dyndl_lite.recorded.show`'s, in the
    chapter."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES} for Chen et al., got {regime!r}.")
    mode, seed = get_mode(mode), _one_seed(seeds)
    rows: list[dict] = []
    found: dict[str, _Outcomes] = {}
    evaluations: dict[str, records.Record] = {}
    sweep: list[dict] = []
    for model in MODELS:
        name = checkpoint_name(model, seed)
        if not pretrained.exists(name):
            continue
        net, record = load(model, seed)
        evaluation = _evaluation_record(name, Path(record["loaded_from"]))
        if evaluation is not None:
            evaluations[name] = evaluation
        else:
            test = test if test is not None else load_mnist("test")
        row, found[model], model_sweep = (
            _from_record(model, net, record, evaluation)
            if evaluation is not None
            else _from_live(model, net, record, test)
        )
        rows.append(row)
        sweep = model_sweep if model == "odenet" else sweep
    margin = verdicts.CHEN_EQUIVALENCE_MARGIN
    paired = _paired(found, test, margin) if {"resnet", "odenet"} <= set(found) else None
    if not rows:
        test = test if test is not None else load_mnist("test")
    return _assembled(regime, mode, seed, rows, test, paired, sweep, evaluations)


def _assembled(
    regime: str,
    mode: str,
    seed: int,
    rows: list[dict],
    test: ImageData | None,
    paired: dict | None,
    sweep: list[dict],
    evaluations: dict[str, records.Record],
) -> ChenTable:
    """The :class:`~dyndl_lite.experiments.results.ChenTable` of :func:`table`'s rows: their data,
    in order (one entry unless a live row sits beside records on other images)."""
    shared = list(dict.fromkeys((r["data"], r["eval_images"], r["accuracy_label"]) for r in rows))
    shared = shared or [(test.name, len(test), test.accuracy_label)]
    live = any(r["source"] == MEASURED_LIVE for r in rows) or not rows
    return ChenTable(
        regime=regime,
        mode=mode,
        seeds=(seed,),
        data="; ".join(dict.fromkeys(d for d, _, _ in shared)),
        images=shared[0][1],
        accuracy_label="; ".join(dict.fromkeys(a for _, _, a in shared)),
        fallback=live and test is not None and test.is_fallback,
        records={checkpoint_name(row["model"], seed): row["record"] for row in rows},
        rows=tuple(rows),
        paired=paired,
        sweep=tuple(sweep),
        evaluation_records=evaluations,
    )
