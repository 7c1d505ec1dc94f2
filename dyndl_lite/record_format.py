"""The file of an evaluation record: its cells, its digest, and how it is written and read.

A record ``<name>.eval.json`` (see :mod:`dyndl_lite.records` for what it measures and how it is
used) is JSON with ``format``, ``checkpoint``, ``key``, ``cells``, ``scalars``, ``meta`` and
``digest``. A cell is one accuracy on the first ``n`` images: the count ``k`` of images classified
correctly, ``value = k / n``, and the per-image outcomes as a bitmap (``numpy.packbits``, base64;
bit ``i`` is image ``i``), whose popcount must equal ``k``. ``digest`` is the SHA-256 of the
canonical JSON of everything else (:func:`content_digest`): it catches an edited number (a checksum
against accidents, not a signature). :func:`read` checks the digest and every bitmap;
:func:`write` replaces a file atomically.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import torch

from dyndl_lite import atomic, pretrained
from dyndl_lite.data import ImageData

FORMAT = 1  # layout of the JSON file (not the protocol's version)
SUFFIX = ".eval.json"
REFRESH = "make evaluate"


class RecordError(pretrained.CheckpointError):
    """An evaluation record is missing, malformed or edited by hand: re-measure it."""


class StaleRecordError(RecordError):
    """An evaluation record describes other weights or an older protocol than the code's."""


def command_for(name: str) -> str:
    """The exact command that (re)writes the record of checkpoint ``name``."""
    return f"python -m dyndl_lite evaluate {name}"


def remedy(name: str) -> str:
    """How to re-measure the record of checkpoint ``name``, for the end of an error message."""
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


# --------------------------------------------------------------------------- records


@dataclasses.dataclass
class Record:
    """An evaluation record in memory (the fields are described in :mod:`dyndl_lite.records`)."""

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


#: What a record's name may look like: a checkpoint's name, or a released network's
#: (``yan-authors-odenet-gaussian-run1``): lower case, digits, dots and dashes, no path.
RECORD_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def record_path(name: str, folder: str | Path) -> Path:
    """``<folder>/<name>.eval.json``; ``name`` must match :data:`RECORD_NAME`."""
    if not isinstance(name, str) or not RECORD_NAME.match(name):
        raise ValueError(
            f"record name {name!r} must be lower case letters, digits, dots and dashes, "
            "e.g. 'chen-resnet-seed0'."
        )
    return Path(folder) / f"{name}{SUFFIX}"


def data_key(data: ImageData) -> dict:
    """The data a record was measured on: name, image count and SHA-256 of images and labels."""
    digest = hashlib.sha256()
    digest.update(data.images.detach().cpu().contiguous().numpy().tobytes())
    digest.update(data.labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    return {"data": data.name, "images": len(data), "data_sha256": digest.hexdigest()}


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
        raise RecordError(f"{name} has no evaluation record {path}. {remedy(name)}")
    try:
        data = json.loads(path.read_text())
        digest = data.pop("digest")
        payload = {k: data[k] for k in ("format", "checkpoint", "key", "cells", "scalars", "meta")}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, KeyError) as error:
        raise RecordError(
            f"{path} is not an evaluation record ({error!r}). {remedy(name)}"
        ) from error
    if set(data) != set(payload) or content_digest(payload) != digest:
        raise RecordError(
            f"{path} does not match its digest: a number in it was changed after it was measured. "
            f"{remedy(name)}"
        )
    if payload["format"] != FORMAT or payload["checkpoint"] != name:
        raise RecordError(f"{path}: format or checkpoint name is not this code's. {remedy(name)}")
    cells = {c: Cell.from_json(v, f"{path}, cell {c!r}") for c, v in payload["cells"].items()}
    return Record(name, payload["key"], cells, payload["scalars"], payload["meta"], path)
