"""Training runs that survive interruption: what an experiment is, and one resumable ``train`` for
all of them.

An :class:`Experiment` says what to build and how the paper trained it:
``build(model) -> nn.Module``, ``recipe(model) -> Recipe`` (the paper's full
recipe), ``checkpoint_name(model, seed)``, and optionally a per-epoch
``callback`` and ``finish`` that add experiment-specific results to the record.
The papers' experiments are data in :mod:`dyndl_lite.experiments` (each module's
``EXPERIMENTS``); :func:`dyndl_lite.experiments.get` finds one by name.

:func:`train` runs one ``(experiment, model, seed)`` with the full recipe, or
compressed to ``epochs`` (learning-rate milestones scaled by ``epochs / E_full``),
on the official MNIST training set or ``train_subset`` images of it. After every
completed epoch the whole training state is saved atomically in
``<out>/<name>.state/`` (see :mod:`dyndl_lite.state`); running the same call
again resumes from there. When the last epoch is done the checkpoint
``<out>/<name>.safetensors`` + ``.json`` is written and the state removed.
A finished checkpoint is never replaced unless ``overwrite=True``.

Example::

    >>> from dyndl_lite import experiments, runs
    >>> runs.train(
    ...     experiments.get("chen"), "mlp", seed=0, epochs=10, out="my-checkpoints"
    ... )  # doctest: +SKIP
    PosixPath('my-checkpoints/chen-mlp-seed0.safetensors')
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dyndl_lite import pretrained
from dyndl_lite.config import get_device, seed_everything
from dyndl_lite.data import DatasetNotFoundError, ImageData, load_mnist
from dyndl_lite.models.blocks import count_parameters
from dyndl_lite.state import StateStore
from dyndl_lite.train import History, Recipe, evaluate, fit


@dataclass(frozen=True)
class Experiment:
    """One paper's trainable networks: how to build each, the paper's recipe, and the checkpoint
    names."""

    name: str
    models: tuple[str, ...]
    #: ``build(model, **options)``: the network, untrained (options such as a solver tolerance or
    #: input channels)
    build: Callable[..., nn.Module]
    recipe: Callable[[str], Recipe]
    checkpoint_name: Callable[[str, int], str]
    description: str = ""
    #: ``callback(test, recipe) -> fit callback``: per-epoch measurements kept in ``history.extra``
    callback: Callable[[ImageData, Recipe], Callable[[int, nn.Module, History], None]] | None = None
    #: ``finish(model, history, test) -> dict``: experiment-specific fields of the record
    finish: Callable[[nn.Module, History, ImageData], dict] | None = None
    #: ``book_epochs(model)``: the length of the book's own (compressed) run, whose checkpoint keeps
    #: the plain name; a run of any other length carries it (:func:`run_name`). ``None``: every
    #: length keeps the plain name.
    book_epochs: Callable[[str], int] | None = None


def run_name(experiment: Experiment, model: str, seed: int, epochs: int) -> str:
    """The checkpoint name of ``epochs`` epochs of ``model``: the plain
    ``experiment.checkpoint_name(model, seed)`` for the book's own length
    (``experiment.book_epochs``), else that name with ``-<epochs>ep`` before ``-seed<S>``.

    So a run of the paper's full recipe (``yan-cnn-gaussian-100ep-seed0``) never replaces, nor is
    mistaken for, the book's shorter one (``yan-cnn-gaussian-seed0``).
    """
    name = experiment.checkpoint_name(model, seed)
    if experiment.book_epochs is None or epochs == experiment.book_epochs(model):
        return name
    stem, _, seed_part = name.rpartition("-seed")
    return f"{stem}-{epochs}ep-seed{seed_part}"


def recipe_as_run(
    full: Recipe, epochs: int | None = None, train_subset: int | None = None
) -> Recipe:
    """``full`` compressed to ``epochs`` (milestones scaled) and restricted to ``train_subset``
    images, as named."""
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if train_subset is not None and (not isinstance(train_subset, int) or train_subset < 1):
        raise ValueError(f"train_subset must be a positive number of images, got {train_subset!r}.")
    recipe = full.compressed(epochs) if epochs is not None and epochs != full.epochs else full
    if train_subset is not None:
        recipe = dataclasses.replace(
            recipe, name=f"{recipe.name}-{train_subset}img", train_subset=train_subset
        )
    return recipe


def plain(value):
    """``value`` as it reads back from a JSON record (tuples become lists, NaN becomes None)."""
    return json.loads(pretrained.dump_record(value))


def compression(full: Recipe, recipe: Recipe) -> str:
    """One sentence saying how ``recipe`` differs from the paper's ``full`` recipe."""
    if recipe.epochs == full.epochs and recipe.milestones == full.milestones:
        return f"the paper's full recipe ({full.epochs} epochs)"
    return (
        f"compressed: {recipe.epochs} of the paper's {full.epochs} epochs "
        f"(x{recipe.epochs / full.epochs:.3g}), "
        f"learning-rate milestones {list(full.milestones)} scaled to {list(recipe.milestones)}"
    )


def machine(device: torch.device) -> dict:
    """What the record says about where it was trained, measured now."""
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (platform.processor() or platform.machine())
    )
    return {"device": str(device), "device_name": name, "threads": torch.get_num_threads()}


@dataclass(frozen=True)
class Run:
    """One resolved training run: experiment, model, seed and the recipe as it will be run."""

    experiment: Experiment
    model: str
    seed: int
    recipe: Recipe
    full_recipe: Recipe

    @property
    def name(self) -> str:
        return run_name(self.experiment, self.model, self.seed, self.recipe.epochs)

    def spec(self) -> dict:
        """What identifies the run in its saved state: a state with another spec is not resumed."""
        return {
            "experiment": self.experiment.name,
            "model": self.model,
            "seed": self.seed,
            "recipe": dataclasses.asdict(self.recipe),
        }


def _check_model(experiment: Experiment, model: str) -> None:
    if model not in experiment.models:
        raise ValueError(
            f"experiment {experiment.name!r} has no model {model!r}; "
            f"choose one of {', '.join(experiment.models)}."
        )


def resolve(
    experiment: Experiment,
    model: str,
    seed: int = 0,
    epochs: int | None = None,
    train_subset: int | None = None,
) -> Run:
    """The :class:`Run` for these arguments, with a ``ValueError`` naming any bad one."""
    _check_model(experiment, model)
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    full = experiment.recipe(model)
    return Run(experiment, model, seed, recipe_as_run(full, epochs, train_subset), full)


def state_store(run: Run, out: str | Path) -> StateStore:
    """Where ``run`` keeps its training state inside ``out``."""
    return StateStore(Path(out) / f"{run.name}.state")


def progress_of(run: Run, out: str | Path) -> dict:
    """``{"status": "finished" | "partial" | "new", "epochs_done", "seconds_per_epoch", "where"}``
    for ``run``.

    Finished means a checkpoint whose record ran this run's recipe to its end, in ``out``
    or among the shipped ones; partial means a saved state in ``out``.
    """
    for folder in (Path(out), pretrained.SHIPPED_DIR):
        if pretrained.exists(run.name, folder):
            record = pretrained.load_record(run.name, folder)
            if (
                record.get("recipe") == plain(dataclasses.asdict(run.recipe))
                and record.get("epochs_run") == run.recipe.epochs
            ):
                seconds = record.get("seconds_per_epoch")
                return {
                    "status": "finished",
                    "epochs_done": run.recipe.epochs,
                    "seconds_per_epoch": seconds,
                    "where": str(folder),
                }
    store = state_store(run, out)
    if store.exists():
        saved = store.read()
        seconds = saved["history"].get("seconds") or []
        return {
            "status": "partial",
            "epochs_done": saved["epoch"],
            "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
            "where": str(store.folder),
        }
    return {"status": "new", "epochs_done": 0, "seconds_per_epoch": None, "where": None}


def train(
    experiment: Experiment,
    model: str,
    seed: int = 0,
    *,
    epochs: int | None = None,
    train_subset: int | None = None,
    out: str | Path | None = None,
    device: str | torch.device | None = None,
    allow_fallback: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    deadline: float | None = None,
    report: Callable[[str], None] | None = None,
) -> Path:
    """Train (or resume) one run and write its checkpoint to ``out`` (default
    :func:`pretrained.user_dir`).

    Returns the weights path. Raises ``FileExistsError`` if the finished checkpoint is
    already in ``out`` (unless ``overwrite``), :class:`~dyndl_lite.data.DatasetNotFoundError`
    when official MNIST is missing and ``allow_fallback`` is false,
    :class:`~dyndl_lite.train.TrainingDiverged` on a non-finite loss, and
    :class:`~dyndl_lite.train.TrainingStopped` at ``deadline``; after the last two the
    last completed epoch's state stays in ``out`` for the next call to resume.
    ``report`` receives one line per completed epoch (loss, accuracies, seconds).
    """
    run = resolve(experiment, model, seed, epochs, train_subset)
    out = Path(out) if out is not None else pretrained.user_dir()
    if pretrained.exists(run.name, out) and not overwrite:
        raise FileExistsError(
            f"{run.name} is already trained in {out}; pass overwrite=True (--overwrite) to train "
            "it again, or --out to train into another folder."
        )
    device = get_device(device)
    try:
        train_data = load_mnist("train", device=device, allow_fallback=allow_fallback)
        test = load_mnist("test", device=device, allow_fallback=allow_fallback)
    except DatasetNotFoundError as error:
        raise DatasetNotFoundError(
            f"{error} To train on the offline fallback's 5,000 images instead (named in the "
            "record, never shipped), pass allow_fallback=True (--allow-fallback)."
        ) from error
    seed_everything(seed)
    net = run.experiment.build(model).to(device)
    schedule = getattr(
        net, "schedule", None
    )  # a network whose training depends on the run's length (TisODE)
    if callable(schedule):
        schedule(run.recipe.epochs)
    measure = run.experiment.callback(test, run.recipe) if run.experiment.callback else None

    def callback(epoch: int, model: nn.Module, history: History) -> None:
        if measure is not None:
            started = time.perf_counter()
            measure(epoch, model, history)
            # the epoch's measurements are part of what the epoch costs
            history.seconds[-1] += time.perf_counter() - started
        if report is not None:
            report(
                f"{run.name} epoch {epoch}/{run.recipe.epochs}: loss {history.loss[-1]:.4f}, "
                f"train acc {history.train_acc[-1]:.4f}, test acc {history.test_acc[-1]:.4f}, "
                f"{history.seconds[-1]:.0f} s"
            )

    store = state_store(run, out)
    history = fit(
        net,
        train_data,
        run.recipe,
        test=test,
        seed=seed,
        device=device,
        progress=progress,
        callback=callback,
        state=store,
        spec=run.spec(),
        deadline=deadline,
    )
    start = time.perf_counter()
    final_accuracy = evaluate(net, test.images, test.labels, device=device)
    images = run.recipe.train_subset or len(train_data)
    record = {
        "experiment": run.experiment.name,
        "model": model,
        "seed": seed,
        "parameters": count_parameters(net),
        "recipe": dataclasses.asdict(run.recipe),
        "full_recipe": dataclasses.asdict(run.full_recipe),
        "epochs_run": len(history.epoch),
        "full_recipe_epochs": run.full_recipe.epochs,
        "compression": compression(run.full_recipe, run.recipe),
        "data": {
            "train": train_data.name,
            "train_images": images,
            "fallback": train_data.is_fallback,
            "test": test.name,
            "test_images": len(test),
        },
        **machine(device),
        "wall_time_s": round(sum(history.seconds) + time.perf_counter() - start, 1),
        "seconds_per_epoch": round(sum(history.seconds) / len(history.seconds), 1),
        "train_acc": history.train_acc[-1],
        "train_acc_note": "running accuracy on the (augmented) training batches of the last epoch",
        # under the fallback the 'test' images are held-out official *training* images: not a test
        # accuracy
        "test_acc": None if test.is_fallback else final_accuracy,
        "heldout_fallback_acc": final_accuracy if test.is_fallback else None,
        "history": history.as_dict(),
    }
    if net.extra_repr():
        record["model_settings"] = net.extra_repr()
    if run.experiment.finish is not None:
        record.update(run.experiment.finish(net, history, test))
    weights = pretrained.save(net, run.name, record, folder=out, overwrite=overwrite)
    store.remove()
    return weights


def load(
    experiment: Experiment,
    model: str,
    seed: int = 0,
    folder: str | Path | None = None,
    epochs: int | None = None,
    **options,
) -> tuple[nn.Module, dict]:
    """The network ``model`` of ``experiment`` (built with ``options``) with its checkpoint loaded,
    and its record: the book's run, or with ``epochs`` the run of that length (:func:`run_name`).

    Searches the user folder first, then the shipped checkpoints (see :func:`pretrained.load`);
    the record's ``"loaded_from"`` says which, and its experiment and model must match.
    """
    _check_model(experiment, model)
    net = experiment.build(model, **options)
    record = pretrained.load(
        net,
        experiment.checkpoint_name(model, seed)
        if epochs is None
        else run_name(experiment, model, seed, epochs),
        folder,
        expect={"experiment": experiment.name, "model": model},
    )
    return net.eval(), record
