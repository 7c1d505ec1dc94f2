"""The book's one training loop, its recipes, and evaluation.

Every experiment of the book trains through :func:`fit`. It keeps the whole data
set as tensors on the device and draws batches by index, so a step costs one
gather instead of a Python loop over samples; augmentation is batched too:

* random crop with zero padding ``p``: pad the batch once, draw offsets
  ``(i, j)`` uniformly in ``{0, ..., 2p}^2`` and gather
  ``x_crop[b, c, h, w] = x_pad[b, c, i_b + h, j_b + w]`` with index arithmetic;
* Gaussian noise (Yan et al., Table 2): with probability ``noise_prob`` an image
  becomes ``clip(x + (sigma / 255) * eps, 0, 1)``, ``eps ~ N(0, I)``, with
  ``sigma`` drawn uniformly from ``noise_sigmas``.

The loss is cross-entropy ``-log softmax(f(x))_y`` (accuracy tracked) or the
mean squared error ``|f(x) - y|^2`` (accuracy ``nan``). The learning rate is
``lr * gamma^k`` after ``k`` of the ``milestones`` (epochs) have passed.
On CUDA the forward pass runs under bf16 autocast; on CPU in float32.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from dyndl_lite.config import flush_denormals, get_device
from dyndl_lite.data import ImageData
from dyndl_lite.models.blocks import FIXED_STEP, evaluation_mode
from dyndl_lite.pretrained import dump_record
from dyndl_lite.state import StateStore

OPTIMIZERS = ("sgd", "adam")
LOSSES = ("cross_entropy", "mse")


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run except the model, the data and the seed."""

    name: str
    epochs: int
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (with momentum) or "adam"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = ()  # epochs at which lr is multiplied by gamma
    gamma: float = 0.1
    crop_padding: int = 0  # batched random crop with this zero padding (0: none)
    noise_prob: float = 0.0  # Yan et al. Table 2: probability that an image gets Gaussian noise
    noise_sigmas: tuple[float, ...] = ()  # sigma drawn uniformly from these, on the 0-255 scale
    train_subset: int | None = None  # use this many training images (quick mode)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"Recipe {self.name!r}: optimizer must be one of {OPTIMIZERS}, "
                f"got {self.optimizer!r}."
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"Recipe {self.name!r}: epochs and batch_size must be >= 1, "
                f"got {self.epochs}, {self.batch_size}."
            )
        if not self.lr > 0:
            raise ValueError(f"Recipe {self.name!r}: lr must be positive, got {self.lr}.")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(
                f"Recipe {self.name!r}: milestones must be increasing epochs, "
                f"got {self.milestones}."
            )
        if self.crop_padding < 0:
            raise ValueError(
                f"Recipe {self.name!r}: crop_padding must be >= 0, got {self.crop_padding}."
            )
        if not 0.0 <= self.noise_prob <= 1.0 or (self.noise_prob > 0 and not self.noise_sigmas):
            raise ValueError(
                f"Recipe {self.name!r}: noise_prob must lie in [0, 1] "
                "and needs noise_sigmas when positive, "
                f"got noise_prob={self.noise_prob}, noise_sigmas={self.noise_sigmas}."
            )
        if self.train_subset is not None and self.train_subset < 1:
            raise ValueError(
                f"Recipe {self.name!r}: train_subset must be a positive number of images or None."
            )

    def lr_at(self, epoch: int) -> float:
        """Learning rate during ``epoch`` (0-based):
        ``lr * gamma^(number of milestones <= epoch)``."""
        return self.lr * self.gamma ** sum(epoch >= m for m in self.milestones)

    def compressed(self, epochs: int, name: str | None = None) -> Recipe:
        """The same schedule squeezed into ``epochs``: milestones scaled by
        ``epochs / self.epochs``.

        Each milestone becomes ``max(1, round(m * epochs / self.epochs))``; those at or
        beyond ``epochs`` are dropped, so the first epoch always runs at the initial rate.
        """
        scale = epochs / self.epochs
        scaled = {max(1, round(m * scale)) for m in self.milestones}
        milestones = tuple(sorted(m for m in scaled if m < epochs))
        return replace(
            self, name=name or f"{self.name}-{epochs}ep", epochs=epochs, milestones=milestones
        )


@dataclass
class History:
    """Per-epoch training record: one entry per epoch in every list."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    nfe_forward: list[float] = field(
        default_factory=list
    )  # mean function evaluations per forward pass
    nfe_backward: list[float] = field(default_factory=list)  # mean per backward pass (adjoint only)
    seconds: list[float] = field(
        default_factory=list
    )  # wall time of the epoch (training, test evaluation and a run's per-epoch measurements)
    # one entry per optimisation step, for curves finer than an epoch
    step_loss: list[float] = field(default_factory=list)
    step_nfe_forward: list[int] = field(default_factory=list)
    step_nfe_backward: list[int] = field(default_factory=list)

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
            k: (v if k == "extra" else [math.nan if x is None else x for x in v])
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


def ode_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's ODE blocks (anything with ``nfe_forward``), whose function evaluations we
    count."""
    return [m for m in model.modules() if hasattr(m, "nfe_forward") and hasattr(m, "nfe_backward")]


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


class TrainingDiverged(FloatingPointError):
    """The loss or the weights became non-finite; the last completed epoch's state is kept."""


class TrainingStopped(Exception):
    """The run reached its time budget (``deadline``); the last completed epoch's state is kept."""


def _out_of_time(deadline: float, seconds: list[float], ran_one: bool) -> bool:
    """Whether to stop before the next epoch (see :func:`fit`'s ``deadline``)."""
    return ran_one and time.monotonic() + seconds[-1] > deadline


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD with momentum or Adam, with the recipe's learning rate and weight decay."""
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=recipe.lr,
            momentum=recipe.momentum,
            weight_decay=recipe.weight_decay,
        )
    return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


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
    mixed_precision: bool = True,
    state: StateStore | None = None,
    spec: dict | None = None,
    deadline: float | None = None,
) -> History:
    """Train ``model`` on ``train`` with ``recipe`` and return the per-epoch :class:`History`.

    Batches are drawn by index from tensors held on ``device``; the shuffling,
    crop offsets and noise come from a generator seeded with ``seed``. After each
    epoch the test accuracy is measured when ``test`` is given and
    ``callback(epoch, model, history)`` is called (it may keep JSON-able results in
    ``history.extra``). The model is left in eval mode. A model with a method
    ``extra_loss(epoch) -> Tensor`` (0-based epoch; a term computed during its last forward
    pass, such as a regulariser) has it added to the loss of every step.
    ``mixed_precision`` (bf16 autocast) applies on CUDA only, and not to models with an adaptive
    ODE block, whose error control at rtol ~ 1e-3 cannot work with bf16 rounding.

    Resuming: with a :class:`~dyndl_lite.state.StateStore` ``state``, the run starts from
    the state saved there (if any; its ``spec`` must equal ``spec``) and saves the whole
    state after every completed epoch, so an interrupted run loses at most one epoch and,
    on a CPU, a resumed run ends bitwise identical to an uninterrupted one.
    A non-finite loss or weight raises :class:`TrainingDiverged` (nothing saved for that
    epoch). With a ``deadline`` (a ``time.monotonic()`` value), :class:`TrainingStopped` is
    raised before an epoch that the last epoch's duration says cannot finish by then, once
    this call has completed one epoch: every call makes progress, a started epoch is never
    cut short, and the deadline is overrun by at most one epoch.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
    if not isinstance(recipe, Recipe):
        raise TypeError(
            "recipe must be a dyndl_lite.train.Recipe (each experiment's recipe()), "
            f"got {type(recipe).__name__}."
        )
    device = get_device(device)
    inputs, targets = as_tensors(train, "train")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if recipe.train_subset is not None:
        if recipe.train_subset > len(inputs):
            raise ValueError(
                f"recipe {recipe.name!r}: train_subset={recipe.train_subset:,} "
                "but the training data "
                f"have only {len(inputs):,} items; ask for at most that many."
            )
        keep = torch.randperm(len(inputs), generator=generator)[: recipe.train_subset].to(
            inputs.device
        )
        inputs, targets = inputs[keep], targets[keep]
    inputs, targets = inputs.to(device), targets.to(device)
    if recipe.crop_padding and inputs.dim() != 4:
        raise ValueError(
            f"crop_padding={recipe.crop_padding} needs images (N, C, H, W), "
            f"got inputs of shape {tuple(inputs.shape)}."
        )
    model.to(device)
    optimizer = make_optimizer(model, recipe)
    criterion = nn.CrossEntropyLoss() if loss == "cross_entropy" else nn.MSELoss()
    blocks = ode_blocks(model)
    extra_loss = getattr(model, "extra_loss", None)  # e.g. TisODE's steady-state regulariser
    # bf16 rounding (~4e-3) exceeds the adaptive solvers' tolerances and would inflate their step
    # counts
    adaptive = any(getattr(b, "method", None) not in FIXED_STEP for b in blocks)
    mixed_precision = mixed_precision and not adaptive
    n, history, first_epoch = len(inputs), History(), 0
    spec = json.loads(
        dump_record(spec if spec is not None else {"recipe": asdict(recipe), "seed": seed})
    )
    if state is not None and state.exists():
        saved = state.read()
        if saved["spec"] != spec:
            raise ValueError(
                f"The training state in {state.folder} belongs to another run "
                f"({saved['spec']}); delete that folder or train into another one."
            )
        saved = state.load(model=model, optimizer=optimizer, generator=generator)
        history, first_epoch = History.from_dict(saved["history"]), saved["epoch"]
    steps = math.ceil(n / recipe.batch_size)

    from tqdm.auto import tqdm

    for epoch in range(first_epoch, recipe.epochs):
        if deadline is not None and _out_of_time(
            deadline, history.seconds, ran_one=epoch > first_epoch
        ):
            raise TrainingStopped(
                f"time budget reached before epoch {epoch + 1}/{recipe.epochs} of {recipe.name}"
            )
        start = time.perf_counter()
        lr = recipe.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        total_loss = correct = nfe_f = nfe_b = 0.0
        step_loss, step_f_list, step_b_list = [], [], []
        bar = tqdm(
            range(steps),
            desc=f"{recipe.name} epoch {epoch + 1}/{recipe.epochs}",
            disable=not progress,
            leave=False,
            mininterval=1.0,
        )
        for step in bar:
            index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            x, y = inputs[index], targets[index]
            x = random_crop(x, recipe.crop_padding, generator)
            x = gaussian_noise(x, recipe.noise_prob, recipe.noise_sigmas, generator)
            with _autocast(device, mixed_precision):
                out = model(x)
                batch_loss = criterion(out.float(), y)
                if extra_loss is not None:
                    batch_loss = batch_loss + extra_loss(epoch)
            value = batch_loss.item()
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"{recipe.name}: the loss is {value} at epoch {epoch + 1}, step {step + 1} "
                    f"(learning rate {lr:g}); nothing was saved for this epoch. Lower the "
                    "learning rate or check the data."
                )
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimizer.step()
            total_loss += value * len(index)
            if loss == "cross_entropy":
                correct += (out.argmax(dim=1) == y).sum().item()
            step_f, step_b = sum(b.nfe_forward for b in blocks), sum(b.nfe_backward for b in blocks)
            nfe_f, nfe_b = nfe_f + step_f, nfe_b + step_b
            step_loss.append(value)
            step_f_list.append(step_f)
            step_b_list.append(step_b)
            if progress:
                bar.set_postfix(
                    loss=f"{total_loss / min(n, (step + 1) * recipe.batch_size):.3f}",
                    nfe=sum(b.nfe_forward for b in blocks),
                )
        bar.close()
        bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise TrainingDiverged(
                f"{recipe.name}: non-finite weights ({', '.join(bad[:3])}) after epoch {epoch + 1} "
                f"(learning rate {lr:g}); nothing was saved for this epoch."
            )
        history.step_loss.extend(step_loss)
        history.step_nfe_forward.extend(step_f_list)
        history.step_nfe_backward.extend(step_b_list)
        history.epoch.append(epoch + 1)
        history.loss.append(total_loss / n)
        history.train_acc.append(correct / n if loss == "cross_entropy" else math.nan)
        history.lr.append(lr)
        history.nfe_forward.append(nfe_f / steps)
        history.nfe_backward.append(nfe_b / steps)
        if test is not None and loss == "cross_entropy":
            history.test_acc.append(evaluate(model, *as_tensors(test, "test"), device=device))
        else:
            history.test_acc.append(math.nan)
        history.seconds.append(time.perf_counter() - start)
        if callback is not None:
            callback(epoch + 1, model, history)
        if state is not None:
            state.save(
                epoch=epoch + 1,
                model=model,
                optimizer=optimizer,
                generator=generator,
                history=history.as_dict(),
                spec=spec,
            )
    model.eval()
    return history


def _check_pair(inputs: torch.Tensor, targets: torch.Tensor) -> None:
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets; they must match.")


@flush_denormals()
def count_correct(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int = 1000,
    device: str | torch.device | None = None,
) -> int:
    """Correct predictions ``sum_i [argmax_j f(x_i)_j = y_i]``: the package's one evaluation loop.

    Moves ``model`` to ``device`` (default :func:`~dyndl_lite.config.get_device`; it stays
    there) and runs it in eval mode (:func:`~dyndl_lite.models.blocks.evaluation_mode`: the
    previous mode is restored, also on an error) under ``torch.inference_mode``, in batches of
    ``batch_size`` moved to ``device``.
    """
    _check_pair(inputs, targets)
    device = get_device(device)
    model.to(device)
    correct = 0
    with evaluation_mode(model), torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            x = inputs[start : start + batch_size].to(device)
            y = targets[start : start + batch_size].to(device)
            correct += (model(x).argmax(dim=1) == y).sum().item()
    return correct


def evaluate(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int = 1000,
    device: str | torch.device | None = None,
) -> float:
    """Accuracy ``mean_i [argmax_j f(x_i)_j = y_i]`` in ``[0, 1]``: :func:`count_correct` / ``n``.

    In eval mode (the previous mode is restored), in batches, under ``torch.inference_mode``,
    on ``device``.
    """
    _check_pair(inputs, targets)
    if len(inputs) == 0:
        raise ValueError("evaluate needs at least one example.")
    return count_correct(model, inputs, targets, batch_size, device) / len(inputs)
