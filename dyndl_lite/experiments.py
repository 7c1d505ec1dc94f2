"""The book's experiments as code, and the registry the command line trains from.

Registry
--------
An experiment is a name, the models it trains, and a function
``train(model, mode, seed, device, progress, epochs) -> Path`` that trains one
model, saves the checkpoint through :mod:`dyndl_lite.pretrained` and returns its
path. Modules register theirs at import time::

    from dyndl_lite.experiments import register
    register("yan", models=("cnn", "odenet"), train=train_checkpoint, description="Yan et al. Table 2")

and list themselves in :data:`EXPERIMENT_MODULES`, which the command line
``python -m dyndl_lite train <experiment> --model <name> --mode full --seed S``
imports before looking the experiment up.

Chen et al.'s table (this module's own experiment, ``"chen"``)
---------------------------------------------------------------
Four models on MNIST (:mod:`dyndl_lite.models.chen`), trained with the
``chen-full`` recipe or a compressed version of it (``epochs`` given), checkpoints
``chen-<model>-seed<S>``; :func:`chen_table` evaluates the shipped checkpoints.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

#: Modules that register experiments when imported (other helpers append theirs here).
EXPERIMENT_MODULES = ("dyndl_lite.experiments", "dyndl_lite.experiments_robustness", "dyndl_lite.experiments_geodesic")


@dataclass(frozen=True)
class Experiment:
    name: str
    models: tuple[str, ...]
    train: Callable[..., Path]  # train(model, mode, seed, device, progress, epochs) -> checkpoint path
    description: str = ""


EXPERIMENTS: dict[str, Experiment] = {}


def register(name: str, models: tuple[str, ...], train: Callable[..., Path], description: str = "") -> Experiment:
    """Make ``name`` trainable from the command line; registering the same name twice replaces it."""
    experiment = Experiment(name, tuple(models), train, description)
    EXPERIMENTS[name] = experiment
    return experiment


def load_all() -> dict[str, Experiment]:
    """Import every module of :data:`EXPERIMENT_MODULES` (skipping missing ones) and return the registry."""
    for module in EXPERIMENT_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
    return EXPERIMENTS


# --------------------------------------------------------------------------- Chen et al. (2018), Table 1

def chen_checkpoint_name(model: str, seed: int = 0) -> str:
    return f"chen-{model}-seed{seed}"


def chen_recipe(mode: str, epochs: int | None = None, train_subset: int | None = None):
    """``chen-full`` (160 epochs), compressed to ``epochs`` and restricted to ``train_subset``
    images when given; ``chen-quick`` in quick mode."""
    from dataclasses import replace

    from dyndl_lite.train import RECIPES

    if mode == "quick":
        return RECIPES["chen-quick"]
    recipe = RECIPES["chen-full"]
    if epochs is not None and epochs != recipe.epochs:
        recipe = recipe.compressed(epochs)
    if train_subset is not None:
        recipe = replace(recipe, name=f"{recipe.name}-{train_subset}img", train_subset=train_subset)
    return recipe


def train_chen(model: str, mode: str = "full", seed: int = 0, device=None, progress: bool = True,
               epochs: int | None = None, train_subset: int | None = None, save: bool = True) -> Path | dict:
    """Train Chen et al.'s ``model`` on MNIST train, evaluate on MNIST test, save ``chen-<model>-seed<S>``.

    ``train_subset`` (a short CPU budget) trains on that many images drawn at random from the
    60,000. The recorded ``train_acc`` is the running accuracy on the (augmented) training batches of
    the last epoch, not a separate pass over the training set. Returns the checkpoint path (or the
    record when ``save=False``).
    """
    from dyndl_lite import pretrained
    from dyndl_lite.config import get_device, seed_everything
    from dyndl_lite.data import load_mnist
    from dyndl_lite.models.chen import chen_model
    from dyndl_lite.models.blocks import count_parameters
    from dyndl_lite.train import evaluate, fit

    device = get_device(device)
    recipe = chen_recipe(mode, epochs, train_subset)
    train, test = load_mnist("train", device=device), load_mnist("test", device=device)
    seed_everything(seed)
    net = chen_model(model)
    start = time.perf_counter()
    history = fit(net, train, recipe, test=test if recipe.epochs > 1 else None, seed=seed, device=device,
                  progress=progress)  # per-epoch test accuracy only when there is more than one epoch
    wall = time.perf_counter() - start
    test_acc = evaluate(net, test.images, test.labels, device=device)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        record_device = f"cpu ({threads} thread{'s' if threads > 1 else ''}, 2-core machine shared with other jobs)"
    record = {
        "experiment": "chen", "model": model, "parameters": count_parameters(net), "recipe": asdict(recipe),
        "seed": seed, "epochs_run": len(history.epoch), "full_recipe_epochs": 160,
        "data": {"train": train.name, "test": test.name}, "mode": mode,
        "device": record_device if device.type == "cpu" else torch.cuda.get_device_name(device),
        "wall_time_s": round(wall, 1), "train_acc": history.train_acc[-1],
        "train_acc_note": "running accuracy on the augmented training batches of the last epoch",
        "test_acc": test_acc,
        "history": history.as_dict(),
    }
    return pretrained.save(net, chen_checkpoint_name(model, seed), record) if save else record


def load_chen(model: str, seed: int = 0, **options) -> tuple[torch.nn.Module, dict]:
    """Chen et al.'s ``model`` with the shipped weights ``chen-<model>-seed<S>``, and its record."""
    from dyndl_lite import pretrained
    from dyndl_lite.models.chen import chen_model

    net = chen_model(model, **options)
    return net, pretrained.load(net, chen_checkpoint_name(model, seed))


def chen_table(seed: int = 0, test=None, device=None) -> list[dict]:
    """One row per shipped model: parameters, test error measured now on ``test`` (default: MNIST test),
    the error recorded at training time, epochs run, and the paper's numbers."""
    from dyndl_lite import pretrained
    from dyndl_lite.data import load_mnist
    from dyndl_lite.models.blocks import count_parameters
    from dyndl_lite.models.chen import MODELS, PAPER_PARAMETERS_M, PAPER_TEST_ERROR_PERCENT
    from dyndl_lite.train import evaluate

    test = test if test is not None else load_mnist("test")
    rows = []
    for model in MODELS:
        if not pretrained.exists(chen_checkpoint_name(model, seed)):
            continue
        net, record = load_chen(model, seed)
        start = time.perf_counter()
        accuracy = evaluate(net, test.images, test.labels, device=device)
        rows.append({
            "model": model, "parameters": count_parameters(net), "test_error_percent": 100 * (1 - accuracy),
            "recorded_test_error_percent": 100 * (1 - record["test_acc"]), "epochs_run": record["epochs_run"],
            "eval_seconds": time.perf_counter() - start, "data": test.name, "record": record,
            "eval_images": len(test), "accuracy_label": getattr(test, "accuracy_label", "accuracy"),
            "paper_parameters_m": PAPER_PARAMETERS_M[model], "paper_test_error_percent": PAPER_TEST_ERROR_PERCENT[model],
        })
    return rows


register("chen", models=("mlp", "resnet", "rknet", "odenet"), train=train_chen,
         description="Chen et al. (2018) Table 1: four MNIST models, checkpoints chen-<model>-seed<S>")


def _ode_block_input(net: torch.nn.Module, images: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
    """(the ODE block of a Chen et al. ODE-Net, its input ``downsampling(images)``)."""
    from dyndl_lite.train import ode_blocks

    blocks = ode_blocks(net)
    if not blocks or not hasattr(net, "downsampling") or getattr(net, "feature", None) is not blocks[0]:
        raise ValueError("needs Chen et al.'s ODE-Net (chen_model('odenet')): downsampling, one ODE block, head.")
    with torch.inference_mode():
        return blocks[0], net.downsampling(images)


def tolerance_sweep(net: torch.nn.Module, test, tolerances=(1e-1, 1e-2, 1e-3, 1e-4), batch_size: int = 1000,
                    reference_tol: float = 1e-7, reference_images: int = 100) -> list[dict]:
    """An ODE-Net evaluated with ``rtol = atol = tol`` for each tolerance, as in Chen et al.'s Fig. 3a.

    Per tolerance: the solver's numerical error, the mean forward NFE, the test error on all of ``test`` and
    the seconds taken. The numerical error is measured on the first ``reference_images`` images against a
    solve at ``reference_tol``:

    .. math::  e(\\mathrm{tol}) = \\frac{1}{m}\\sum_{i=1}^m \\frac{\\|h_{\\mathrm{tol}}(1)_i - h_{\\mathrm{ref}}(1)_i\\|_2}
               {\\|h_{\\mathrm{ref}}(1)_i\\|_2},

    with ``h(1)`` the ODE block's output (the 64 feature maps). Only the evaluation tolerance changes; the
    weights stay those trained at 1e-3, and the block's tolerances are restored afterwards.
    """
    from dyndl_lite.train import evaluate

    tolerances = [float(t) for t in tolerances]
    if not tolerances or not all(t > 0 for t in tolerances):
        raise ValueError(f"tolerances must be positive numbers, got {tolerances}.")
    if not 0 < reference_tol < min(tolerances):
        raise ValueError(f"reference_tol must be positive and tighter than every tolerance ({min(tolerances):g}), "
                         f"got {reference_tol:g}.")
    if not isinstance(reference_images, int) or reference_images < 1:
        raise ValueError(f"reference_images must be a positive integer, got {reference_images!r}.")
    block, z0 = _ode_block_input(net, test.images[:reference_images])
    saved = (block.rtol, block.atol)
    nfe_seen: list[int] = []
    hook = block.register_forward_hook(lambda module, args, out: nfe_seen.append(module.nfe_forward))
    rows = []
    try:
        with torch.inference_mode():
            block.rtol = block.atol = reference_tol
            reference = block(z0).flatten(1)
            reference_nfe = block.nfe_forward
        for tol in tolerances:
            block.rtol = block.atol = tol
            with torch.inference_mode():
                error = ((block(z0).flatten(1) - reference).norm(dim=1) / reference.norm(dim=1)).mean().item()
            nfe_seen.clear()
            start = time.perf_counter()
            accuracy = evaluate(net, test.images, test.labels, batch_size=batch_size)
            rows.append({"tol": tol, "solver_error": error, "test_error_percent": 100 * (1 - accuracy),
                         "nfe_forward": sum(nfe_seen) / len(nfe_seen), "seconds": time.perf_counter() - start,
                         "reference_tol": reference_tol, "reference_nfe": reference_nfe,
                         "reference_images": len(z0)})
    finally:
        hook.remove()
        block.rtol, block.atol = saved
    return rows


def adjoint_nfe_sweep(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      tolerances=(1e-1, 1e-2, 1e-3, 1e-4)) -> list[dict]:
    """Forward and backward (adjoint) NFE of one gradient evaluation of an ODE-Net per tolerance (Chen et al. Fig. 3c).

    For each ``tol`` the block is switched to the adjoint method with ``rtol = atol = tol``, the
    cross-entropy of ``(images, labels)`` is differentiated once, and the evaluations of the forward solve
    and of the backward solve of the adjoint system are counted; ``ratio = nfe_backward / nfe_forward``.
    The weights are not changed (gradients are cleared); the block's settings are restored afterwards.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"images and labels must be non-empty and of equal length, got {len(images)} and {len(labels)}.")
    from dyndl_lite.train import ode_blocks

    block = ode_blocks(net)[0] if ode_blocks(net) else None
    if block is None:
        raise ValueError("adjoint_nfe_sweep needs a model with an ODE block (e.g. chen_model('odenet')).")
    saved = (block.rtol, block.atol, block.adjoint, net.training)
    rows = []
    try:
        block.adjoint = True
        net.eval()  # GroupNorm only: eval changes nothing but keeps the convention of evaluating in eval mode
        for tol in tolerances:
            block.rtol = block.atol = float(tol)
            net.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(images), labels)
            forward = block.nfe_forward
            loss.backward()
            backward = block.nfe_backward
            rows.append({"tol": float(tol), "nfe_forward": forward, "nfe_backward": backward,
                         "ratio": backward / forward})
    finally:
        block.rtol, block.atol, block.adjoint = saved[:3]
        net.train(saved[3])
        net.zero_grad(set_to_none=True)
    return rows


def chen_verdict(rows: list[dict], test_images: int) -> dict:
    """:func:`dyndl_lite.verdicts.chen` applied to :func:`chen_table` rows measured on ``test_images`` images."""
    from dyndl_lite import verdicts

    return verdicts.chen(rows, test_images)


def chen_verdict_markdown(rows: list[dict], test_images: int) -> str:
    """Per model: the paper's error and parameters, ours, the epochs run of the paper's, and whether the
    book's target error (:data:`dyndl_lite.verdicts.CHEN_TARGETS`) is met."""
    from dyndl_lite import verdicts

    result = chen_verdict(rows, test_images)
    by_model = {r["model"]: r for r in rows}
    lines = []
    for m in result["models"]:
        record = by_model[m["model"]]["record"]
        lines.append([m["model"], f"{m['paper_error']:.2f} %", f"{by_model[m['model']]['paper_parameters_m']:.2f} M",
                      f"{m['error']:.2f} % ± {m['se']:.2f}", f"{m['parameters'] / 1e6:.2f} M",
                      f"{record['epochs_run']} of {record.get('full_recipe_epochs', 160)}",
                      f"≤ {m['target']:.1f} %: {'met' if m['target_met'] else 'missed by ' + format(m['error'] - m['target'], '.2f') + ' points'}"])
    return verdicts.markdown_table(["model", "error, paper", "parameters, paper", "error, ours (± binomial s.e.)",
                                    "parameters, ours", "epochs run (of the paper's)", "book's target"], lines)


def chen_verdict_paragraph(rows: list[dict], test_images: int, data: str) -> str:
    """The verdict on "same performance with fewer parameters" in plain words, from :func:`chen_verdict`."""
    from dyndl_lite import verdicts

    v = chen_verdict(rows, test_images)
    by_model = {m["model"]: m for m in v["models"]}
    ode, res = by_model["odenet"], by_model["resnet"]
    epochs = {r["model"]: r["record"]["epochs_run"] for r in rows}
    word = {verdicts.HOLDS: "holds in our runs", verdicts.FAILS: "does not hold in our runs",
            verdicts.UNRESOLVED: "is not reproduced yet"}[v["verdict"]]
    text = (f"**Verdict.** Chen et al.'s claim that the ODE-Net matches the ResNet's error with about a third of "
            f"its parameters {word}: ODE-Net {ode['error']:.2f} % against ResNet {res['error']:.2f} % on {data} "
            f"(gap {v['gap']:+.2f} points, binomial standard error {v['gap_se']:.2f}; paper {v['paper_gap']:+.2f}), "
            f"with {v['ratio']:.1f}x fewer parameters, after {epochs['odenet']} (ODE-Net) and {epochs['resnet']} (ResNet) "
            "epochs of the paper's 160. ")
    if v["verdict"] == verdicts.FAILS:
        text += ("The ODE-Net is worse than the ResNet by more than two standard errors"
                 if not v["accuracy_half"] else "The parameter ratio is below the claim's") + " at this budget."
    elif v["verdict"] == verdicts.UNRESOLVED:
        missed = [m["model"] for m in v["models"] if not m["target_met"]]
        standing = ("better than the ResNet by more than two standard errors" if v["gap"] < -2 * v["gap_se"]
                    else "within two standard errors of the ResNet")
        text += (f"The ODE-Net is {standing}, but {', '.join(missed)} "
                 f"{'misses its' if len(missed) == 1 else 'miss their'} target error: the comparison is between "
                 "networks that have not converged, and the ranking of young networks need not survive training.")
    else:
        text += "Both networks meet the book's target, so the comparison is between converged networks."
    met = sum(m["target_met"] for m in v["models"])
    text += f" Targets met: {met} of {len(v['models'])} models."
    return text
