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

Summaries and pictures of many tracks: :func:`lss_summary` (mean LSS with its standard error),
:func:`pca_2d` / :func:`fixed_basis_pca` (tracks in the plane) and :func:`align_2d` (two planar
pictures brought into register); :func:`bound_check` tests the lower bound on pairs of tracks,
with a control that can fail.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from scipy.linalg import orthogonal_procrustes
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


class LSSSummary(NamedTuple):
    """What :func:`lss_summary` returns."""

    mean: float  # mean per-sample LSS of the kept tracks (NaN when none is kept)
    se: float | None  # its standard error, std(ddof=1) / sqrt(kept); None below two kept tracks
    left_out: int  # tracks with a zero-length step, which have no LSS


def lss_summary(track: ArrayLike) -> LSSSummary:
    """Mean per-sample LSS of tracks (n+1, m, d), its standard error and the tracks left out.

    With ``s_i`` the LSS of kept track i (k of them):

    .. math::  \\mathrm{mean} = \\frac{1}{k}\\sum_{i=1}^k s_i, \\qquad
               \\mathrm{se} = \\frac{\\mathrm{std}(s)}{\\sqrt{k}} \\ (\\mathrm{ddof} = 1),

    the sampling error of the mean over the images drawn. A track with a zero-length step (a plain
    network whose relu layer maps it to the same point twice, e.g. a collapsed all-zero layer) has
    no LSS and is left out; the count is reported beside the mean. The mean is NaN if every track
    is left out. NaN or Inf in a track is an error (it is not a zero-length step).

    >>> track = np.zeros((3, 2, 2))
    >>> track[1:, 0, 0] = [1.0, 2.0]  # sample 0 straight, sample 1 never moves
    >>> lss_summary(track)
    LSSSummary(mean=1.0, se=None, left_out=1)
    """
    track, _ = _as_track(track)
    regular = np.all(np.linalg.norm(np.diff(track, axis=0), axis=-1) > 0, axis=0)
    scores = np.atleast_1d(lss(track[:, regular])) if regular.any() else np.zeros(0)
    mean = float(np.mean(scores)) if len(scores) else float("nan")
    se = float(np.std(scores, ddof=1) / math.sqrt(len(scores))) if len(scores) >= 2 else None
    return LSSSummary(mean, se, int((~regular).sum()))


def _points(a: ArrayLike | list, name: str) -> np.ndarray:
    """``a`` (a tensor, an array or nested lists, as records store tracks) as a float64 array."""
    return as_numpy(a if isinstance(a, torch.Tensor) else np.asarray(a, dtype=np.float64), name)


def pca_2d(tracks_: ArrayLike | list, fit_on: ArrayLike | list | None = None) -> np.ndarray:
    """Tracks (..., d) projected to the plane of their two leading principal axes:

    .. math::  P(x) = (x - \\bar x) \\, V_2,

    with the mean :math:`\\bar x` and the two leading right singular vectors :math:`V_2` (d, 2) of
    the centred points of ``fit_on`` (default: ``tracks_`` itself), all layers stacked. Distances
    within the plane of ``fit_on`` are kept exactly.

    >>> points = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> bool(np.isclose(np.linalg.norm(np.diff(pca_2d(points)[:2], axis=0)), 2.0))
    True
    """
    points = _points(tracks_ if fit_on is None else fit_on, "fit_on")
    if points.ndim < 2 or points.shape[-1] < 2:
        raise ValueError(f"tracks must have shape (..., d) with d >= 2, got {points.shape}.")
    points = points.reshape(-1, points.shape[-1])
    mean = points.mean(0)
    _, _, vt = np.linalg.svd(points - mean, full_matrices=False)
    return (_points(tracks_, "tracks_") - mean) @ vt[:2].T


def fixed_basis_pca(
    snapshots: dict[str, ArrayLike | list], reference: str
) -> dict[str, np.ndarray]:
    """Every snapshot's tracks (n+1, m, d) projected to 2-D on ONE basis: :func:`pca_2d` fitted to
    the ``reference`` snapshot, ``P_ref(x) = (x - mean_ref) V_ref``. A common basis keeps epochs
    comparable, where refitting at each epoch can flip or rotate the picture.

    >>> tracks_ = np.random.default_rng(0).normal(size=(3, 5, 4))
    >>> pictures = fixed_basis_pca({"1": tracks_ + 1.0, "2": tracks_}, reference="2")
    >>> bool(np.allclose(pictures["2"], pca_2d(tracks_)))
    True
    """
    if reference not in snapshots:
        raise ValueError(f"reference {reference!r} is not a snapshot; have {sorted(snapshots)}.")
    return {epoch: pca_2d(track, fit_on=snapshots[reference]) for epoch, track in snapshots.items()}


def align_2d(points: ArrayLike, reference: ArrayLike) -> np.ndarray:
    """``points @ R`` with ``R`` the 2x2 orthogonal map that brings the centred ``points`` closest
    to the centred ``reference``, by orthogonal Procrustes
    (:func:`scipy.linalg.orthogonal_procrustes`):

    .. math::

        R = \\arg\\min_{R^\\top R = I} \\|(A - \\bar A) R - (B - \\bar B)\\|_F = U V^\\top,

        U S V^\\top = (A - \\bar A)^\\top (B - \\bar B).

    Used for 2-D pictures whose PCA axes were refitted at each epoch: it removes the sign flips and
    rotations of the axes, not the change of the plane itself. ``points`` and ``reference`` have
    shape (..., 2).

    >>> square = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -2.0]])
    >>> flipped = square * np.array([1.0, -1.0])
    >>> bool(np.allclose(align_2d(flipped, square), square))
    True
    """
    a, b = _points(points, "points"), _points(reference, "reference")
    if a.shape != b.shape or a.shape[-1] != 2:
        raise ValueError(
            f"points and reference must have the same shape (..., 2), got {a.shape} and {b.shape}."
        )
    fa, fb = a.reshape(-1, 2), b.reshape(-1, 2)
    rotation, _ = orthogonal_procrustes(fa - fa.mean(0), fb - fb.mean(0))
    return a @ rotation


def segment_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``min_{t in [0, 1]} |(1 - t) a + t b|`` row by row: the distance of the origin from the
    segment ``[a, b]``, the track distance of two straight tracks whose difference runs from ``a``
    to ``b``. The minimiser is ``t* = clip(-<a, b - a> / |b - a|^2, 0, 1)``.

    >>> segment_distance(np.array([[-1.0, 1.0]]), np.array([[1.0, 1.0]]))
    array([1.])
    """
    step = b - a
    t = np.clip(-(a * step).sum(-1) / np.maximum((step * step).sum(-1), 1e-300), 0, 1)
    return np.linalg.norm(a + t[:, None] * step, axis=-1)


def bound_check(track1: ArrayLike, track2: ArrayLike, seed: int = 0) -> dict[str, float | int]:
    """Gai & Zhang's track-distance bound on m pairs of tracks (n+1, m, d), with two controls that
    can fail.

    With ``a = x1(0) - x2(0)``, ``b = x1(n) - x2(n)`` and ``B = |a||b| / sqrt(|a|^2 + |b|^2)``
    (:func:`track_lower_bound`), the fraction of pairs for which

    * ``network``: ``min_l |x1(l) - x2(l)| >= B``. Weak on its own: the layers 0 and n already
      give a distance ``<= min(|a|, |b|)``, and ``B >= min(|a|, |b|) / sqrt 2``;
    * ``monotone``: ``<a, b> >= 0``, the theorem's premise (true for an optimal map);
    * ``straight``: the geodesic model, straight segments between the network's own end points,
      ``min_t |(1 - t) a + t b| >= B`` (:func:`segment_distance`; holds exactly when the premise
      does);
    * ``shuffled`` (control): the same with the end points of a random permutation (``seed``) of
      the inputs, a map that ignores its input; the bound must fail for a sizeable fraction,
      showing the check can fail;

    and ``median_ratio``, the median of ``d / B`` over the pairs with ``B > 0``.

    >>> x = np.random.default_rng(0).normal(size=(40, 2))
    >>> straight = np.stack([(1 - t) * x + t * 3 * x for t in np.linspace(0, 1, 5)])
    >>> check = bound_check(straight[:, :20], straight[:, 20:])
    >>> check["network"], check["monotone"], check["straight"]
    (1.0, 1.0, 1.0)
    """
    t1, t2 = _points(track1, "track1"), _points(track2, "track2")
    if t1.shape != t2.shape or t1.ndim != 3:
        raise ValueError(
            f"track1 and track2 must both have shape (n+1, m, d), got {t1.shape} and {t2.shape}."
        )
    a, b = t1[0] - t2[0], t1[-1] - t2[-1]
    bound = track_lower_bound(t1[0], t2[0], t1[-1], t2[-1])
    perm = np.random.default_rng(seed).permutation(t1.shape[1])
    b_shuffled = t1[-1][perm] - t2[-1][perm]
    bound_shuffled = track_lower_bound(t1[0], t2[0], t1[-1][perm], t2[-1][perm])
    distance = track_distance(t1, t2)
    positive = bound > 0
    ratios = distance[positive] / bound[positive]
    return {
        "pairs": int(t1.shape[1]),
        "network": float(np.mean(distance >= bound)),
        "monotone": float(np.mean((a * b).sum(-1) >= 0)),
        "straight": float(np.mean(segment_distance(a, b) >= bound * (1 - 1e-9))),
        "shuffled": float(np.mean(segment_distance(a, b_shuffled) >= bound_shuffled * (1 - 1e-9))),
        "median_ratio": float(np.median(ratios)) if positive.any() else float("nan"),
    }
