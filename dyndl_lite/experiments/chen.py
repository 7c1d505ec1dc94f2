"""Chen et al. (2018), Table 1: four MNIST models, their training run, and the table evaluated from
checkpoints.

The models are :mod:`dyndl_lite.models.chen`'s MLP, ResNet, RK-Net and ODE-Net; the
paper's recipe is :func:`recipe` (torchdiffeq's ``examples/odenet_mnist.py``);
checkpoints are ``chen-<model>-seed<S>``. :func:`train` trains one
(``python -m dyndl_lite train chen --model resnet --epochs 10``); :func:`table`
evaluates the checkpoints found (user folder first, then shipped) into a
:class:`~dyndl_lite.experiments.results.ChenTable`, and :func:`verdict_markdown` /
:func:`verdict_paragraph` compare it with the paper. Every network is trained on clean images
(:data:`REGIMES`). Chapter 4 also uses :func:`tolerance_sweep` and :func:`adjoint_nfe_sweep`
(Fig. 3).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dyndl_lite import pretrained, runs, significance, verdicts
from dyndl_lite.config import flush_denormals, get_device, get_mode
from dyndl_lite.data import ImageData, load_mnist
from dyndl_lite.experiments.results import ChenTable
from dyndl_lite.models.blocks import count_parameters, evaluation_mode
from dyndl_lite.models.chen import MODELS, PAPER_PARAMETERS_M, PAPER_TEST_ERROR_PERCENT, chen_model
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


def _row(model: str, net: torch.nn.Module, record: dict, test: ImageData) -> dict:
    """One model's row of :func:`table`: ``net`` evaluated on ``test`` beside its record and the
    paper."""
    start = time.perf_counter()
    accuracy = evaluate(net, test.images, test.labels)
    return {
        "model": model,
        "parameters": count_parameters(net),
        "test_error_percent": 100 * (1 - accuracy),
        "recorded_test_error_percent": (
            None if record.get("test_acc") is None else 100 * (1 - record["test_acc"])
        ),
        "epochs_run": record["epochs_run"],
        "eval_seconds": time.perf_counter() - start,
        "data": test.name,
        "record": record,
        "eval_images": len(test),
        "accuracy_label": test.accuracy_label,
        "paper_parameters_m": PAPER[model]["parameters_m"],
        "paper_test_error_percent": PAPER[model]["test_error_percent"],
    }


def table(
    regime: str = "clean",
    mode: str = "quick",
    seeds: Sequence[int] | None = None,
    test: ImageData | None = None,
) -> ChenTable:
    """Chen et al.'s Table 1 from the checkpoints of one seed (``seeds``, default ``(0,)``): one
    row per model with a checkpoint, its parameters, its test error measured now on all of
    ``test`` (default: MNIST test; the same images in both modes), the error recorded at training
    time, the epochs run and the paper's numbers; and the ODE-Net against the ResNet on the same
    images (:func:`paired_comparison`). A record without a test accuracy (a run on the offline
    fallback, whose held-out images are not a test set) has ``recorded_test_error_percent``
    ``None``."""
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES} for Chen et al., got {regime!r}.")
    mode, seed = get_mode(mode), _one_seed(seeds)
    test = test if test is not None else load_mnist("test")
    rows = []
    for model in MODELS:
        if pretrained.exists(checkpoint_name(model, seed)):
            rows.append(_row(model, *load(model, seed), test))
    have = {row["model"] for row in rows}
    paired = paired_comparison(test, seed) if {"resnet", "odenet"} <= have else None
    return ChenTable(
        regime=regime,
        mode=mode,
        seeds=(seed,),
        data=test.name,
        images=len(test),
        accuracy_label=test.accuracy_label,
        fallback=test.is_fallback,
        records={checkpoint_name(row["model"], seed): row["record"] for row in rows},
        rows=tuple(rows),
        paired=paired,
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


def verdict_markdown(table: ChenTable) -> str:
    """Per model of ``table``: the paper's error and parameters, ours (with the binomial standard
    error on the table's images), the epochs run of the paper's, and whether the book's target
    error (:data:`dyndl_lite.verdicts.CHEN_TARGETS`) is met."""
    result = verdicts.chen(table.rows, table.images, paired=table.paired)
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
                f"{m['error']:.2f} % ± {m['se']:.2f}",
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
    v = verdicts.chen(table.rows, table.images, paired=table.paired)
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
