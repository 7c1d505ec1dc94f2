"""How the book measures a row of Yan et al.'s tables: accuracy under every column's perturbation,
on images shared out among the seeds.

:func:`column_accuracies` is one network's row (Gaussian noise, FGSM, PGD as in
:mod:`~dyndl_lite.experiments.yan_paper`, with the book's cross-entropy attacks of
:mod:`dyndl_lite.attacks`); :func:`seed_images` says which test images each seed is evaluated on;
:func:`measure_rows` gives every model's per-seed accuracies with their mean and spread, the rows
of a :class:`~dyndl_lite.experiments.results.YanTable`; :func:`recorded_rows` reads the same rows
from the networks' evaluation records (:mod:`dyndl_lite.records`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from dyndl_lite import attacks
from dyndl_lite.experiments.yan_paper import PGD_STEPS
from dyndl_lite.models.blocks import evaluation_mode
from dyndl_lite.protocols import cell_name, chunks, noise_seed
from dyndl_lite.record_format import Record
from dyndl_lite.train import count_correct


def column_accuracies(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    columns: list[tuple[str, float]],
    pgd_images: int,
    chunk: int = 250,
) -> dict[tuple[str, float], float]:
    """Accuracy (in [0, 1]) under every column's perturbation.

    Gaussian: one fixed noise draw per chunk of images, scaled by each sigma (seeded by
    :func:`dyndl_lite.protocols.noise_seed` of the chunk's first image). FGSM: one input
    gradient serves every eps, since ``sign(grad_x L(x))`` does not depend on eps.
    PGD: :data:`PGD_STEPS` steps of ``eps / 5`` from the clean image, on the first
    ``pgd_images`` of ``x``.
    """
    fgsm_eps = sorted({s for k, s in columns if k == "fgsm"})
    counts = {c: 0 for c in columns}

    def correct(images: torch.Tensor, labels: torch.Tensor) -> int:
        return count_correct(model, images, labels, device=images.device)

    with evaluation_mode(model):
        for part in chunks(len(x), chunk):
            xb, yb = x[part], y[part]
            for kind, strength in columns:
                if kind == "gaussian":
                    g = torch.Generator().manual_seed(noise_seed(part.start))
                    counts[(kind, strength)] += correct(
                        attacks.gaussian(xb, strength, generator=g), yb
                    )
            if fgsm_eps:
                for eps, adv in zip(
                    fgsm_eps, attacks.fgsm_sweep(model, xb, yb, fgsm_eps), strict=True
                ):
                    counts[("fgsm", eps)] += correct(adv, yb)
            if part.start < pgd_images:
                stop = min(part.stop, pgd_images) - part.start
                for kind, strength in columns:
                    if kind == "pgd":
                        adv = attacks.pgd(
                            model,
                            xb[:stop],
                            yb[:stop],
                            strength,
                            step=strength / 5,
                            steps=PGD_STEPS,
                        )
                        counts[(kind, strength)] += correct(adv, yb[:stop])
    totals = {c: min(pgd_images, len(x)) if c[0] == "pgd" else len(x) for c in columns}
    return {c: counts[c] / totals[c] for c in columns}


def seed_images(
    images: int, pgd_images: int, seeds: int, shared: bool
) -> list[tuple[torch.Tensor, int]]:
    """Which of the first ``images`` test images each of ``seeds`` seeds is evaluated on.

    Returns, per seed, the indices (those PGD attacks first) and how many of them PGD attacks.
    Not ``shared``: every seed gets images ``0 .. images-1``, PGD the first ``pgd_images``.
    ``shared``: the images are cut into ``seeds`` contiguous near-equal parts, seed ``i`` taking
    part ``i`` of ``0 .. pgd_images-1`` (attacked by PGD) and part ``i`` of the rest, so that no
    image is used twice and the total work does not grow with the number of seeds.

    >>> [(idx.tolist(), p) for idx, p in seed_images(5, 3, 2, shared=True)]
    [([0, 1, 3], 2), ([2, 4], 1)]
    """
    if (
        not 0 <= pgd_images <= images
        or not 1 <= seeds <= images
        or (shared and 0 < pgd_images < seeds)
    ):
        raise ValueError(
            "need 0 <= pgd_images <= images, 1 <= seeds <= images, and, when shared, at least one "
            f"PGD image per seed; got images={images}, "
            f"pgd_images={pgd_images}, seeds={seeds}."
        )
    everything = torch.arange(images)
    if not shared:
        return [(everything, pgd_images)] * seeds
    attacked = torch.tensor_split(everything[:pgd_images], seeds)
    rest = torch.tensor_split(everything[pgd_images:], seeds)
    return [(torch.cat([a, r]), len(a)) for a, r in zip(attacked, rest, strict=True)]


def span(counts: Iterable[int]) -> str:
    """``"500"`` or ``"333-334"``: the range of ``counts``."""
    counts = list(counts)
    low, high = min(counts), max(counts)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def summarize(
    found: dict[str, dict[str, list]], columns: list[tuple[str, float]]
) -> dict[str, dict]:
    """The table's rows from each model's per-seed accuracies (``found[model]``: ``"seeds"``, one
    list of column accuracies per seed, ``"clean"`` and ``"seed_ids"``): those lists, and the mean
    and sample std over seeds of every column (zeros for one seed)."""
    rows = {}
    for model, per_seed in found.items():
        values = np.array(per_seed["seeds"])
        rows[model] = {
            "seeds": values.tolist(),
            "mean": values.mean(0).tolist(),
            "std": (values.std(0, ddof=1) if len(values) > 1 else np.zeros(len(columns))).tolist(),
            "clean": per_seed["clean"],
            "seed_ids": per_seed["seed_ids"],
        }
    return rows


def _add(found: dict, model: str, seed: int, accuracies: list[float], clean: float) -> None:
    per_seed = found.setdefault(model, {"seeds": [], "clean": [], "seed_ids": []})
    per_seed["seeds"].append(accuracies)
    per_seed["clean"].append(clean)
    per_seed["seed_ids"].append(seed)


def measure_rows(
    networks: Iterable[tuple[str, int, nn.Module]],
    x: torch.Tensor,
    y: torch.Tensor,
    columns: list[tuple[str, float]],
    shares: dict[int, tuple[torch.Tensor, int]],
) -> dict[str, dict]:
    """Per model: accuracies (%) of each ``(model, seed, network)`` under every column, their mean
    and sample std over seeds (:func:`summarize`), the clean accuracy on the same images, and
    ``seed_ids``, the seeds in the order of those lists (a model may lack some seeds).
    Seed ``s`` is evaluated on ``x[shares[s][0]]``, PGD on the first ``shares[s][1]`` of those
    (:func:`seed_images`); the networks of one seed share their images, so they stay paired."""
    found: dict[str, dict[str, list]] = {}
    for model, seed, net in networks:
        index, pgd_images = shares[seed]
        xs, ys = x[index], y[index]
        acc = column_accuracies(net, xs, ys, columns, pgd_images)
        clean = 100 * count_correct(net, xs, ys, device=xs.device) / len(xs)
        _add(found, model, seed, [100 * acc[c] for c in columns], clean)
    return summarize(found, columns)


def recorded_rows(
    recorded: dict[tuple[str, int], Record], columns: list[tuple[str, float]]
) -> dict[str, dict]:
    """The rows of :func:`measure_rows` read from evaluation records (``recorded[(model, seed)]``,
    :mod:`dyndl_lite.records`): accuracy ``100 k / n`` of each column's cell
    (:func:`dyndl_lite.protocols.cell_name`) on all the record's images, every seed on the same
    test images (the Yan protocol: all of them, PGD the first 1,000). Each row also keeps
    ``outcomes``: per seed (in ``seed_ids`` order), per column, the boolean per-image outcomes."""
    found: dict[str, dict[str, list]] = {}
    outcomes: dict[str, list[list[np.ndarray]]] = {}
    for (model, seed), record in recorded.items():
        cells = [record.cells[cell_name(kind, strength)] for kind, strength in columns]
        _add(found, model, seed, [100 * c.value for c in cells], 100 * record.cells["clean"].value)
        outcomes.setdefault(model, []).append([np.asarray(c.outcomes, dtype=bool) for c in cells])
    rows = summarize(found, columns)
    for model, per_seed in outcomes.items():
        rows[model]["outcomes"] = per_seed
    return rows
