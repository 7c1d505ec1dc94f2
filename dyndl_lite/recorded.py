"""What a chapter shows from evaluation records (:mod:`dyndl_lite.records`), and how it re-checks
them live.

A chapter's table of a paper's results reads the records of its checkpoints, measured once under
the paper's full protocol, and says so in one line. It then re-measures part of them:

* **quick** mode: ``cells`` pairs (checkpoint, cell) drawn with ``seed`` from all the records'
  cells, each on ``images`` random test images of that cell (``pgd_images`` for PGD), compared
  image by image (:func:`dyndl_lite.records.spot_check`);
* **full** mode: every cell of every record on all its images.

More images whose live outcome differs from the recorded one than
:func:`dyndl_lite.records.flip_allowance` allows raises
:class:`~dyndl_lite.records.SpotCheckError`; nothing is ever rewritten. When the chapter's data
are not the records' (the offline fallback), the live check is skipped and the line says why.

Example::

    >>> names = ["chen-mlp-seed0", "chen-odenet-seed0"]
    >>> shown = recorded.show(names, load_mnist("test"), "quick")  # doctest: +SKIP
    >>> print("\\n".join(shown.lines))                              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from dyndl_lite import records
from dyndl_lite.data import ImageData
from dyndl_lite.record_format import Record, data_key

MODES = ("quick", "full")


@dataclasses.dataclass(frozen=True)
class Shown:
    """The current records of a chapter's checkpoints (by name) and the lines it prints about
    them: where they come from, then what was re-measured live."""

    records: dict[str, Record]
    lines: list[str]


def provenance(loaded: dict[str, Record]) -> str:
    """One line: how many records, which protocol(s), on what data, measured when and where."""
    metas, keys = [r.meta for r in loaded.values()], [r.key for r in loaded.values()]
    protocols = sorted({f"{k['protocol']} v{k['protocol_version']}" for k in keys})
    datasets = sorted({f"{k['images']:,} images of {k['data']}" for k in keys})
    days = sorted({m["date"][:10] for m in metas})
    machines = sorted({f"{m['device']} ({m['cpu']})" for m in metas})
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"
    return (
        f"Numbers from {len(loaded)} evaluation record(s), measured once under the paper's full "
        f"protocol ({', '.join(protocols)}) on {'; '.join(datasets)}, {when}, on "
        f"{'; '.join(machines)}; `python -m dyndl_lite evaluate NAME` re-measures one."
    )


def same_data(record: Record, data: ImageData) -> bool:
    """Whether ``data`` are the images the record was measured on (count and SHA-256)."""
    key = data_key(data.to("cpu") if data.images.device.type != "cpu" else data)
    return all(key[k] == record.key.get(k) for k in ("images", "data_sha256"))


def draw(loaded: dict[str, Record], cells: int, seed: int) -> dict[str, list[str]]:
    """``cells`` (checkpoint, cell) pairs drawn without replacement with ``seed`` from every cell
    of ``loaded``, grouped by checkpoint in the records' order."""
    pairs = [(name, cell) for name, record in loaded.items() for cell in record.cells]
    if cells < 1:
        raise ValueError(f"cells must be at least 1, got {cells}.")
    picked = np.random.default_rng(seed).choice(len(pairs), min(cells, len(pairs)), replace=False)
    chosen: dict[str, list[str]] = {}
    for i in sorted(picked):
        name, cell = pairs[i]
        chosen.setdefault(name, []).append(cell)
    return chosen


def show(
    names: Sequence[str],
    data: ImageData,
    mode: str,
    seed: int = 0,
    cells: int = 4,
    images: int = 300,
    pgd_images: int = 50,
) -> Shown:
    """Load the current records of checkpoints ``names`` (:func:`dyndl_lite.records.load`: a
    missing, edited or stale record is an error naming ``make evaluate``) and re-check them live
    on ``data`` as ``mode`` says (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if not names:
        raise ValueError("names is empty: name at least one checkpoint.")
    loaded = {name: records.load(name) for name in names}
    lines = [provenance(loaded)]
    if not all(same_data(record, data) for record in loaded.values()):
        lines.append(
            f"Live check skipped: the records were measured on official MNIST test images, and "
            f"this run has {len(data):,} images of {data.name}."
        )
        return Shown(loaded, lines)
    if mode == "full":
        chosen = {name: list(record.cells) for name, record in loaded.items()}
        images_, pgd_ = None, None
    else:
        chosen, images_, pgd_ = draw(loaded, cells, seed), images, pgd_images
    for name, wanted in chosen.items():
        model, _ = records.load_checkpoint(name, device=str(data.images.device))
        lines.append(
            records.spot_check(loaded[name], model, data, wanted, images_, pgd_, seed=seed)
        )
    return Shown(loaded, lines)
