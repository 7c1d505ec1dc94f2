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


def tolerance_sweep(net: torch.nn.Module, test, tolerances=(1e-1, 1e-2, 1e-3, 1e-4), batch_size: int = 1000) -> list[dict]:
    """Test error and mean forward NFE of an ODE-Net evaluated with ``rtol = atol = tol`` for each tolerance.

    Only the evaluation tolerance changes; the weights stay those trained at 1e-3.
    The block's tolerances are restored afterwards.
    """
    from dyndl_lite.train import evaluate, ode_blocks

    blocks = ode_blocks(net)
    if not blocks:
        raise ValueError("tolerance_sweep needs a model with an ODE block (e.g. chen_model('odenet')).")
    saved = [(b.rtol, b.atol) for b in blocks]
    nfe_seen: list[int] = []
    hook = blocks[0].register_forward_hook(lambda module, args, out: nfe_seen.append(module.nfe_forward))
    rows = []
    try:
        for tol in tolerances:
            for b in blocks:
                b.rtol = b.atol = tol
            nfe_seen.clear()
            start = time.perf_counter()
            accuracy = evaluate(net, test.images, test.labels, batch_size=batch_size)
            rows.append({"tol": tol, "test_error_percent": 100 * (1 - accuracy),
                         "nfe_forward": sum(nfe_seen) / len(nfe_seen), "seconds": time.perf_counter() - start})
    finally:
        hook.remove()
        for b, (rtol, atol) in zip(blocks, saved):
            b.rtol, b.atol = rtol, atol
    return rows
