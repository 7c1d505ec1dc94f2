"""How chapter 4 measures Chen et al.'s ODE-Net live: the tolerance sweep of Fig. 3a (numerical
error, function evaluations and test error per solver tolerance), the forward and adjoint NFE of
one gradient (Fig. 3c), and per-image correctness. The evaluation records
(:data:`dyndl_lite.protocols.CHEN`) hold the sweep measured on all test images; the chapter runs
the adjoint sweep live.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from dyndl_lite.config import flush_denormals, get_device
from dyndl_lite.data import ImageData
from dyndl_lite.models.blocks import evaluation_mode
from dyndl_lite.train import evaluate, ode_blocks


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
