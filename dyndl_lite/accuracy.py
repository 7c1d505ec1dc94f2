"""Accuracy of a classifier: the package's one evaluation loop.

:func:`count_correct` counts ``sum_i [argmax_j f(x_i)_j = y_i]`` in batches, in eval mode, under
``torch.inference_mode``; :func:`evaluate` divides it by ``n``. Training (:mod:`dyndl_lite.train`),
the evaluation records and the experiments all measure accuracy through these two.
"""

from __future__ import annotations

import torch
from torch import nn

from dyndl_lite.config import flush_denormals, get_device
from dyndl_lite.models.blocks import evaluation_mode


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
    ``batch_size`` moved to ``device``. Non-finite outputs raise ``FloatingPointError``.
    """
    _check_pair(inputs, targets)
    device = get_device(device)
    model.to(device)
    correct = 0
    with evaluation_mode(model), torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            x = inputs[start : start + batch_size].to(device)
            y = targets[start : start + batch_size].to(device)
            logits = model(x)
            if not torch.isfinite(logits).all():
                raise FloatingPointError(
                    f"the model's outputs on examples {start}..{start + len(x) - 1} are not all "
                    "finite (NaN or infinite weights?); an accuracy of them would mean nothing."
                )
            correct += (logits.argmax(dim=1) == y).sum().item()
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
