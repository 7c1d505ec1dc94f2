"""Perturbations of images in ``[0, 1]``: Gaussian noise, FGSM and PGD.

* Gaussian noise (Yan et al., 2020), ``sigma`` on the 0-255 pixel scale:

  .. math::  x' = \\operatorname{clip}_{[0,1]}\\big(x + \\sigma \\varepsilon / 255\\big),
             \\quad \\varepsilon \\sim N(0, I).

* FGSM (Goodfellow et al., 2015), one signed-gradient step of size ``eps``:

  .. math::  x' = \\operatorname{clip}_{[0,1]}\\big(x + \\epsilon\\,
             \\operatorname{sign} \\nabla_x L(f(x), y)\\big).

* PGD (Madry et al., 2018), ``steps`` signed-gradient steps of size ``step``, each
  followed by the projection onto the L-infinity ball of radius ``eps`` around
  ``x`` intersected with ``[0, 1]``:

  .. math::  x^{k+1} = \\Pi_{B_\\infty(x, \\epsilon) \\cap [0,1]^n}\\big(x^k + \\alpha\\,
             \\operatorname{sign} \\nabla_x L(f(x^k), y)\\big),

  started at ``x`` or, with ``random_start=True``, at a uniform point of the ball.

The loss ``L`` is the textbook cross-entropy by default. ``loss="margin"`` uses
the margin (Carlini-Wagner) loss ``max_{j != y} f_j(x) - f_y(x)`` that Yan et
al.'s code attacks with. The model is put in eval mode during an attack and its
previous mode is restored afterwards; no gradient is left in its parameters.

Inputs are checked before any work: images must be a non-empty floating batch
of finite values in ``[0, 1]``, labels an integer tensor with one label per
image, and radii (``eps``, ``step``, ``sigma``) finite non-negative numbers of
any kind (Python, NumPy, one-element tensor). A loss gradient that is NaN or
Inf (a model that overflows) is an error rather than a NaN image.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndl_lite.config import flush_denormals
from dyndl_lite.models.blocks import evaluation_mode

LOSSES = ("cross_entropy", "margin")


def _check_images(x: Tensor, batch: bool = True) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        got = f"a tensor of dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(
            f"images must be a floating torch tensor, got {got}; "
            "use x.float() / 255 for 0-255 images."
        )
    if x.numel() == 0 or batch and x.ndim < 2:
        raise ValueError(
            f"images must be a non-empty batch of shape (N, ...), got shape {tuple(x.shape)}."
        )
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or Inf; attack finite images in [0, 1].")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"images must lie in [0, 1], "
            f"found values in [{x.min().item():.3g}, {x.max().item():.3g}]; "
            "divide 0-255 images by 255 and do not normalise before attacking."
        )


def _check_eps(eps: float, name: str = "eps", scale: str = "the [0, 1] pixel scale") -> float:
    """``eps`` as a float if it is a finite non-negative number (Python, NumPy or one-element
    tensor)."""
    if isinstance(eps, Tensor):
        if eps.numel() != 1:
            raise TypeError(f"{name} must be a number, got a tensor of shape {tuple(eps.shape)}.")
        eps = eps.item()
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(
            f"{name} must be a non-negative number on {scale}, got {type(eps).__name__} {eps!r}."
        )
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{name} must be a finite non-negative number on {scale}, got {eps!r}.")
    return float(eps)


def _check_labels(x: Tensor, y: Tensor) -> None:
    if (
        not isinstance(y, Tensor)
        or y.is_floating_point()
        or y.is_complex()
        or y.dtype == torch.bool
    ):
        got = f"dtype {y.dtype}" if isinstance(y, Tensor) else type(y).__name__
        raise TypeError(
            f"labels must be an integer torch tensor (class indices), got {got}; use y.long()."
        )
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"labels must have shape ({len(x)},), got {tuple(y.shape)}.")


@contextmanager
def _attack_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (:func:`~dyndl_lite.models.blocks.evaluation_mode`), frozen parameters and
    denormals flushed (:func:`~dyndl_lite.config.flush_denormals`) during the attack; the
    previous mode, ``requires_grad`` flags and float mode are restored afterwards."""
    flags = [p.requires_grad for p in model.parameters()]
    with evaluation_mode(model), flush_denormals():
        for p in model.parameters():
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(model.parameters(), flags):
                p.requires_grad_(flag)


def attack_loss(logits: Tensor, y: Tensor, loss: str = "cross_entropy") -> Tensor:
    """Summed attack loss: cross-entropy, or the margin ``max_{j != y} z_j - z_y``."""
    if loss == "cross_entropy":
        return F.cross_entropy(logits, y, reduction="sum")
    if loss == "margin":
        true = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
        return (other - true).sum()
    raise ValueError(f"unknown attack loss {loss!r}; use one of {', '.join(LOSSES)}.")


def input_gradient(model: nn.Module, x: Tensor, y: Tensor, loss: str = "cross_entropy") -> Tensor:
    """``grad_x L(model(x), y)`` (summed loss, so each row is its own image's gradient)."""
    x = x.detach().clone().requires_grad_(True)
    value = attack_loss(model(x), y, loss)
    (grad,) = torch.autograd.grad(value, x)
    if not torch.isfinite(grad).all():
        raise FloatingPointError(
            f"the gradient of the {loss} loss with respect to the images is NaN or Inf "
            "(the model's logits "
            "overflow or are NaN); an attack along it would return NaN images."
        )
    return grad


def gaussian(x: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """``clip(x + sigma * N(0, I) / 255, 0, 1)`` with ``sigma`` on the 0-255 scale."""
    _check_images(x, batch=False)
    sigma = _check_eps(sigma, "sigma", "the 0-255 pixel scale")
    noise = torch.randn(
        x.shape,
        generator=generator,
        dtype=x.dtype,
        device="cpu" if generator is not None else x.device,
    )
    return (x + sigma / 255.0 * noise.to(x.device)).clamp(0.0, 1.0)


def fgsm(model: nn.Module, x: Tensor, y: Tensor, eps: float, loss: str = "cross_entropy") -> Tensor:
    """``clip(x + eps * sign(grad_x L), 0, 1)``: the fast gradient sign method."""
    _check_images(x)
    _check_labels(x, y)
    eps = _check_eps(eps)
    with _attack_mode(model):
        grad = input_gradient(model, x, y, loss)
    return (x + eps * grad.sign()).clamp(0.0, 1.0).detach()


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    step: float | None = None,
    steps: int = 10,
    random_start: bool = False,
    loss: str = "cross_entropy",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Projected gradient descent in the L-infinity ball of radius ``eps`` (default step
    ``eps / 5``, Yan et al.'s).

    Each iteration: ``x' <- clip(clip(x' + step * sign(grad), x - eps, x + eps), 0, 1)``.
    ``random_start`` begins at ``x + U(-eps, eps)`` (projected), drawn from ``generator``.
    """
    _check_images(x)
    _check_labels(x, y)
    eps = _check_eps(eps)
    step = eps / 5 if step is None else _check_eps(step, "step")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    low, high = (x - eps).clamp(min=0.0), (x + eps).clamp(max=1.0)
    adv = x.detach().clone()
    if random_start:
        start = torch.rand(
            x.shape,
            generator=generator,
            dtype=x.dtype,
            device="cpu" if generator is not None else x.device,
        )
        adv = torch.max(torch.min(x + eps * (2 * start.to(x.device) - 1), high), low)
    with _attack_mode(model):
        for _ in range(steps):
            grad = input_gradient(model, adv, y, loss)
            adv = torch.max(torch.min(adv + step * grad.sign(), high), low).detach()
    return adv


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``x`` classified as ``y``: :func:`dyndl_lite.accuracy.evaluate` on ``x``'s
    device."""
    from dyndl_lite.accuracy import evaluate

    return evaluate(model, x, y, batch_size, device=x.device)


def fgsm_sweep(
    model: nn.Module, x: Tensor, y: Tensor, eps_values: list[float], loss: str = "cross_entropy"
) -> list[Tensor]:
    """``[fgsm(model, x, y, eps) for eps in eps_values]`` from a single gradient.

    The direction ``sign(grad_x L(f(x), y))`` does not depend on ``eps``, so one
    backward pass serves every radius.
    """
    _check_images(x)
    _check_labels(x, y)
    eps_values = [_check_eps(eps) for eps in eps_values]
    with _attack_mode(model):
        direction = input_gradient(model, x, y, loss).sign()
    return [(x + eps * direction).clamp(0.0, 1.0).detach() for eps in eps_values]
