"""Evaluation records: what chapters 4, 6 and 10 measure on a shipped network, measured once under
the papers' full protocol and stored beside the checkpoint.

A record ``<name>.eval.json`` sits beside checkpoint ``<name>`` (see :mod:`dyndl_lite.pretrained`).
It is keyed by

* the SHA-256 of the checkpoint's weights file, and
* a :class:`Protocol` (name and integer version) saying what is measured and how,
* the data it was measured on (name, image count, SHA-256 of the images and labels),

and holds **cells** and **scalars**. A cell is one accuracy (``clean``, ``gaussian-50``,
``fgsm-0.3``, ``pgd-0.2``, ...) on the first ``n`` test images: the count ``k`` of images
classified correctly, ``value = k / n``, and the per-image outcomes as a bitmap (``numpy.packbits``,
base64; bit ``i`` is test image ``i``), whose popcount must equal ``k``. A scalar is a number
that is not a count of images (mean LSS, OTS, a solver's error or NFE), with its sample size.
Beside them: the command, UTC date, device, CPU model, torch threads, seconds, package version and
git commit. ``digest`` is the SHA-256 of the canonical JSON of everything else: it catches an
edited number (it is a checksum against accidents, not a signature).

Reading a record (:func:`load`) checks, in order: the digest, every cell's bitmap against its
count, then staleness: a record whose weights SHA-256 or protocol version differs from the
checkpoint's or the code's raises :class:`StaleRecordError`, which names ``make evaluate`` and
``python -m dyndl_lite evaluate NAME``.

A chapter that shows a record re-measures part of it live with :func:`spot_check`: a seeded sample
of cells on a seeded random subset of images, compared image by image with the bitmap, failing when
the live count leaves the record's binomial tolerance (:func:`tolerance`).

Example::

    >>> from dyndl_lite import records
    >>> record = records.load("yan-odenet-gaussian-seed0")        # doctest: +SKIP
    >>> print(records.describe(record))                           # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime
import hashlib
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from dyndl_lite import atomic, attacks, pretrained
from dyndl_lite.config import flush_denormals
from dyndl_lite.data import ImageData, load_mnist
from dyndl_lite.models.blocks import evaluation_mode
from dyndl_lite.train import count_correct, ode_blocks

FORMAT = 1  # layout of the JSON file (not the protocol's version)
SUFFIX = ".eval.json"
REFRESH = "make evaluate"
#: Standard deviations of the binomial tolerance of :func:`spot_check`.
SIGMAS = 4.0


class RecordError(pretrained.CheckpointError):
    """An evaluation record is missing, malformed or edited by hand: re-measure it."""


class StaleRecordError(RecordError):
    """An evaluation record describes other weights or an older protocol than the code's."""


class SpotCheckError(AssertionError):
    """A number re-measured live lies outside the record's binomial tolerance."""


def command_for(name: str) -> str:
    """The exact command that (re)writes the record of checkpoint ``name``."""
    return f"python -m dyndl_lite evaluate {name}"


def _remedy(name: str) -> str:
    return f"Run `{REFRESH}` (all shipped checkpoints) or `{command_for(name)}`."


# --------------------------------------------------------------------------- cells


@dataclasses.dataclass(frozen=True)
class Cell:
    """An accuracy on the first ``n`` images: ``outcomes[i]`` says whether image ``i`` was
    classified correctly; ``k = sum(outcomes)``, ``value = k / n``."""

    outcomes: np.ndarray  # bool, shape (n,)

    @property
    def n(self) -> int:
        return int(len(self.outcomes))

    @property
    def k(self) -> int:
        return int(np.count_nonzero(self.outcomes))

    @property
    def value(self) -> float:
        return self.k / self.n

    def to_json(self) -> dict:
        bits = np.packbits(np.asarray(self.outcomes, dtype=bool))
        return {
            "n": self.n,
            "k": self.k,
            "value": self.value,
            "outcomes": base64.b64encode(bits.tobytes()).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: dict, where: str) -> Cell:
        """The cell of ``data``, after checking that its bitmap holds ``n`` bits of which ``k`` are
        set and that ``value = k / n``; ``where`` names it in the error."""
        try:
            n, k, value = data["n"], data["k"], data["value"]
            bits = np.frombuffer(base64.b64decode(data["outcomes"], validate=True), np.uint8)
        except (KeyError, TypeError, ValueError) as error:
            raise RecordError(f"{where} is malformed ({error!r}).") from error
        if not (isinstance(n, int) and isinstance(k, int) and 1 <= n and 0 <= k <= n):
            raise RecordError(f"{where}: need integers 0 <= k <= n, n >= 1; got n={n!r}, k={k!r}.")
        if len(bits) != math.ceil(n / 8):
            raise RecordError(f"{where}: the bitmap holds {8 * len(bits)} bits for n={n} images.")
        outcomes = np.unpackbits(bits, count=len(bits) * 8).astype(bool)
        if outcomes[n:].any():
            raise RecordError(f"{where}: the bitmap has bits set past image n={n}.")
        cell = cls(outcomes[:n])
        if cell.k != k:
            raise RecordError(f"{where}: the bitmap counts {cell.k} correct images, k says {k}.")
        if value != k / n:
            raise RecordError(f"{where}: value {value!r} is not k / n = {k}/{n}.")
        return cell


def outcomes(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> Tensor:
    """Per image ``[argmax_j f(x_i)_j = y_i]`` as a bool tensor on the CPU: the per-image form of
    :func:`dyndl_lite.train.count_correct` (eval mode, ``torch.inference_mode``, batches, denormals
    flushed), on the device of ``model``. Non-finite logits are an error, not a wrong class."""
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


# --------------------------------------------------------------------------- protocols

#: ``measure(model, images, labels, index, cells) -> {cell: outcomes}``: the outcomes of the named
#: cells on ``images`` (test images number ``index``), a bool array per cell aligned with ``index``.
Measure = Callable[[nn.Module, Tensor, Tensor, np.ndarray, Sequence[str]], dict[str, np.ndarray]]
#: ``scalars(model, data, cells) -> {name: {"value", "n", ...}}`` (may cross-check ``cells``).
Scalars = Callable[[nn.Module, ImageData, dict[str, Cell]], dict[str, dict]]


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


def _chunks(n: int, size: int) -> Iterable[slice]:
    return (slice(i, min(i + size, n)) for i in range(0, n, size))


def _parse(cell: str) -> tuple[str, float | None]:
    """``"fgsm-0.3"`` -> ``("fgsm", 0.3)``, ``"clean"`` -> ``("clean", None)``."""
    kind, _, strength = cell.partition("-")
    return kind, float(strength) if strength else None


# Yan et al. (chapter 6) ------------------------------------------------------------------------


def _yan_columns() -> list[tuple[str, float]]:
    """Every MNIST column of Yan et al.'s Tables 1 and 2, once each, in the tables' order."""
    from dyndl_lite.experiments import yan

    seen: dict[tuple[str, float], None] = {}
    for table in (1, 2):
        for column in yan.COLUMNS[("mnist", table)]:
            seen.setdefault(column)
    return sorted(seen, key=lambda c: (("gaussian", "fgsm", "pgd").index(c[0]), c[1]))


def _yan_cells(model: nn.Module) -> dict[str, int | None]:
    from dyndl_lite.experiments import yan

    limits = {"pgd": yan.PGD_IMAGES["full"]}
    return {"clean": None} | {f"{k}-{s:g}": limits.get(k) for k, s in _yan_columns()}


def noise_seed(index: int) -> int:
    """The seed of test image ``index``'s Gaussian noise ``N(0, I)`` (scaled by each sigma): one
    draw per image, the same for every sigma and every network (paired comparisons), reproducible
    for any subset of images."""
    from dyndl_lite.experiments import yan

    return yan.NOISE_SEED * 1_000_003 + int(index)


def _yan_measure(
    model: nn.Module, images: Tensor, labels: Tensor, index: np.ndarray, cells: Sequence[str]
) -> dict[str, np.ndarray]:
    """Yan et al.'s columns (:mod:`dyndl_lite.attacks`): Gaussian noise per image from
    :func:`noise_seed` (sigma on 0-255), cross-entropy FGSM (one gradient for every eps), PGD of
    ``yan.PGD_STEPS`` steps of ``eps / 5`` from the clean image."""
    from dyndl_lite.experiments import yan

    wanted = [(c, *_parse(c)) for c in cells]
    fgsm = [(c, s) for c, k, s in wanted if k == "fgsm"]
    found: dict[str, list[Tensor]] = {c: [] for c in cells}
    for part in _chunks(len(images), 250):
        x, y, where = images[part], labels[part], index[part]
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
                adversarial = attacks.pgd(
                    model, x, y, strength, step=strength / 5, steps=yan.PGD_STEPS
                )
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
        kind, tol = _parse(cell)
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


def _chen_scalars(model: nn.Module, data: ImageData, cells: dict[str, Cell]) -> dict[str, dict]:
    """The tolerance sweep's solver error and mean forward NFE (:func:`chen.tolerance_sweep`), whose
    test errors must equal the cells' counts."""
    from dyndl_lite.experiments import chen

    if not ode_blocks(model):
        return {}
    found = {}
    for row in chen.tolerance_sweep(model, data, CHEN_TOLERANCES):
        cell = cells[f"tol-{row['tol']:.0e}"]
        counted = round((1 - row["test_error_percent"] / 100) * len(data))
        if counted != cell.k:
            raise RuntimeError(
                f"chen.tolerance_sweep counts {counted} correct at tol {row['tol']:g}, "
                f"the per-image outcomes {cell.k}: the two evaluations disagree."
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


def _gai_scalars(model: nn.Module, data: ImageData, cells: dict[str, Cell]) -> dict[str, dict]:
    """Mean LSS (with its standard error and tracks left out) and exact OTS on
    ``min(m, len(data))`` images (``data.subset(m, seed=0)``) for each ``m`` of
    :func:`gai_ots_points`, by :func:`gai.evaluate_row`, whose accuracy must equal the clean
    cell's."""
    from dyndl_lite.experiments import gai

    found = {}
    for points in gai_ots_points():
        row = gai.evaluate_row(model, data, ots_points=points)
        counted = round(row["test_acc"] * len(data))
        if counted != cells["clean"].k:
            raise RuntimeError(
                f"gai.evaluate_row counts {counted} correct, the per-image outcomes "
                f"{cells['clean'].k}: the two evaluations disagree."
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


# --------------------------------------------------------------------------- records


@dataclasses.dataclass
class Record:
    """An evaluation record in memory (see the module's docstring for the fields)."""

    checkpoint: str
    key: dict
    cells: dict[str, Cell]
    scalars: dict[str, dict]
    meta: dict
    path: Path | None = None

    def payload(self) -> dict:
        """The JSON content without the digest, non-finite floats as ``null``."""
        return pretrained.json_safe(
            {
                "format": FORMAT,
                "checkpoint": self.checkpoint,
                "key": self.key,
                "cells": {name: cell.to_json() for name, cell in self.cells.items()},
                "scalars": self.scalars,
                "meta": self.meta,
            }
        )

    def to_text(self) -> str:
        payload = self.payload()
        return json.dumps({**payload, "digest": content_digest(payload)}, indent=1) + "\n"


def content_digest(payload: dict) -> str:
    """SHA-256 of ``payload`` as canonical JSON (sorted keys, no spaces, strict)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def record_path(name: str, folder: str | Path) -> Path:
    """``<folder>/<name>.eval.json``."""
    return Path(folder) / f"{pretrained.check_name(name)}{SUFFIX}"


def data_key(data: ImageData) -> dict:
    """The data a record was measured on: name, image count and SHA-256 of images and labels."""
    digest = hashlib.sha256()
    digest.update(data.images.detach().cpu().contiguous().numpy().tobytes())
    digest.update(data.labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    return {"data": data.name, "images": len(data), "data_sha256": digest.hexdigest()}


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _device_name(model: nn.Module) -> str:
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def measure(
    protocol: Protocol,
    model: nn.Module,
    data: ImageData,
    name: str,
    weights_sha256: str,
    command: str | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Record:
    """Measure every cell and scalar of ``protocol`` on ``model`` (checkpoint ``name`` with that
    weights hash) and ``data``; a record in memory, not yet written. The clean cell is checked
    against :func:`dyndl_lite.train.count_correct`."""
    from dyndl_lite import __version__

    start = time.perf_counter()
    limits = protocol.cells(model)
    cells: dict[str, Cell] = {}
    for limit in dict.fromkeys(limits.values()):
        group = [c for c, n in limits.items() if n == limit]
        count = len(data) if limit is None else min(limit, len(data))
        index = np.arange(count)
        tick = time.perf_counter()
        found = protocol.measure(model, data.images[:count], data.labels[:count], index, group)
        for cell in group:
            cells[cell] = Cell(np.asarray(found[cell], dtype=bool))
            say(f"{name}: {cell} {cells[cell].k:,}/{count:,}")
        say(f"{name}: {len(group)} cells on {count:,} images in {time.perf_counter() - tick:.0f} s")
    if "clean" in cells:
        first = next(iter(model.parameters()))
        counted = count_correct(model, data.images, data.labels, device=first.device)
        if counted != cells["clean"].k:
            raise RuntimeError(
                f"count_correct finds {counted} correct, the per-image outcomes "
                f"{cells['clean'].k}: the two evaluations disagree."
            )
    scalars = protocol.scalars(model, data, cells) if protocol.scalars else {}
    meta = {
        "command": command or command_for(name),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": _device_name(model),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - start, 1),
        "package_version": __version__,
        "torch_version": torch.__version__,
        "git_commit": pretrained._git_commit(),
    }
    key = {
        "weights_sha256": weights_sha256,
        "protocol": protocol.name,
        "protocol_version": protocol.version,
        **data_key(data),
    }
    return Record(name, key, cells, scalars, meta)


def write(record: Record, folder: str | Path, overwrite: bool = False) -> Path:
    """Write ``record`` atomically as ``<folder>/<checkpoint>.eval.json``; an existing file is an
    error unless ``overwrite``."""
    path = record_path(record.checkpoint, folder)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} exists; `{command_for(record.checkpoint)} --force` re-measures it."
        )
    atomic.write_text(path, record.to_text())
    record.path = path
    return path


def read(path: str | Path) -> Record:
    """The record in ``path`` after checking its digest and every cell's bitmap (not staleness:
    see :func:`load`)."""
    path = Path(path)
    name = path.name.removesuffix(SUFFIX)
    if not path.is_file():
        raise RecordError(f"{name} has no evaluation record {path}. {_remedy(name)}")
    try:
        data = json.loads(path.read_text())
        digest = data.pop("digest")
        payload = {k: data[k] for k in ("format", "checkpoint", "key", "cells", "scalars", "meta")}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, KeyError) as error:
        raise RecordError(
            f"{path} is not an evaluation record ({error!r}). {_remedy(name)}"
        ) from error
    if set(data) != set(payload) or content_digest(payload) != digest:
        raise RecordError(
            f"{path} does not match its digest: a number in it was changed after it was measured. "
            f"{_remedy(name)}"
        )
    if payload["format"] != FORMAT or payload["checkpoint"] != name:
        raise RecordError(f"{path}: format or checkpoint name is not this code's. {_remedy(name)}")
    cells = {c: Cell.from_json(v, f"{path}, cell {c!r}") for c, v in payload["cells"].items()}
    return Record(name, payload["key"], cells, payload["scalars"], payload["meta"], path)


def load(name: str, folder: str | Path | None = None) -> Record:
    """The valid, current record of checkpoint ``name`` (``folder`` defaults to the one
    :func:`pretrained.locate` finds): :func:`read`, then :class:`StaleRecordError` unless it is
    keyed by the checkpoint's weights SHA-256 and the current version of its protocol."""
    folder = pretrained.locate(name) if folder is None else Path(folder)
    record = read(record_path(name, folder))
    checkpoint = pretrained.load_record(name, folder)
    weights = pretrained.paths(name, folder)[0]
    protocol = protocol_for(checkpoint.get("experiment", ""))
    key = record.key
    if key.get("weights_sha256") != pretrained.sha256(weights):
        raise StaleRecordError(
            f"The evaluation record {record.path} was measured on other weights than {weights} "
            f"(SHA-256 {str(key.get('weights_sha256'))[:12]}...). {_remedy(name)}"
        )
    if (key.get("protocol"), key.get("protocol_version")) != (protocol.name, protocol.version):
        raise StaleRecordError(
            f"The evaluation record {record.path} follows protocol {key.get('protocol')} "
            f"v{key.get('protocol_version')}; the code's is {protocol.name} v{protocol.version}. "
            f"{_remedy(name)}"
        )
    return record


def status(name: str, folder: str | Path) -> str:
    """``"current"``, or why the record of ``name`` in ``folder`` must be (re)measured."""
    try:
        load(name, folder)
    except StaleRecordError:
        return "stale"
    except RecordError as error:
        return "missing" if not record_path(name, folder).exists() else f"invalid ({error})"
    return "current"


def describe(record: Record) -> str:
    """One line for a chapter: protocol, when, on what, how long."""
    meta, key = record.meta, record.key
    threads = meta.get("threads")
    return (
        f"{record.checkpoint}: evaluation record, protocol {key['protocol']} "
        f"v{key['protocol_version']} on {key['images']:,} images of {key['data']}, measured "
        f"{meta['date']} on {meta['device']} ({meta['cpu']}, {threads} thread"
        f"{'' if threads == 1 else 's'}) in {meta['seconds']:.0f} s"
    )


# --------------------------------------------------------------------------- evaluate


def load_checkpoint(
    name: str, folder: str | Path | None = None, device: str | None = None
) -> tuple[nn.Module, dict]:
    """Checkpoint ``name``'s network (built from its record's experiment and model, weights checked
    by SHA-256) in eval mode on ``device`` (default :func:`~dyndl_lite.config.get_device`), and its
    record."""
    from dyndl_lite import experiments
    from dyndl_lite.config import get_device

    folder = pretrained.locate(name) if folder is None else Path(folder)
    checkpoint = pretrained.load_record(name, folder)
    experiment = experiments.get(checkpoint.get("experiment", "?"))
    net = experiment.build(checkpoint["model"])
    record = pretrained.load(
        net, name, folder, expect={"experiment": experiment.name, "model": checkpoint["model"]}
    )
    return net.to(get_device(device)).eval(), record


def official_test_data() -> ImageData:
    """Official MNIST test (never the offline fallback): what records are measured on."""
    return load_mnist("test", allow_fallback=False)


def evaluate(
    name: str,
    folder: str | Path | None = None,
    data: ImageData | None = None,
    force: bool = False,
    device: str | None = None,
    command: str | None = None,
    say: Callable[[str], None] = print,
) -> Path | None:
    """Measure checkpoint ``name`` under its protocol and write its record beside it, unless a
    current record is there (then ``None``; ``force`` re-measures). ``data`` defaults to
    :func:`official_test_data`. Returns the record's path."""
    folder = pretrained.locate(name) if folder is None else Path(folder)
    state = status(name, folder)
    if state == "current" and not force:
        say(f"{name}: record current ({record_path(name, folder)}); --force re-measures it")
        return None
    net, checkpoint = load_checkpoint(name, folder, device)
    protocol = protocol_for(checkpoint["experiment"])
    data = official_test_data() if data is None else data
    say(f"{name}: record {state}; measuring protocol {protocol.name} v{protocol.version}")
    record = measure(
        protocol, net, data, name, checkpoint["weights_sha256"], command=command, say=say
    )
    path = write(record, folder, overwrite=True)
    say(f"{name}: wrote {path} ({record.meta['seconds']:.0f} s)")
    return path


def shipped_names() -> list[str]:
    """Every checkpoint shipped with the package."""
    return sorted(p.stem for p in pretrained.SHIPPED_DIR.glob("*.safetensors"))


def stale(names: Iterable[str], folder: str | Path) -> list[str]:
    """The names among ``names`` whose record in ``folder`` is not current."""
    return [name for name in names if status(name, folder) != "current"]


# --------------------------------------------------------------------------- spot check


def tolerance(n: int, rate: float, sigmas: float = SIGMAS) -> float:
    """Half-width of the acceptance band of a live count on ``n`` images around the record's count
    on the same images: ``sigmas * sqrt(n p (1 - p))``, ``p`` the cell's rate smoothed
    by Laplace's rule ``(k + 1) / (N + 2)`` so that a cell at 0 % or 100 % still allows a flip
    of numerical noise on a few hundred images. A live count ``c`` passes when
    ``|c - recorded| <= tolerance``."""
    return sigmas * math.sqrt(n * rate * (1 - rate))


def _rate(cell: Cell) -> float:
    return (cell.k + 1) / (cell.n + 2)


def spot_check(
    record: Record,
    model: nn.Module,
    data: ImageData,
    cells: int | Sequence[str] | None = 3,
    images: int | None = 300,
    pgd_images: int = 50,
    seed: int = 0,
) -> str:
    """Re-measure a sample of ``record``'s cells live and compare with the record image by image.

    ``cells``: how many cells to draw (seeded), or their names, or ``None`` for all. Each cell is
    re-measured on ``images`` test images (``pgd_images`` for PGD) drawn without replacement from
    the cell's images with ``seed`` (``None``: all of them). Raises :class:`SpotCheckError` when a
    live count lies outside :func:`tolerance` of the record's count on the same images, and
    :class:`RecordError` when ``data`` is not the data the record was measured on. Returns one line:
    seed, and per cell the live and recorded counts and the per-image agreement.
    """
    key = data_key(data.to("cpu") if data.images.device.type != "cpu" else data)
    if {k: key[k] for k in ("images", "data_sha256")} != {
        k: record.key.get(k) for k in ("images", "data_sha256")
    }:
        raise RecordError(
            f"The record of {record.checkpoint} was measured on {record.key.get('data')} "
            f"({record.key.get('images')} images), "
            f"not on these {len(data):,} images of {data.name}."
        )
    protocol = PROTOCOLS[record.key["protocol"]]
    rng = np.random.default_rng(seed)
    names = list(record.cells)
    if cells is None:
        chosen = names
    elif isinstance(cells, int):
        chosen = sorted(rng.choice(names, size=min(cells, len(names)), replace=False).tolist())
    else:
        chosen = list(cells)
        unknown = [c for c in chosen if c not in record.cells]
        if unknown:
            raise ValueError(f"cells {unknown} are not in the record; it has {names}.")
    first = next(iter(model.parameters()))
    parts, failures = [], []
    for name in chosen:
        cell = record.cells[name]
        wanted = pgd_images if _parse(name)[0] == "pgd" else images
        size = cell.n if wanted is None else min(wanted, cell.n)
        index = np.sort(rng.choice(cell.n, size=size, replace=False))
        selected = torch.as_tensor(index)
        found = protocol.measure(
            model,
            data.images[selected].to(first.device),
            data.labels[selected].to(first.device),
            index,
            [name],
        )
        live = np.asarray(found[name], dtype=bool)
        recorded = cell.outcomes[index]
        live_k, recorded_k = int(live.sum()), int(recorded.sum())
        agree = int((live == recorded).sum())
        band = tolerance(size, _rate(cell))
        parts.append(f"{name} {live_k}/{size} live vs {recorded_k} recorded ({agree} agree)")
        if abs(live_k - recorded_k) > band:
            failures.append(f"{name}: {live_k} vs {recorded_k} (tolerance ±{band:.1f})")
    line = (
        f"spot check of {record.checkpoint} (seed {seed}, {len(chosen)} of {len(names)} cells): "
        + "; ".join(parts)
    )
    if failures:
        raise SpotCheckError(
            f"{line}. Outside the record's {SIGMAS:g}-sigma binomial tolerance: "
            f"{'; '.join(failures)}. The network or the code changed since the record was "
            f"measured; re-measure with `{command_for(record.checkpoint)} --force`."
        )
    return line + f": all within {SIGMAS:g} sigma"


# --------------------------------------------------------------------------- command line


def add_evaluate_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``python -m dyndl_lite evaluate NAME | --all-stale [--force] [--threads N]``."""
    parser = commands.add_parser(
        "evaluate",
        help="measure a checkpoint under its paper's full protocol and write its evaluation record",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="checkpoint name, e.g. yan-odenet-seed0")
    which.add_argument(
        "--all-stale",
        action="store_true",
        help="every shipped checkpoint whose record is missing, stale or invalid",
    )
    parser.add_argument(
        "--force", action="store_true", help="re-measure even when the record is current"
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=_positive, default=None, help="torch CPU threads")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--threads must be at least 1, got {value}")
    return value


def run_evaluate(args: argparse.Namespace, data: ImageData | None = None) -> int:
    """The ``evaluate`` command: one checkpoint, or every stale shipped one; exit status 0."""
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python -m dyndl_lite " + " ".join(sys.argv[1:]) if sys.argv[1:] else None
    if args.all_stale:
        names = stale(shipped_names(), pretrained.SHIPPED_DIR)
        print(f"{len(names)} of {len(shipped_names())} shipped records to (re)measure")
        folder: Path | None = pretrained.SHIPPED_DIR
    else:
        names, folder = [args.name], None
    data = official_test_data() if data is None and names else data
    for name in names:
        evaluate(name, folder, data, force=args.force, device=args.device, command=command)
    return 0
