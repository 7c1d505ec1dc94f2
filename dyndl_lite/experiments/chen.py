"""Chen et al. (2018), Table 1: four MNIST models, their training run, and the table read from
their evaluation records.

The models are :mod:`dyndl_lite.models.chen`'s MLP, ResNet, RK-Net and ODE-Net; the
paper's recipe is :func:`recipe` (torchdiffeq's ``examples/odenet_mnist.py``);
checkpoints are ``chen-<model>-seed<S>``. :func:`train` trains one
(``python -m dyndl_lite train chen --model resnet --epochs 10``); :func:`table`
reads the evaluation records (:mod:`dyndl_lite.records`, protocol
:data:`dyndl_lite.protocols.CHEN`) of the checkpoints found (user folder first, then shipped) into
a :class:`~dyndl_lite.experiments.results.ChenTable`, measuring live only a user-folder checkpoint
without a record, and :func:`verdict_markdown` / :func:`verdict_paragraph` compare it with the
paper. Every network is trained on clean images (:data:`REGIMES`). Chapter 4 also uses
:func:`adjoint_nfe_sweep` (Fig. 3c) live, and :func:`tolerance_sweep` (Fig. 3a) is what the
records' sweep was measured with.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from dyndl_lite import pretrained, protocols, records, runs, significance, verdicts
from dyndl_lite.config import flush_denormals, get_device, get_mode
from dyndl_lite.data import ImageData, load_mnist
from dyndl_lite.experiments.results import ChenTable
from dyndl_lite.models.blocks import count_parameters, evaluation_mode
from dyndl_lite.models.chen import MODELS, PAPER_PARAMETERS_M, PAPER_TEST_ERROR_PERCENT, chen_model
from dyndl_lite.record_format import data_key
from dyndl_lite.train import Recipe, evaluate, ode_blocks

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
FROM_RECORD = "evaluation record"
MEASURED_LIVE = "measured live, no evaluation record"


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
            rows.append(_recorded_row(model, net, record, evaluation))
            found[model] = _Outcomes(
                net,
                evaluation.key["data_sha256"],
                evaluation.cells["clean"].outcomes,
                evaluation.key["data"],
                FROM_RECORD,
            )
            sweep = _recorded_sweep(evaluation) if model == "odenet" else sweep
            continue
        test = test if test is not None else load_mnist("test")
        start = time.perf_counter()
        correct = correct_per_image(net, test)
        rows.append(_live_row(model, net, record, correct, test, time.perf_counter() - start))
        found[model] = _Outcomes(
            net, data_key(test)["data_sha256"], correct.numpy(), test.name, MEASURED_LIVE
        )
        if model == "odenet":
            extra = {"images": len(test), "data": test.name, "source": MEASURED_LIVE}
            sweep = [r | extra for r in tolerance_sweep(net, test)]
    margin = verdicts.CHEN_EQUIVALENCE_MARGIN
    paired = _paired(found, test, margin) if {"resnet", "odenet"} <= set(found) else None
    if not rows:
        test = test if test is not None else load_mnist("test")
    # the rows' data, in order; one entry unless a live row sits beside records on other images
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


def _ode_block_input(
    net: torch.nn.Module, images: torch.Tensor
) -> tuple[torch.nn.Module, torch.Tensor]:
    """(the ODE block of a Chen et al. ODE-Net, its input ``downsampling(images)``)."""
    blocks = ode_blocks(net)
    if (
        not blocks
        or not hasattr(net, "downsampling")
        or getattr(net, "feature", None) is not blocks[0]
    ):
        raise ValueError(
            "needs Chen et al.'s ODE-Net (chen_model('odenet')): downsampling, one ODE block, head."
        )
    with torch.inference_mode():
        return blocks[0], net.downsampling(images)


def _checked_sweep(
    tolerances: Sequence[float], reference_tol: float, reference_images: int
) -> list[float]:
    """The tolerances as floats, or a ``ValueError`` naming the argument that cannot be used."""
    tolerances = [float(t) for t in tolerances]
    if not tolerances or not all(t > 0 for t in tolerances):
        raise ValueError(f"tolerances must be positive numbers, got {tolerances}.")
    if not 0 < reference_tol < min(tolerances):
        raise ValueError(
            "reference_tol must be positive and tighter than every tolerance "
            f"({min(tolerances):g}), got {reference_tol:g}."
        )
    if not isinstance(reference_images, int) or reference_images < 1:
        raise ValueError(f"reference_images must be a positive integer, got {reference_images!r}.")
    return tolerances


def _relative_error(block: torch.nn.Module, z0: torch.Tensor, reference: torch.Tensor) -> float:
    """``mean_i |h(1)_i - h_ref(1)_i| / |h_ref(1)_i|`` of the block's output at its current
    tolerance against the flattened ``reference``."""
    with torch.inference_mode():
        output = block(z0).flatten(1)
        return ((output - reference).norm(dim=1) / reference.norm(dim=1)).mean().item()


def tolerance_sweep(
    net: torch.nn.Module,
    test: ImageData,
    tolerances: Sequence[float] = (1e-1, 1e-2, 1e-3, 1e-4),
    batch_size: int = 1000,
    reference_tol: float = 1e-7,
    reference_images: int = 100,
) -> list[dict]:
    """An ODE-Net evaluated with ``rtol = atol = tol`` for each tolerance, as in Chen et al.'s
    Fig. 3a.

    Per tolerance: the solver's numerical error, the mean forward NFE, the test error on all of
    ``test`` and the seconds taken. The numerical error is measured on the first
    ``reference_images`` images against a solve at ``reference_tol``:

    .. math::  e(\\mathrm{tol}) = \\frac{1}{m}\\sum_{i=1}^m
               \\frac{\\|h_{\\mathrm{tol}}(1)_i - h_{\\mathrm{ref}}(1)_i\\|_2}
               {\\|h_{\\mathrm{ref}}(1)_i\\|_2},

    with ``h(1)`` the ODE block's output (the 64 feature maps). Only the evaluation tolerance
    changes; the weights stay those trained at 1e-3, and the block's tolerances are restored
    afterwards.
    """
    tolerances = _checked_sweep(tolerances, reference_tol, reference_images)
    block, z0 = _ode_block_input(net, test.images[:reference_images])
    saved = (block.rtol, block.atol)
    nfe_seen: list[int] = []
    hook = block.register_forward_hook(
        lambda module, args, out: nfe_seen.append(module.nfe_forward)
    )
    rows = []
    try:
        with torch.inference_mode():
            block.rtol = block.atol = reference_tol
            reference = block(z0).flatten(1)
            reference_nfe = block.nfe_forward
        for tol in tolerances:
            block.rtol = block.atol = tol
            error = _relative_error(block, z0, reference)
            nfe_seen.clear()
            start = time.perf_counter()
            accuracy = evaluate(net, test.images, test.labels, batch_size=batch_size)
            rows.append(
                {
                    "tol": tol,
                    "solver_error": error,
                    "test_error_percent": 100 * (1 - accuracy),
                    "nfe_forward": sum(nfe_seen) / len(nfe_seen),
                    "seconds": time.perf_counter() - start,
                    "reference_tol": reference_tol,
                    "reference_nfe": reference_nfe,
                    "reference_images": len(z0),
                }
            )
    finally:
        hook.remove()
        block.rtol, block.atol = saved
    return rows


def adjoint_nfe_sweep(
    net: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    tolerances=(1e-1, 1e-2, 1e-3, 1e-4),
) -> list[dict]:
    """Forward and backward (adjoint) NFE of one gradient evaluation of an ODE-Net per tolerance
    (Chen et al. Fig. 3c).

    For each ``tol`` the block is switched to the adjoint method with ``rtol = atol = tol``, the
    cross-entropy of ``(images, labels)`` is differentiated once, and the evaluations of the forward
    solve and of the backward solve of the adjoint system are counted;
    ``ratio = nfe_backward / nfe_forward``. The weights are not changed (gradients are cleared); the
    block's settings are restored afterwards.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(
            "images and labels must be non-empty and of equal length, "
            f"got {len(images)} and {len(labels)}."
        )
    block = ode_blocks(net)[0] if ode_blocks(net) else None
    if block is None:
        raise ValueError(
            "adjoint_nfe_sweep needs a model with an ODE block (e.g. chen_model('odenet'))."
        )
    saved = (block.rtol, block.atol, block.adjoint)
    rows = []
    # GroupNorm only: eval mode changes nothing but keeps the convention of evaluating in eval mode
    with evaluation_mode(net):
        try:
            block.adjoint = True
            for tol in tolerances:
                block.rtol = block.atol = float(tol)
                net.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(net(images), labels)
                forward = block.nfe_forward
                loss.backward()
                backward = block.nfe_backward
                rows.append(
                    {
                        "tol": float(tol),
                        "nfe_forward": forward,
                        "nfe_backward": backward,
                        "ratio": backward / forward,
                    }
                )
        finally:
            block.rtol, block.atol, block.adjoint = saved
            net.zero_grad(set_to_none=True)
    return rows


@flush_denormals()
def correct_per_image(
    net: torch.nn.Module, data: ImageData, batch_size: int = 1000, device=None
) -> torch.Tensor:
    """Per-image correctness ``[argmax_j f(x_i)_j = y_i]`` of ``net`` on ``data`` (a bool tensor,
    one entry per image), in eval mode under ``torch.inference_mode`` as
    :func:`dyndl_lite.accuracy.count_correct`, whose sum it equals."""
    device = get_device(device)
    net.to(device)
    parts = []
    with evaluation_mode(net), torch.inference_mode():
        for start in range(0, len(data.images), batch_size):
            x = data.images[start : start + batch_size].to(device)
            y = data.labels[start : start + batch_size].to(device)
            parts.append((net(x).argmax(dim=1) == y).cpu())
    return torch.cat(parts)


def paired_comparison(
    test: ImageData,
    seed: int = 0,
    margin: float = verdicts.CHEN_EQUIVALENCE_MARGIN,
    device=None,
) -> dict:
    """The ODE-Net against the ResNet on the same ``test`` images, paired (McNemar):
    :func:`dyndl_lite.significance.paired_accuracy_difference` of the ResNet's and the ODE-Net's
    per-image correctness (:func:`correct_per_image`), so ``difference`` is
    ``err_ODE - err_ResNet`` in points, with its 90 % interval against the fixed ``margin``."""
    correct = {
        model: correct_per_image(load(model, seed)[0], test, device=device).numpy()
        for model in ("resnet", "odenet")
    }
    return significance.paired_accuracy_difference(correct["resnet"], correct["odenet"], margin)


def _judged(table: ChenTable) -> dict:
    """:func:`dyndl_lite.verdicts.chen` of ``table``: the paired comparison judged on its own
    images, and each model's binomial standard error ``100 sqrt(p (1 - p) / n)``
    (:func:`~dyndl_lite.significance.wald_se`) on the ``n`` images its row counts (its
    ``eval_images``; the table's ``images`` for rows without): a live row on other images beside
    records counts other images."""
    images = table.paired["images"] if table.paired else table.images
    result = verdicts.chen(table.rows, images, paired=table.paired)
    counted = {row["model"]: row.get("eval_images", table.images) for row in table.rows}
    for m in result["models"]:
        m["se"] = significance.wald_se(m["error"], counted[m["model"]])
    return result


def verdict_markdown(table: ChenTable) -> str:
    """Per model of ``table``: the paper's error and parameters, ours (with the binomial standard
    error on the images its row counts, marked "live" when measured now rather than read from an
    evaluation record), the epochs run of the paper's, and whether the book's target error
    (:data:`dyndl_lite.verdicts.CHEN_TARGETS`) is met."""
    result = _judged(table)
    by_model = {r["model"]: r for r in table.rows}
    lines = []
    for m in result["models"]:
        record = by_model[m["model"]]["record"]
        if m["target_met"]:
            outcome = "met"
        else:
            outcome = "missed by " + format(m["error"] - m["target"], ".2f") + " points"
        lines.append(
            [
                m["model"],
                f"{m['paper_error']:.2f} %",
                f"{by_model[m['model']]['paper_parameters_m']:.2f} M",
                f"{m['error']:.2f} % ± {m['se']:.2f}"
                + (" (live)" if by_model[m["model"]].get("source") == MEASURED_LIVE else ""),
                f"{m['parameters'] / 1e6:.2f} M",
                f"{record['epochs_run']} of {record.get('full_recipe_epochs', 160)}",
                f"≤ {m['target']:.1f} %: {outcome}",
            ]
        )
    return verdicts.markdown_table(
        [
            "model",
            "error, paper",
            "parameters, paper",
            "error, ours (± binomial s.e.)",
            "parameters, ours",
            "epochs run (of the paper's)",
            "book's target",
        ],
        lines,
    )


def _paired_sentence(p: dict | None) -> str:
    """The paired comparison of the ODE-Net and the ResNet in words, or why it is missing."""
    if p is None:
        return "Without a paired comparison of the two networks the accuracy half is undecided. "
    low, high = p["interval"]
    return (
        f"Paired on the same {p['images']:,} images (McNemar), the ODE-Net minus ResNet error "
        f"is {p['difference']:+.2f} points: {p['a_only']} images are right for the ResNet "
        f"only and {p['b_only']} for the ODE-Net only; the {p['interval_level']:.0%} interval "
        f"of the difference is [{low:+.2f}, {high:+.2f}] points against the fixed margin "
        f"{p['margin']:.2f} (McNemar's p for any difference: {p['p_mcnemar']:.2f}). "
    )


def _unresolved_sentence(v: dict) -> str:
    """Why an unresolved claim is not reproduced: the interval reaches the margin, a model misses
    its target error, or both."""
    missed = [m["model"] for m in v["models"] if not m["target_met"]]
    reasons = []
    if v["accuracy_half"] is None and v["paired"] is not None:
        reasons.append(
            "the interval reaches the margin, so the data can show neither a match nor a "
            "shortfall (not finding a difference is not evidence of equality)"
        )
    if missed:
        reasons.append(
            f"{', '.join(missed)} {'misses its' if len(missed) == 1 else 'miss their'} "
            "target error: these networks are young, and the ranking of young networks need "
            "not survive training"
        )
    return "Not reproduced because " + "; and ".join(reasons) + "." if reasons else ""


def verdict_paragraph(table: ChenTable) -> str:
    """The verdict on "same performance with fewer parameters" in plain words, from
    :func:`dyndl_lite.verdicts.chen` with the table's paired comparison
    (:func:`paired_comparison`)."""
    v = _judged(table)
    by_model = {m["model"]: m for m in v["models"]}
    ode, res = by_model["odenet"], by_model["resnet"]
    epochs = {r["model"]: r["record"]["epochs_run"] for r in table.rows}
    full = {r["model"]: r["record"].get("full_recipe_epochs", 160) for r in table.rows}
    word = {
        verdicts.HOLDS: "holds in our runs",
        verdicts.FAILS: "does not hold in our runs",
        verdicts.UNRESOLVED: "is not reproduced",
    }[v["verdict"]]
    text = (
        "**Verdict.** Chen et al.'s claim that the ODE-Net matches the ResNet's error with about a "
        f"third of its parameters {word}: ODE-Net {ode['error']:.2f} % against ResNet "
        f"{res['error']:.2f} % on {table.data} (paper {v['paper_gap']:+.2f} points), "
        f"with {v['ratio']:.1f}x fewer parameters, after {epochs['odenet']} (ODE-Net) and "
        f"{epochs['resnet']} (ResNet) epochs of the paper's {full['odenet']}. "
    ) + _paired_sentence(v["paired"])
    if v["verdict"] == verdicts.FAILS:
        text += (
            "The ODE-Net is worse than the ResNet by more than the margin"
            if v["accuracy_half"] is False
            else "The parameter ratio is below the claim's"
        ) + " at this budget."
    elif v["verdict"] == verdicts.UNRESOLVED:
        text += _unresolved_sentence(v)
    else:
        text += (
            "The ODE-Net is within the margin and both networks meet the book's target error "
            f"after {epochs['odenet']} and {epochs['resnet']} epochs; the paper trained "
            f"{full['odenet']}, so these networks are still short of the full recipe."
        )
    met = sum(m["target_met"] for m in v["models"])
    return text + f" Targets met: {met} of {len(v['models'])} models."
