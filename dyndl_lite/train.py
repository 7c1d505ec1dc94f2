"""The book's one training loop.

Every experiment of the book trains through :func:`fit` with a :class:`~dyndl_lite.recipe.Recipe`
(learning-rate schedule, optimizer, augmentation, subset). It keeps the whole data
set as tensors on the device and draws batches by index, so a step costs one
gather instead of a Python loop over samples; augmentation is batched too:

* random crop with zero padding ``p``: pad the batch once, draw offsets
  ``(i, j)`` uniformly in ``{0, ..., 2p}^2`` and gather
  ``x_crop[b, c, h, w] = x_pad[b, c, i_b + h, j_b + w]`` with index arithmetic;
* Gaussian noise (Yan et al., Table 2): with probability ``noise_prob`` an image
  becomes ``clip(x + (sigma / 255) * eps, 0, 1)``, ``eps ~ N(0, I)``, with
  ``sigma`` drawn uniformly from ``noise_sigmas``.

The loss is cross-entropy ``-log softmax(f(x))_y`` (accuracy tracked) or the
mean squared error ``|f(x) - y|^2`` (accuracy ``nan``); the learning rate follows
:meth:`~dyndl_lite.recipe.Recipe.lr_at`. On CUDA the forward pass runs under bf16 autocast; on
CPU in float32. Test accuracy is measured by :mod:`dyndl_lite.accuracy`.

``Recipe``, ``make_optimizer``, ``count_correct`` and ``evaluate`` are importable from here too,
where the chapters have always imported them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from dyndl_lite.accuracy import count_correct as count_correct
from dyndl_lite.accuracy import evaluate
from dyndl_lite.config import flush_denormals, get_device
from dyndl_lite.data import ImageData
from dyndl_lite.models.blocks import FIXED_STEP
from dyndl_lite.pretrained import dump_record, non_finite
from dyndl_lite.recipe import Recipe, make_optimizer
from dyndl_lite.state import StateStore

LOSSES = ("cross_entropy", "mse")


@dataclass
class History:
    """Per-epoch training record: one entry per epoch in every list."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    # mean function evaluations per forward pass
    nfe_forward: list[float] = field(default_factory=list)
    # mean per backward pass (adjoint only)
    nfe_backward: list[float] = field(default_factory=list)
    # wall time of the epoch (training, test evaluation and a run's per-epoch measurements)
    seconds: list[float] = field(default_factory=list)
    # one entry per optimisation step, for curves finer than an epoch; each loss is the float32
    # value as the shortest decimal that reads back as it (2.3123636, not 2.312363624572754)
    step_loss: list[float] = field(default_factory=list)
    step_nfe_forward: list[int] = field(default_factory=list)
    step_nfe_backward: list[int] = field(default_factory=list)

    # the data of each epoch (:func:`epoch_data`): which train / test sets, and whether the fallback
    epoch_data: list[dict] = field(default_factory=list)
    # results that a fit callback keeps per epoch (JSON-able), saved with the training state
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, saved: dict) -> History:
        """The inverse of :meth:`as_dict` (``None`` entries, JSON's form of NaN, become NaN
        again)."""
        known = {f.name for f in dataclasses.fields(cls)}
        restored = {
            k: (v if k in ("extra", "epoch_data") else [math.nan if x is None else x for x in v])
            for k, v in saved.items()
            if k in known
        }
        return cls(**restored)


Data = ImageData | tuple[torch.Tensor, torch.Tensor]


def as_tensors(data: Data, what: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` from an :class:`ImageData` or a pair of tensors, with a clear error
    otherwise."""
    if isinstance(data, ImageData):
        return data.images, data.labels
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        inputs, targets = data
        if len(inputs) != len(targets):
            raise ValueError(
                f"{what}: {len(inputs)} inputs but {len(targets)} targets; they must match."
            )
        return inputs, targets
    raise TypeError(
        f"{what} must be a dyndl_lite.data.ImageData or an (inputs, targets) tuple of tensors, "
        f"got {type(data).__name__}."
    )


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Batched random crop: zero-pad by ``padding`` and cut an ``H x W`` window at a random offset
    per image."""
    if padding == 0:
        return images
    b, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator).to(images.device)
    rows = (offsets[0, :, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (offsets[1, :, None] + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def gaussian_noise(
    images: torch.Tensor, prob: float, sigmas: tuple[float, ...], generator: torch.Generator
) -> torch.Tensor:
    """With probability ``prob`` per image: ``clip(x + sigma/255 * eps, 0, 1)``, sigma uniform over
    ``sigmas``."""
    if prob == 0.0:
        return images
    b = images.shape[0]
    chosen = torch.rand(b, generator=generator) < prob
    sigma = torch.tensor(sigmas)[torch.randint(0, len(sigmas), (b,), generator=generator)] / 255.0
    sigma = (sigma * chosen).to(images)
    eps = torch.randn(images.shape, generator=generator).to(images)
    noisy = (images + sigma.view(-1, *([1] * (images.dim() - 1))) * eps).clamp(0.0, 1.0)
    return torch.where(
        chosen.to(images.device).view(-1, *([1] * (images.dim() - 1))), noisy, images
    )


@runtime_checkable
class CountsEvaluations(Protocol):
    """An ODE block that counts its function evaluations (reset by each forward / backward)."""

    nfe_forward: int
    nfe_backward: int


@runtime_checkable
class HasExtraLoss(Protocol):
    """A network whose loss has a term computed during its last forward pass (TisODE's
    steady-state regulariser): :func:`fit` adds ``extra_loss(epoch)`` (0-based) to every step."""

    def extra_loss(self, epoch: int) -> torch.Tensor: ...


@runtime_checkable
class Scheduled(Protocol):
    """A network whose training depends on the run's length: :func:`dyndl_lite.runs.train`
    calls ``schedule(epochs)`` before training (TisODE's integration-time schedule)."""

    def schedule(self, epochs: int) -> None: ...


def ode_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's ODE blocks (:class:`CountsEvaluations`), whose function evaluations we
    count."""
    return [m for m in model.modules() if isinstance(m, CountsEvaluations)]


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


class TrainingDiverged(FloatingPointError):
    """The loss or the weights became non-finite; the last completed epoch's state is kept."""


class TrainingStopped(Exception):
    """The run reached its time budget (``deadline``); the last completed epoch's state is kept."""


def _out_of_time(deadline: float, seconds: list[float], ran_one: bool) -> bool:
    """Whether to stop before the next epoch (see :func:`fit`'s ``deadline``)."""
    return ran_one and time.monotonic() + seconds[-1] > deadline


#: what a resumed state saved before per-epoch data were recorded says of its earlier epochs
UNRECORDED = {"train": None, "test": None, "fallback": None, "recorded": "unknown (older state)"}


def epoch_data(train: Data, test: Data | None) -> dict:
    """The data an epoch trains and tests on: ``{"train", "test", "fallback"}``, where ``fallback``
    is true when either is the offline fallback (tensors passed directly count as not)."""

    def name(data: Data | None) -> str | None:
        return None if data is None else data.name if isinstance(data, ImageData) else "tensors"

    fallback = any(isinstance(d, ImageData) and d.is_fallback for d in (train, test))
    return {"train": name(train), "test": name(test), "fallback": fallback}


@dataclass
class _Session:
    """What one call of :func:`fit` trains with, prepared once."""

    model: nn.Module
    recipe: Recipe
    inputs: torch.Tensor
    targets: torch.Tensor
    test: Data | None
    device: torch.device
    generator: torch.Generator
    optimizer: torch.optim.Optimizer
    loss: str
    spec: dict
    data: dict

    def resumable(self) -> dict:
        """What :meth:`StateStore.save` keeps besides the epoch and the history."""
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "generator": self.generator,
            "spec": self.spec,
        }

    @property
    def steps(self) -> int:
        return math.ceil(len(self.inputs) / self.recipe.batch_size)


def _prepare(
    model: nn.Module, train: Data, recipe: Recipe, test: Data | None, seed: int, device, loss: str
) -> _Session:
    """Check the arguments, draw the subset, move data and model to ``device``, seed."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
    if not isinstance(recipe, Recipe):
        raise TypeError(
            "recipe must be a dyndl_lite.recipe.Recipe (each experiment's recipe()), "
            f"got {type(recipe).__name__}."
        )
    device = get_device(device)
    inputs, targets = as_tensors(train, "train")
    if len(inputs) == 0:
        raise ValueError("train has no examples; fit needs at least one (inputs, target) pair.")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if recipe.train_subset is not None:
        if recipe.train_subset > len(inputs):
            raise ValueError(
                f"recipe {recipe.name!r}: train_subset={recipe.train_subset:,} "
                f"but the training data have only {len(inputs):,} items; ask for at most that many."
            )
        keep = torch.randperm(len(inputs), generator=generator)[: recipe.train_subset]
        inputs, targets = inputs[keep.to(inputs.device)], targets[keep.to(inputs.device)]
    if recipe.crop_padding and inputs.dim() != 4:
        raise ValueError(
            f"crop_padding={recipe.crop_padding} needs images (N, C, H, W), "
            f"got inputs of shape {tuple(inputs.shape)}."
        )
    model.to(device)
    spec = {"recipe": asdict(recipe), "seed": seed}
    return _Session(
        model, recipe, inputs.to(device), targets.to(device), test, device, generator,
        make_optimizer(model, recipe), loss, spec, epoch_data(train, test),
    )  # fmt: skip


def _resume(session: _Session, state: StateStore | None, note: str | None) -> tuple[History, int]:
    """The history and first epoch: from ``state`` when it holds this run (else a fresh start)."""
    if state is None:
        return History(), 0
    if not state.exists():
        state.refuse_orphans()
        return History(), 0
    saved = state.read()
    if saved["spec"] != session.spec:
        raise ValueError(
            f"The training state in {state.folder} belongs to another run "
            f"({saved['spec']}); delete that folder or train into another one."
        )
    saved = state.load(
        model=session.model, optimizer=session.optimizer, generator=session.generator
    )
    history = History.from_dict(saved["history"])
    missing = len(history.epoch) - len(history.epoch_data)
    if missing > 0:  # saved before per-epoch data were recorded
        same_steps = len(history.step_loss) == missing * session.steps  # else other data
        known = note is not None and same_steps and session.data["fallback"] is False
        entry = {**session.data, "recorded": note} if known else UNRECORDED
        history.epoch_data[:0] = [dict(entry) for _ in range(missing)]
    return history, saved["epoch"]


def _train_epoch(session: _Session, epoch: int, progress: bool) -> dict:
    """One pass over the shuffled data; the step losses and counts, read with one device sync."""
    from tqdm.auto import tqdm

    model, recipe, generator = session.model, session.recipe, session.generator
    criterion = nn.CrossEntropyLoss() if session.loss == "cross_entropy" else nn.MSELoss()
    blocks = ode_blocks(model)
    extra = model if isinstance(model, HasExtraLoss) else None
    # bf16 rounding (~4e-3) exceeds the adaptive solvers' tolerances and would inflate their steps
    bf16 = all(getattr(b, "method", None) in FIXED_STEP for b in blocks)
    for group in session.optimizer.param_groups:
        group["lr"] = recipe.lr_at(epoch)
    model.train()
    order = torch.randperm(len(session.inputs), generator=generator).to(session.device)
    losses, sizes, nfe_f, nfe_b = [], [], [], []
    correct = torch.zeros((), dtype=torch.long, device=session.device)
    desc = f"{recipe.name} epoch {epoch + 1}/{recipe.epochs}"
    for step in tqdm(range(session.steps), desc=desc, disable=not progress, leave=False):
        index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
        x, y = session.inputs[index], session.targets[index]
        x = random_crop(x, recipe.crop_padding, generator)
        x = gaussian_noise(x, recipe.noise_prob, recipe.noise_sigmas, generator)
        with _autocast(session.device, bf16):
            out = model(x)
            batch_loss = criterion(out.float(), y)
            if extra is not None:
                batch_loss = batch_loss + extra.extra_loss(epoch)
        session.optimizer.zero_grad(set_to_none=True)
        batch_loss.backward()
        session.optimizer.step()
        losses.append(batch_loss.detach())
        sizes.append(len(index))
        if session.loss == "cross_entropy":
            correct += (out.argmax(dim=1) == y).sum()
        nfe_f.append(sum(b.nfe_forward for b in blocks))
        nfe_b.append(sum(b.nfe_backward for b in blocks))
    step_loss = float32_decimals(torch.stack(losses))  # the epoch's one device sync
    return {"loss": step_loss, "sizes": sizes, "correct": correct.item(), "f": nfe_f, "b": nfe_b}


def float32_decimals(values: torch.Tensor) -> list[float]:
    """``values`` as float32, each as the shortest decimal that reads back as the same float32
    (at most 9 significant digits): exact for the float32 numbers, and half the JSON of their
    float64 expansion. ``float32_decimals(torch.tensor([0.1]))`` is ``[0.1]``, not
    ``[0.10000000149011612]``."""
    return [float(str(v)) for v in values.detach().float().cpu().numpy()]


def _check_epoch(session: _Session, epoch: int, step_loss: list[float]) -> None:
    """:class:`TrainingDiverged` on a non-finite step loss or weight (nothing is saved)."""
    lr = session.recipe.lr_at(epoch)
    name = session.recipe.name
    bad = [i for i, v in enumerate(step_loss) if not math.isfinite(v)]
    if bad:
        raise TrainingDiverged(
            f"{name}: the loss is {step_loss[bad[0]]} at epoch {epoch + 1}, step {bad[0] + 1} "
            f"(learning rate {lr:g}); nothing was saved for this epoch. Lower the "
            "learning rate or check the data."
        )
    bad = non_finite(dict(session.model.named_parameters()))
    if bad:
        raise TrainingDiverged(
            f"{name}: non-finite weights ({', '.join(bad[:3])}) after epoch {epoch + 1} "
            f"(learning rate {lr:g}); nothing was saved for this epoch."
        )


def _record_epoch(session: _Session, epoch: int, steps: dict, history: History) -> None:
    """Append epoch ``epoch``'s means, test accuracy and data to ``history``."""
    n, count = len(session.inputs), session.steps
    history.step_loss.extend(steps["loss"])
    history.step_nfe_forward.extend(steps["f"])
    history.step_nfe_backward.extend(steps["b"])
    history.epoch.append(epoch + 1)
    history.loss.append(sum(v * k for v, k in zip(steps["loss"], steps["sizes"])) / n)
    classify = session.loss == "cross_entropy"
    history.train_acc.append(steps["correct"] / n if classify else math.nan)
    history.lr.append(session.recipe.lr_at(epoch))
    history.nfe_forward.append(sum(steps["f"]) / count)
    history.nfe_backward.append(sum(steps["b"]) / count)
    test = session.test
    accuracy = (
        evaluate(session.model, *as_tensors(test, "test"), device=session.device)
        if test is not None and classify
        else math.nan
    )
    history.test_acc.append(accuracy)
    history.epoch_data.append(dict(session.data))


@flush_denormals()
def fit(
    model: nn.Module,
    train: Data,
    recipe: Recipe,
    *,
    test: Data | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    loss: str = "cross_entropy",
    callback: Callable[[int, nn.Module, History], None] | None = None,
    state: StateStore | None = None,
    spec: dict | None = None,
    deadline: float | None = None,
    unrecorded: str | None = None,
) -> History:
    """Train ``model`` on ``train`` with ``recipe`` and return the per-epoch :class:`History`.

    Batches are drawn by index from tensors held on ``device``; the shuffling,
    crop offsets and noise come from a generator seeded with ``seed``. After each
    epoch the test accuracy is measured when ``test`` is given, the data of the epoch are
    recorded (:func:`epoch_data`) and ``callback(epoch, model, history)`` is called (it may keep
    JSON-able results in ``history.extra``). The model is left in eval mode. A
    :class:`HasExtraLoss` model has ``extra_loss(epoch)`` added to the loss of every step.
    On CUDA the forward pass runs under bf16 autocast, except for models with an adaptive ODE
    block, whose error control at rtol ~ 1e-3 cannot work with bf16 rounding.

    Resuming: with a :class:`~dyndl_lite.state.StateStore` ``state``, the run starts from
    the state saved there (if any; its ``spec`` must equal ``spec``) and saves the whole
    state after every completed epoch, so an interrupted run loses at most one epoch and,
    on a CPU, a resumed run ends bitwise identical to an uninterrupted one. The epochs of a state
    saved before per-epoch data were recorded get :data:`UNRECORDED` (which
    ``pretrained.ship`` refuses), or, given a note ``unrecorded`` that vouches for them, this
    call's data with that note, when those are official and their step count fits them.
    A non-finite loss or weight raises :class:`TrainingDiverged` (nothing saved for that
    epoch). With a ``deadline`` (a ``time.monotonic()`` value), :class:`TrainingStopped` is
    raised before an epoch that the last epoch's duration says cannot finish by then, once
    this call has completed one epoch: every call makes progress, a started epoch is never
    cut short, and the deadline is overrun by at most one epoch.
    """
    session = _prepare(model, train, recipe, test, seed, device, loss)
    session.spec = json.loads(dump_record(spec if spec is not None else session.spec))
    history, first_epoch = _resume(session, state, unrecorded)
    for epoch in range(first_epoch, recipe.epochs):
        if deadline is not None and _out_of_time(deadline, history.seconds, epoch > first_epoch):
            raise TrainingStopped(f"time budget reached before epoch {epoch + 1} of {recipe.name}")
        start = time.perf_counter()
        steps = _train_epoch(session, epoch, progress)
        _check_epoch(session, epoch, steps["loss"])
        _record_epoch(session, epoch, steps, history)
        history.seconds.append(time.perf_counter() - start)
        if callback is not None:
            callback(epoch + 1, model, history)
        if state is not None:
            state.save(epoch=epoch + 1, history=history.as_dict(), **session.resumable())
    model.eval()
    return history
