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
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dyndl_lite import atomic, pretrained
from dyndl_lite.config import get_device, seed_everything
from dyndl_lite.data import DatasetNotFoundError, ImageData, load_mnist
from dyndl_lite.models.blocks import count_parameters
from dyndl_lite.state import StateStore, exclusive
from dyndl_lite.train import History, Recipe, Scheduled, evaluate, fit


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


def writable_folder(out: str | Path, what: str = "--out") -> Path:
    """``out`` as a path, checked without writing anything: a ``ValueError`` for the package's own
    folder or a file, an ``OSError`` (one line) when neither it nor the folder it would be made in
    can be written."""
    out = pretrained.refuse_shipped(out, what)
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"{what} {out} is a file, not a folder; name a folder for the checkpoints."
        )
    existing = next(folder for folder in (out, *out.absolute().parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OSError(
            f"cannot write checkpoints into {out} ({existing} is not a writable folder); "
            f"choose a writable folder with {what}."
        )
    return out


def check_space(out: Path, net: nn.Module) -> None:
    """``OSError`` before training when ``out``'s disk has less room than the run's files take at
    their largest: two epoch states (weights and optimizer moments) and the final weights."""
    need = 7 * 4 * count_parameters(net) + (1 << 20)
    free = shutil.disk_usage(out).free
    if free < need:
        raise OSError(
            f"only {free / 2**20:.1f} MiB free on the disk of {out}; this run's checkpoints need "
            f"about {need / 2**20:.1f} MiB. Free some space or choose another --out."
        )


def run_lock(run: Run, out: Path):
    """The exclusive lock of ``run`` in ``out`` (:func:`dyndl_lite.state.exclusive`)."""
    return exclusive(out / f".{run.name}.lock", f"the run {run.name} in {out}")


def _epoch_reporter(
    run: Run, measure, report: Callable[[str], None] | None
) -> Callable[[int, nn.Module, History], None]:
    """The fit callback: the experiment's per-epoch measurements (timed with the epoch), then a
    report line."""

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

    return callback


def data_fallback(history: History) -> bool | None:
    """Whether any epoch used the fallback: ``True``; ``None`` if some epoch was not recorded."""
    flags = [entry.get("fallback") for entry in history.epoch_data]
    return True if True in flags else None if None in flags or not flags else False


def _record(run: Run, net: nn.Module, history: History, train_data, test, device) -> dict:
    """The checkpoint's record: the run, its data (per epoch in the history), machine, results."""
    start = time.perf_counter()
    final_accuracy = evaluate(net, test.images, test.labels, device=device)
    record = {
        "experiment": run.experiment.name,
        "model": run.model,
        "seed": run.seed,
        "parameters": count_parameters(net),
        "recipe": dataclasses.asdict(run.recipe),
        "full_recipe": dataclasses.asdict(run.full_recipe),
        "epochs_run": len(history.epoch),
        "full_recipe_epochs": run.full_recipe.epochs,
        "compression": compression(run.full_recipe, run.recipe),
        "data": {
            "train": train_data.name,
            "train_images": run.recipe.train_subset or len(train_data),
            "fallback": data_fallback(history),
            "test": test.name,
            "test_images": len(test),
        },
        **machine(device),
        "wall_time_s": round(sum(history.seconds) + time.perf_counter() - start, 1),
        "seconds_per_epoch": round(sum(history.seconds) / len(history.seconds), 1),
        "train_acc": history.train_acc[-1],
        "train_acc_note": "running accuracy on the (augmented) training batches of the last epoch",
        # under the fallback the 'test' images are held-out official *training* images
        "test_acc": None if test.is_fallback else final_accuracy,
        "heldout_fallback_acc": final_accuracy if test.is_fallback else None,
        "history": history.as_dict(),
    }
    if net.extra_repr():
        record["model_settings"] = net.extra_repr()
    if run.experiment.finish is not None:
        record.update(run.experiment.finish(net, history, test))
    return record


def _mnist(device: torch.device, allow_fallback: bool) -> tuple[ImageData, ImageData]:
    """MNIST train and test on ``device``; the error for missing files says how to use the
    fallback."""
    try:
        train_data = load_mnist("train", device=device, allow_fallback=allow_fallback)
        return train_data, load_mnist("test", device=device, allow_fallback=allow_fallback)
    except DatasetNotFoundError as error:
        raise DatasetNotFoundError(
            f"{error} To train on the offline fallback's 5,000 images instead (named in the "
            "record, never shipped), pass allow_fallback=True (--allow-fallback)."
        ) from error


def _claim(run: Run, out: Path, overwrite: bool) -> StateStore:
    """``run``'s state in ``out``, once its lock is held: ``FileExistsError`` for a finished
    checkpoint there (unless ``overwrite``), and what earlier runs of this name, killed
    mid-write, left behind is removed."""
    if pretrained.exists(run.name, out) and not overwrite:
        raise FileExistsError(
            f"{run.name} is already trained in {out}; pass overwrite=True (--overwrite) to "
            "train it again, or --out to train into another folder."
        )
    atomic.remove_strays(out, *(path.name for path in pretrained.paths(run.name, out)))
    store = state_store(run, out)
    store.remove_strays()
    return store


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
    unrecorded: str | None = None,
) -> Path:
    """Train (or resume) one run and write its checkpoint to ``out`` (default
    :func:`pretrained.user_dir`).

    Returns the weights path. Checked before any data are loaded: ``out`` is a writable folder
    outside the package's own (:func:`writable_folder`); then, before training: no other process
    trains this run there (its lock, :class:`~dyndl_lite.state.RunLocked`), and there is room for
    the run (:func:`check_space`). Raises ``FileExistsError`` if the finished checkpoint
    is already in ``out`` (unless ``overwrite``),
    :class:`~dyndl_lite.data_cache.DatasetNotFoundError` when official MNIST is missing and
    ``allow_fallback`` is false,
    :class:`~dyndl_lite.train.TrainingDiverged` on a non-finite loss, and
    :class:`~dyndl_lite.train.TrainingStopped` at ``deadline``; after the last two the
    last completed epoch's state stays in ``out`` for the next call to resume. A lone weights
    file without its record (a kill between the two renames of the final save) is replaced.
    ``report`` receives one line per completed epoch; ``unrecorded`` is passed to :func:`fit`.
    """
    run = resolve(experiment, model, seed, epochs, train_subset)
    out = writable_folder(out) if out is not None else writable_folder(pretrained.user_dir())
    device = get_device(device)
    # the data first: a run refused for want of data leaves nothing on disk, not even a lock
    train_data, test = _mnist(device, allow_fallback)
    with run_lock(run, out):
        store = _claim(run, out, overwrite)
        seed_everything(seed)
        net = run.experiment.build(model).to(device)
        check_space(out, net)
        if isinstance(net, Scheduled):  # a network whose training depends on the run's length
            net.schedule(run.recipe.epochs)
        measure = run.experiment.callback(test, run.recipe) if run.experiment.callback else None
        history = fit(
            net, train_data, run.recipe, test=test, seed=seed, device=device, progress=progress,
            callback=_epoch_reporter(run, measure, report), state=store, spec=run.spec(),
            deadline=deadline, unrecorded=unrecorded,
        )  # fmt: skip
        record = _record(run, net, history, train_data, test, device)
        # overwrite: asked for, or only half a pair is there (no finished checkpoint)
        weights = pretrained.save(net, run.name, record, folder=out, overwrite=True)
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
