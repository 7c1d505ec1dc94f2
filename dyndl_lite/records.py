"""Evaluation records: what chapters 4, 6 and 10 measure on a shipped network, measured once under
the papers' full protocol and stored beside the checkpoint.

A record ``<name>.eval.json`` sits beside checkpoint ``<name>`` (see :mod:`dyndl_lite.pretrained`).
It is keyed by

* the SHA-256 of the checkpoint's weights file, and
* a protocol (:mod:`dyndl_lite.protocols`: name and integer version) saying what is measured and
  how,
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
more images flip (live outcome differs from the recorded one) than floating-point noise allows
(:func:`flip_allowance`).

The file itself (cells as bitmaps, the digest, :func:`~dyndl_lite.record_format.read` and
:func:`~dyndl_lite.record_format.write`) is :mod:`dyndl_lite.record_format`; its names are
importable from here too, where the chapters, experiments and tests have always found them.

Example::

    >>> from dyndl_lite import records
    >>> record = records.load("yan-odenet-gaussian-seed0")        # doctest: +SKIP
    >>> print(records.describe(record))                           # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import special
from torch import nn

from dyndl_lite import pretrained, protocols
from dyndl_lite.accuracy import count_correct
from dyndl_lite.config import set_threads
from dyndl_lite.data import ImageData, load_mnist
from dyndl_lite.protocols import Protocol
from dyndl_lite.record_format import (
    Cell,
    Record,
    RecordError,
    StaleRecordError,
    command_for,
    data_key,
    read,
    record_path,
    remedy,
    write,
)
from dyndl_lite.record_format import content_digest as content_digest

#: Assumed largest per-image flip rate of :func:`spot_check` under "same network, same code": on
#: the same images only floating-point differences between CPUs, BLAS libraries and thread counts
#: can flip an image, and only one lying on a decision boundary. An assumption, not a measurement
#: of a law: every spot check of the last CI build showed 0 flips on 25-300 images per cell.
FLIP_RATE = 0.01
#: Family-wise level of one :func:`spot_check` call: the chance that a network and code that did
#: not change fail it, at most, when images flip independently at :data:`FLIP_RATE`.
SPOT_LEVEL = 0.001


class SpotCheckError(AssertionError):
    """A number re-measured live disagrees with its record by more than numerical noise allows."""


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
    against :func:`dyndl_lite.accuracy.count_correct`."""
    from dyndl_lite import __version__

    start = time.perf_counter()
    first = next(iter(model.parameters()))
    data = data.to(first.device)  # the scalars' functions evaluate on the data's device
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
        counted = count_correct(model, data.images, data.labels, device=first.device)
        if counted != cells["clean"].k:
            raise RuntimeError(
                f"count_correct finds {counted} correct, the per-image outcomes "
                f"{cells['clean'].k}: the two evaluations disagree."
            )
    scalars = (
        protocol.scalars(model, data, {c: v.k for c, v in cells.items()})
        if protocol.scalars
        else {}
    )
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


def load(name: str, folder: str | Path | None = None) -> Record:
    """The valid, current record of checkpoint ``name`` (``folder`` defaults to the one
    :func:`pretrained.locate` finds): :func:`read`, then :func:`require_current` against the
    checkpoint's weights SHA-256 and the current version of its protocol."""
    folder = pretrained.locate(name) if folder is None else Path(folder)
    record = read(record_path(name, folder))
    checkpoint = pretrained.load_record(name, folder)
    weights = pretrained.paths(name, folder)[0]
    protocol = protocols.protocol_for(checkpoint.get("experiment", ""))
    return require_current(record, pretrained.sha256(weights), protocol, remedy(name))


def require_current(record: Record, weights_sha256: str, protocol: Protocol, remedy: str) -> Record:
    """``record`` if it is keyed by ``weights_sha256`` and ``protocol``'s current version, else
    :class:`StaleRecordError` ending with ``remedy`` (how to re-measure it)."""
    key = record.key
    if key.get("weights_sha256") != weights_sha256:
        raise StaleRecordError(
            f"The evaluation record {record.path} was measured on other weights "
            f"(SHA-256 {str(key.get('weights_sha256'))[:12]}..., not {weights_sha256[:12]}...). "
            f"{remedy}"
        )
    if (key.get("protocol"), key.get("protocol_version")) != (protocol.name, protocol.version):
        raise StaleRecordError(
            f"The evaluation record {record.path} follows protocol {key.get('protocol')} "
            f"v{key.get('protocol_version')}; the code's is {protocol.name} v{protocol.version}. "
            f"{remedy}"
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
    protocol = protocols.protocol_for(checkpoint["experiment"])
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


def flip_allowance(
    n: int, cells: int = 1, rate: float = FLIP_RATE, level: float = SPOT_LEVEL
) -> int:
    """How many of ``n`` images may flip in one cell of a spot check that checks ``cells`` cells:
    the smallest ``a`` with ``P(Binomial(n, rate) > a) <= level / cells`` (Bonferroni over the
    cells, so that a whole call fails a network and code that did not change with probability at
    most ``level`` when each image flips independently with probability at most ``rate``).

    >>> flip_allowance(300), flip_allowance(25), flip_allowance(300, cells=9)
    (10, 3, 11)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer (a number of images), got {n!r}.")
    if isinstance(cells, bool) or not isinstance(cells, (int, np.integer)) or cells < 1:
        raise ValueError(f"cells must be a positive integer (cells checked), got {cells!r}.")
    if not 0 < rate < 1:
        raise ValueError(f"rate must lie in (0, 1), got {rate!r}.")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}.")
    beyond = special.bdtrc(np.arange(int(n) + 1), int(n), rate)  # P(X > a) for a = 0..n
    return int(np.argmax(beyond <= level / int(cells)))  # P(X > n) = 0: always found


def _require_same_data(record: Record, data: ImageData) -> None:
    """:class:`RecordError` unless ``data`` has the image count and SHA-256 the record was
    measured on."""
    key = data_key(data.to("cpu") if data.images.device.type != "cpu" else data)
    if {k: key[k] for k in ("images", "data_sha256")} != {
        k: record.key.get(k) for k in ("images", "data_sha256")
    }:
        raise RecordError(
            f"The record of {record.checkpoint} was measured on {record.key.get('data')} "
            f"({record.key.get('images')} images), "
            f"not on these {len(data):,} images of {data.name}."
        )


def _choose_cells(
    record: Record, cells: int | Sequence[str] | None, rng: np.random.Generator
) -> list[str]:
    """The cells to re-measure: all (``None``), ``cells`` of them drawn with ``rng`` (in the
    record's order), or the named ones (each must be in the record)."""
    names = list(record.cells)
    if cells is None:
        return names
    if isinstance(cells, int):
        return sorted(rng.choice(names, size=min(cells, len(names)), replace=False).tolist())
    chosen = list(cells)
    unknown = [c for c in chosen if c not in record.cells]
    if unknown:
        raise ValueError(f"cells {unknown} are not in the record; it has {names}.")
    return chosen


def _recheck_cell(
    protocol: Protocol,
    model: nn.Module,
    data: ImageData,
    name: str,
    cell: Cell,
    wanted: int | None,
    rng: np.random.Generator,
    cells: int,
) -> tuple[str, str | None]:
    """Re-measure cell ``name`` on ``wanted`` of its images (drawn with ``rng``; ``None``: all):
    one line of live and recorded counts, and the failure (``None`` when the images whose live
    outcome differs from the recorded one are at most :func:`flip_allowance` of them, for a call
    checking ``cells`` cells)."""
    size = cell.n if wanted is None else min(wanted, cell.n)
    index = np.sort(rng.choice(cell.n, size=size, replace=False))
    selected = torch.as_tensor(index)
    device = next(iter(model.parameters())).device
    images, labels = data.images[selected].to(device), data.labels[selected].to(device)
    live = np.asarray(protocol.measure(model, images, labels, index, [name])[name], dtype=bool)
    recorded = cell.outcomes[index]
    live_k, recorded_k = int(live.sum()), int(recorded.sum())
    agree = int((live == recorded).sum())
    flips, allowance = size - agree, flip_allowance(size, cells)
    line = f"{name} {live_k}/{size} live vs {recorded_k} recorded ({agree} agree)"
    if flips > allowance:
        return line, (
            f"{name}: {flips} flips of {size} images, allowance {allowance} "
            f"({live_k} vs {recorded_k} correct)"
        )
    return line, None


def spot_check(
    record: Record,
    model: nn.Module,
    data: ImageData,
    cells: int | Sequence[str] | None = 3,
    images: int | None = 300,
    pgd_images: int | None = 50,
    seed: int = 0,
) -> str:
    """Re-measure a sample of ``record``'s cells live and compare with the record image by image.

    ``cells``: how many cells to draw (seeded), or their names, or ``None`` for all. Each cell is
    re-measured on ``images`` test images (``pgd_images`` for PGD) drawn without replacement from
    the cell's images with ``seed`` (``None``: all of them).

    The live and recorded outcomes are on the same images, so they are compared image by image:
    with ``n`` images re-measured in a cell and ``agree`` of them classified as recorded, the cell
    fails when its flips ``d = n - agree`` exceed ``flip_allowance(n, m)``, ``m`` the number of
    cells checked in this call: the smallest ``a`` with ``P(Binomial(n, FLIP_RATE) > a) <=
    SPOT_LEVEL / m``. Under "same network, same code" only floating-point noise flips an image
    (at most :data:`FLIP_RATE` of them, an assumption), so the call fails such a network with
    probability at most :data:`SPOT_LEVEL`. As ``|live_k - recorded_k| <= d``, this also bounds
    the difference of the counts; a changed network whose count happens to match still fails.

    Raises :class:`SpotCheckError` naming the failing cells, and :class:`RecordError` when
    ``data`` is not the data the record was measured on. Returns one line: seed, and per cell the
    live and recorded counts and the per-image agreement. Full mode re-measures everything with
    ``cells=None, images=None, pgd_images=None`` (and writes nothing).
    """
    _require_same_data(record, data)
    protocol = protocols.PROTOCOLS[record.key["protocol"]]
    rng = np.random.default_rng(seed)  # draws the cells, then each cell's images, in that order
    chosen = _choose_cells(record, cells, rng)
    parts, failures = [], []
    for name in chosen:
        wanted = pgd_images if protocols.parse_cell(name)[0] == "pgd" else images
        part, failure = _recheck_cell(
            protocol, model, data, name, record.cells[name], wanted, rng, len(chosen)
        )
        parts.append(part)
        if failure is not None:
            failures.append(failure)
    line = (
        f"spot check of {record.checkpoint} (seed {seed}, {len(chosen)} of {len(record.cells)} "
        "cells): " + "; ".join(parts)
    )
    rule = (
        f"assumed flip rate {FLIP_RATE:.0%} per image, level {SPOT_LEVEL:g} over "
        f"{len(chosen)} cell{'s' if len(chosen) != 1 else ''}"
    )
    if failures:
        raise SpotCheckError(
            f"{line}. More images flipped than floating-point noise allows ({rule}): "
            f"{'; '.join(failures)}. The network or the code changed since the record was "
            f"measured; re-measure with `{command_for(record.checkpoint)} --force`."
        )
    return line + f": flips within the allowance ({rule})"


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
        set_threads(args.threads)
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
