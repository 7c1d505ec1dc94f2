"""A training recipe: everything that defines a run except the model, the data and the seed.

The learning rate is ``lr * gamma^k`` during an epoch after ``k`` of the ``milestones`` (epochs)
have passed (:meth:`Recipe.lr_at`); :meth:`Recipe.compressed` squeezes the same schedule into fewer
epochs. The optimizer is SGD with momentum or Adam (:func:`make_optimizer`). Every experiment's
``recipe()`` returns a :class:`Recipe`, and :func:`dyndl_lite.train.fit` trains with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

OPTIMIZERS = ("sgd", "adam")


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
