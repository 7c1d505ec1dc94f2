"""How close is a network to the Wasserstein geodesic? Tracks, LSS, OTS and track distances.

A network whose hidden layers all have the same width d moves each input
through representations ``x(0), x(1), ..., x(n)`` in R^d: the *track* of the
input (Gai & Zhang 2021). If the network follows the geodesic of Wasserstein
space between the data distribution mu_0 and the last-layer distribution
mu_1, two things hold:

* every track is a straight segment (the McCann path moves each point on a
  line at constant speed), measured by the Line-Shape Score :func:`lss`;
* the end-to-end map ``x(0) -> x(n)`` is the optimal transport map between
  the two clouds, measured by the Optimal Transport Score :func:`ots`.

Which layers form a track is decided by the model (its ``track`` method); the
book's networks are in :mod:`dyndl_lite.models.residual`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dyndl_lite.models.blocks import evaluation_mode
from dyndl_lite.transport import ArrayLike, as_numpy, check_finite, ot_map


def tracks(model: nn.Module, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Layer-wise representations ``x(0), ..., x(n)`` of inputs ``x``, shape (n+1, m, d).

    ``model`` must have a method ``track(x) -> (n+1, m, d)`` (the networks of
    :mod:`dyndl_lite.models.residual` do). Runs in eval mode (the previous mode is restored) under
    ``torch.inference_mode`` in batches of ``batch_size`` and returns a CPU tensor.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(
            f"x must be a floating torch tensor of inputs, got {type(x).__name__}"
            f"{'' if not isinstance(x, torch.Tensor) else ' of dtype ' + str(x.dtype)}."
        )
    if len(x) == 0:
        raise ValueError(f"x holds no inputs (shape {tuple(x.shape)}); pass at least one.")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or Inf; tracks of such inputs are meaningless.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if not hasattr(model, "track"):
        raise TypeError(
            f"{type(model).__name__} has no track(x) method; use a network from "
            "dyndl_lite.models.residual (ResidualMLP / TrackNet), "
            "which exposes its layer-wise representations."
        )
    device = next(model.parameters()).device
    parts = []
    with evaluation_mode(model), torch.inference_mode():
        for start in range(0, len(x), batch_size):
            parts.append(model.track(x[start : start + batch_size].to(device)).cpu())
    return torch.cat(parts, dim=1)


def _as_track(track: ArrayLike) -> tuple[np.ndarray, bool]:
    """(n+1, m, d) float64 array and whether the input was a single (n+1, d) track."""
    track = as_numpy(track, "track")
    single = track.ndim == 2
    if single:
        track = track[:, None, :]
    if track.ndim != 3:
        raise ValueError(
            f"a track has shape (n+1, d), a batch of tracks (n+1, m, d); got {track.shape}."
        )
    if len(track) < 2:
        raise ValueError(f"a track needs at least two layers x(0), x(1); got {len(track)}.")
    if track.shape[1] == 0 or track.shape[2] == 0:
        raise ValueError(
            f"track is empty (shape {track.shape}): "
            "need at least one sample in at least one dimension."
        )
    return check_finite(track, "track"), single


def lss(track: ArrayLike) -> float | np.ndarray:
    """Line-Shape Score of one track (n+1, d) -> float, or of m tracks (n+1, m, d) -> (m,) array.

    Cumulative form (per sample): with unit steps ``u_l = (x(l) - x(l-1)) / ||x(l) - x(l-1)||``,

    .. math::  \\tilde x(n) - \\tilde x(0) = \\sum_{l=1}^n u_l, \\qquad
               \\mathrm{LSS} = \\frac{n}{\\|\\sum_{l=1}^n u_l\\|_2} \\ge 1,

    with equality exactly when all steps point the same way (a straight,
    monotone track). The norm is the Euclidean norm in R^d of one sample's
    track; a batch score is the mean of the per-sample scores. If the unit steps
    cancel exactly (``sum u_l = 0``, a track that doubles back) the score is ``inf``,
    the limit of ``n / ||sum u_l||``. A zero-length step, NaN or Inf is a ``ValueError``.
    """
    track, single = _as_track(track)
    steps = np.diff(track, axis=0)
    lengths = np.linalg.norm(steps, axis=-1)
    if np.any(lengths == 0):
        layer, sample = np.argwhere(lengths == 0)[0]
        raise ValueError(
            f"zero-length step from layer {layer} to {layer + 1} (sample {sample}): "
            "the unit direction is "
            "undefined, so LSS is too. Drop repeated layers from the track."
        )
    total = np.linalg.norm((steps / lengths[..., None]).sum(0), axis=-1)
    with np.errstate(divide="ignore"):
        score = np.where(total > 0, (len(track) - 1) / np.maximum(total, 1e-300), np.inf)
    return float(score[0]) if single else score


def ots(x: ArrayLike, fx: ArrayLike, solver: str = "pot") -> float:
    """Optimal Transport Score ``#{i : T(x_i) = f(x_i)} / m`` with T the exact OT map from
    {x_i} to {f(x_i)}.

    T is the optimal assignment for the squared Euclidean cost
    (:func:`dyndl_lite.transport.ot_map`); OTS = 1 means the network's
    end-to-end map is itself optimal on these points. ``T(x_i) = f(x_i)`` is
    tested as equality of points, so coinciding images count as matched.
    """
    x, fx = as_numpy(x, "x"), as_numpy(fx, "fx")
    if x.shape != fx.shape or x.ndim != 2:
        raise ValueError(
            "x and fx must both have shape (m, d) (inputs and their images in the same space); "
            f"got {x.shape} and {fx.shape}."
        )
    check_finite(x, "x"), check_finite(fx, "fx")
    perm = ot_map(x, fx, solver=solver)
    # compare points, not indices: if some images coincide (a collapsed layer), any of them is
    # "f(x_i)"
    return float(np.mean(np.all(fx[perm] == fx, axis=1)))


def track_distance(track1: ArrayLike, track2: ArrayLike) -> float | np.ndarray:
    """``d(track1, track2) = min_l ||x1(l) - x2(l)||``: tracks (n+1, d) -> float, (n+1, m, d)
    -> (m,) array."""
    a, single = _as_track(track1)
    b, _ = _as_track(track2)
    if a.shape != b.shape:
        raise ValueError(f"the two tracks must have the same shape, got {a.shape} and {b.shape}.")
    distance = np.linalg.norm(a - b, axis=-1).min(0)
    return float(distance[0]) if single else distance


def track_lower_bound(
    x1: ArrayLike, x2: ArrayLike, fx1: ArrayLike, fx2: ArrayLike
) -> float | np.ndarray:
    """Gai & Zhang's lower bound on the track distance of a network that follows the geodesic:

    .. math::  d(\\mathrm{track}(x_1), \\mathrm{track}(x_2)) \\ge
               \\frac{\\|x_1 - x_2\\| \\, \\|f(x_1) - f(x_2)\\|}{\\sqrt{\\|x_1 - x_2\\|^2 +
               \\|f(x_1) - f(x_2)\\|^2}}.

    Points of shape (d,) give a float, batches (m, d) give m bounds. (It holds
    for straight tracks whenever ``<x1 - x2, f(x1) - f(x2)> >= 0``, which an
    optimal transport map guarantees.)
    """
    arrays = [as_numpy(a, name) for a, name in zip((x1, x2, fx1, fx2), ("x1", "x2", "fx1", "fx2"))]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError(
            f"x1, x2, fx1, fx2 must have the same shape, got {[a.shape for a in arrays]}."
        )
    if arrays[0].ndim not in (1, 2) or arrays[0].size == 0:
        raise ValueError(
            "x1, x2, fx1, fx2 must be points (d,) or batches (m, d), non-empty; "
            f"got {arrays[0].shape}."
        )
    for a, name in zip(arrays, ("x1", "x2", "fx1", "fx2")):
        check_finite(a, name)
    a = np.linalg.norm(arrays[0] - arrays[1], axis=-1)
    b = np.linalg.norm(arrays[2] - arrays[3], axis=-1)
    bound = np.where((a > 0) & (b > 0), a * b / np.sqrt(np.maximum(a * a + b * b, 1e-300)), 0.0)
    return float(bound) if bound.ndim == 0 else bound
