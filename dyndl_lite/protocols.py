"""Evaluation protocols: what an evaluation record (:mod:`dyndl_lite.records`) measures on a
network of chapters 4, 6 and 10, and how, with the package's own attacks and evaluations.

A :class:`Protocol` names its **cells** (accuracies on the first ``n`` test images, each kept as
per-image outcomes ``[argmax_j f(x_i)_j = y_i]``) and its **scalars** (numbers that are not counts
of images). ``measure`` computes the outcomes of any cells on any subset of test images, so a
record can be re-measured image by image. Bump a protocol's ``version`` whenever a number it
produces would change: every record of the older version becomes stale.

* :data:`YAN` (chapter 6, Yan et al. 2020, Tables 1-2): clean; Gaussian noise sigma 50/75/100 on
  the 0-255 scale, one draw per image (:func:`noise_seed`); cross-entropy FGSM eps 0.15/0.3/0.5
  on all 10,000 test images; PGD eps 0.2/0.3 (10 steps of eps/5 from the clean image) on the
  first 1,000.
* :data:`CHEN` (chapter 4, Chen et al. 2018, Table 1): test accuracy; for an ODE-Net also at the
  evaluation tolerances of Fig. 3a, with the solver's error and forward NFE.
* :data:`GAI` (chapter 10, Gai & Zhang 2021): test accuracy; mean LSS and exact OTS on 2,000 and
  10,000 images.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dyndl_lite import attacks
from dyndl_lite.config import flush_denormals
from dyndl_lite.data import ImageData
from dyndl_lite.models.blocks import evaluation_mode
from dyndl_lite.train import ode_blocks


def outcomes(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> Tensor:
    """Per image ``[argmax_j f(x_i)_j = y_i]`` as a bool tensor on the CPU: the per-image form of
    :func:`dyndl_lite.accuracy.count_correct` (eval mode, ``torch.inference_mode``, batches,
    denormals flushed), on the device of ``model``. Non-finite logits are an error, not a wrong
    class."""
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    parts = []
    with evaluation_mode(model), torch.inference_mode(), flush_denormals():
        for start in range(0, len(images), batch_size):
            logits = model(images[start : start + batch_size].to(device))
            if not torch.isfinite(logits).all():
                raise FloatingPointError(
                    "the model's logits are NaN or Inf; its outcomes cannot be recorded."
                )
            parts.append(logits.argmax(1).cpu() == labels[start : start + batch_size].cpu())
    return torch.cat(parts)


#: ``measure(model, images, labels, index, cells) -> {cell: outcomes}``: the outcomes of the named
#: cells on ``images`` (test images number ``index``), a bool array per cell aligned with ``index``.
Measure = Callable[[nn.Module, Tensor, Tensor, np.ndarray, Sequence[str]], dict[str, np.ndarray]]
#: ``scalars(model, data, correct) -> {name: {"value", "n", ...}}``, ``correct`` the cells' counts
#: of correctly classified images (to cross-check against).
Scalars = Callable[[nn.Module, ImageData, dict[str, int]], dict[str, dict]]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """What a record measures: ``cells(model) -> {cell: image limit}`` (a cell uses the first
    ``min(limit, len(data))`` images, all of them when the limit is ``None``), ``measure`` computing
    their per-image outcomes on any subset, and optional ``scalars``. Change ``version`` whenever a
    number it produces would change: every record of the older version becomes stale."""

    name: str
    version: int
    description: str
    cells: Callable[[nn.Module], dict[str, int | None]]
    measure: Measure
    scalars: Scalars | None = None


def chunks(n: int, size: int) -> Iterable[slice]:
    return (slice(i, min(i + size, n)) for i in range(0, n, size))


def cell_name(kind: str, strength: float) -> str:
    """The name of a perturbed cell: ``fgsm-0.3``, ``gaussian-100`` (:func:`parse_cell` reads it
    back)."""
    return f"{kind}-{strength:g}"


def parse_cell(cell: str) -> tuple[str, float | None]:
    """``"fgsm-0.3"`` -> ``("fgsm", 0.3)``, ``"clean"`` -> ``("clean", None)``."""
    kind, _, strength = cell.partition("-")
    return kind, float(strength) if strength else None


# Yan et al. (chapter 6) ------------------------------------------------------------------------


def yan_columns() -> list[tuple[str, float]]:
    """Every MNIST column of Yan et al.'s Tables 1 and 2, once each, in the tables' order."""
    from dyndl_lite.experiments.yan_paper import COLUMNS

    seen: dict[tuple[str, float], None] = {}
    for table in (1, 2):
        for column in COLUMNS[("mnist", table)]:
            seen.setdefault(column)
    return sorted(seen, key=lambda c: (("gaussian", "fgsm", "pgd").index(c[0]), c[1]))


def _yan_cells(model: nn.Module) -> dict[str, int | None]:
    from dyndl_lite.experiments import yan

    limits = {"pgd": yan.PGD_IMAGES["full"]}
    return {"clean": None} | {cell_name(k, s): limits.get(k) for k, s in yan_columns()}


#: The Yan protocol's noise seed: one fixed draw per image, shared by every model (paired).
NOISE_SEED = 0


def noise_seed(index: int) -> int:
    """The seed of test image ``index``'s Gaussian noise ``N(0, I)`` (scaled by each sigma): one
    draw per image, the same for every sigma and every network (paired comparisons), reproducible
    for any subset of images."""
    return NOISE_SEED * 1_000_003 + int(index)


def _yan_measure(
    model: nn.Module, images: Tensor, labels: Tensor, index: np.ndarray, cells: Sequence[str]
) -> dict[str, np.ndarray]:
    """Yan et al.'s columns (:mod:`dyndl_lite.attacks`): Gaussian noise per image from
    :func:`noise_seed` (sigma on 0-255), cross-entropy FGSM (one gradient for every eps), PGD of
    ``yan_paper.PGD_STEPS`` steps of ``eps / 5`` from the clean image."""
    from dyndl_lite.experiments.yan_paper import PGD_STEPS

    wanted = [(c, *parse_cell(c)) for c in cells]
    fgsm = [(c, s) for c, k, s in wanted if k == "fgsm"]
    found: dict[str, list[Tensor]] = {c: [] for c in cells}
    device = next(model.parameters()).device
    for part in chunks(len(images), 250):
        x, y, where = images[part].to(device), labels[part].to(device), index[part]
        for cell, kind, strength in wanted:
            if kind == "clean":
                found[cell].append(outcomes(model, x, y))
            elif kind == "gaussian":
                noisy = torch.stack(
                    [
                        attacks.gaussian(
                            x[j], strength, generator=torch.Generator().manual_seed(noise_seed(i))
                        )
                        for j, i in enumerate(where)
                    ]
                )
                found[cell].append(outcomes(model, noisy, y))
            elif kind == "pgd":
                adversarial = attacks.pgd(model, x, y, strength, step=strength / 5, steps=PGD_STEPS)
                found[cell].append(outcomes(model, adversarial, y))
            elif kind != "fgsm":
                raise ValueError(f"the Yan protocol has no cell {cell!r}.")
        if fgsm:
            sweep = attacks.fgsm_sweep(model, x, y, [s for _, s in fgsm])
            for (cell, _), adversarial in zip(fgsm, sweep, strict=True):
                found[cell].append(outcomes(model, adversarial, y))
    return {c: torch.cat(v).numpy() for c, v in found.items()}


# Chen et al. (chapter 4) -----------------------------------------------------------------------

CHEN_TOLERANCES = (1e-1, 1e-2, 1e-3, 1e-4)  # chapter 4's sweep, chen.tolerance_sweep's default


def _chen_cells(model: nn.Module) -> dict[str, int | None]:
    sweep = {f"tol-{t:.0e}": None for t in CHEN_TOLERANCES} if ode_blocks(model) else {}
    return {"clean": None} | sweep


def _accuracy_measure(
    model: nn.Module, images: Tensor, labels: Tensor, index: np.ndarray, cells: Sequence[str]
) -> dict[str, np.ndarray]:
    """Test accuracy; for an ODE-Net also at each evaluation tolerance ``rtol = atol = tol`` (the
    block's trained tolerances are restored afterwards), as :func:`chen.tolerance_sweep`."""
    found = {}
    for cell in cells:
        kind, tol = parse_cell(cell)
        if kind == "clean":
            found[cell] = outcomes(model, images, labels).numpy()
        elif kind == "tol":
            block = ode_blocks(model)[0]
            saved = (block.rtol, block.atol)
            try:
                block.rtol = block.atol = tol
                found[cell] = outcomes(model, images, labels).numpy()
            finally:
                block.rtol, block.atol = saved
        else:
            raise ValueError(f"the Chen protocol has no cell {cell!r}.")
    return found


def _chen_scalars(model: nn.Module, data: ImageData, correct: dict[str, int]) -> dict[str, dict]:
    """The tolerance sweep's solver error and mean forward NFE (:func:`chen.tolerance_sweep`), whose
    test errors must equal the cells' counts."""
    from dyndl_lite.experiments import chen

    if not ode_blocks(model):
        return {}
    found = {}
    for row in chen.tolerance_sweep(model, data, CHEN_TOLERANCES):
        cell = f"tol-{row['tol']:.0e}"
        counted = round((1 - row["test_error_percent"] / 100) * len(data))
        if counted != correct[cell]:
            raise RuntimeError(
                f"chen.tolerance_sweep counts {counted} correct at tol {row['tol']:g}, "
                f"the per-image outcomes {correct[cell]}: the two evaluations disagree."
            )
        found[f"solver-error-{row['tol']:.0e}"] = {
            "value": row["solver_error"],
            "n": row["reference_images"],
            "reference_tol": row["reference_tol"],
        }
        found[f"nfe-forward-{row['tol']:.0e}"] = {"value": row["nfe_forward"], "n": len(data)}
    return found


# Gai & Zhang (chapter 10) ----------------------------------------------------------------------


def gai_ots_points() -> tuple[int, ...]:
    """Points of the LSS / OTS scalars: the chapter's quick count ``gai.OTS_POINTS`` and its full
    mode's 10,000 (OTS depends on the number of points)."""
    from dyndl_lite.experiments import gai

    return (gai.OTS_POINTS, 10_000)


def _gai_scalars(model: nn.Module, data: ImageData, correct: dict[str, int]) -> dict[str, dict]:
    """Mean LSS (with its standard error and tracks left out) and exact OTS on
    ``min(m, len(data))`` images (``data.subset(m, seed=0)``) for each ``m`` of
    :func:`gai_ots_points`, by :func:`gai.evaluate_row`, whose accuracy must equal the clean
    cell's."""
    from dyndl_lite.experiments import gai

    found = {}
    for points in gai_ots_points():
        row = gai.evaluate_row(model, data, ots_points=points)
        counted = round(row["test_acc"] * len(data))
        if counted != correct["clean"]:
            raise RuntimeError(
                f"gai.evaluate_row counts {counted} correct, the per-image outcomes "
                f"{correct['clean']}: the two evaluations disagree."
            )
        used = row["ots_points"]
        found[f"lss-{used}"] = {
            "value": row["lss"],
            "se": row["lss_se"],
            "left_out": row["lss_left_out"],
            "n": used,
        }
        found[f"ots-{used}"] = {"value": row["ots"], "n": used}
    return found


YAN = Protocol(
    "yan",
    1,
    "Yan et al. (2020) Tables 1-2 on MNIST test: clean, Gaussian sigma 50/75/100 (0-255 scale, one "
    "noise draw per image), cross-entropy FGSM eps 0.15/0.3/0.5 on all images; PGD eps 0.2/0.3 "
    "(10 steps of eps/5) on the first 1,000",
    _yan_cells,
    _yan_measure,
)
CHEN = Protocol(
    "chen",
    1,
    "Chen et al. (2018) Table 1 on MNIST test: accuracy on all images; ODE-Nets also at "
    "evaluation tolerances 1e-1..1e-4 with solver error and forward NFE",
    _chen_cells,
    _accuracy_measure,
    _chen_scalars,
)
GAI = Protocol(
    "gai",
    1,
    "Gai & Zhang (2021) on MNIST test: accuracy on all images; mean LSS and exact OTS on 2,000 and "
    "10,000 images",
    lambda model: {"clean": None},
    _accuracy_measure,
    _gai_scalars,
)
PROTOCOLS = {p.name: p for p in (YAN, CHEN, GAI)}


def protocol_for(experiment: str) -> Protocol:
    """The protocol of a checkpoint of ``experiment`` (its record's ``"experiment"``)."""
    name = "yan" if experiment.startswith("yan-") else experiment
    if name not in PROTOCOLS:
        raise ValueError(
            f"no evaluation protocol for experiment {experiment!r}; known: {sorted(PROTOCOLS)}."
        )
    return PROTOCOLS[name]
