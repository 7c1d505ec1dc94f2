"""Shipped checkpoints: safetensors weights with a JSON record beside them.

A checkpoint ``<name>`` is two files in :data:`CHECKPOINT_DIR`:
``<name>.safetensors`` (tensors only: loading never unpickles) and
``<name>.json`` (how the weights were made: recipe, seed, epochs run, data,
mode, device, wall time, accuracies, package version and git commit).
Names follow ``<paper>-<model>[-<regime>]-seed<S>``, e.g. ``chen-resnet-seed0``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import subprocess
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9.]+)+-seed\d+$")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"Checkpoint name {name!r} must look like '<paper>-<model>[-<regime>]-seed<S>' "
                         "(lower case, digits, dots, dashes), e.g. 'chen-resnet-seed0'.")


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def paths(name: str, folder: str | Path = CHECKPOINT_DIR) -> tuple[Path, Path]:
    """``(weights, record)`` file paths of checkpoint ``name``."""
    _check_name(name)
    folder = Path(folder)
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def exists(name: str, folder: str | Path = CHECKPOINT_DIR) -> bool:
    """Whether both files of checkpoint ``name`` are present."""
    weights, record = paths(name, folder)
    return weights.is_file() and record.is_file()


def save(model: nn.Module, name: str, record: dict, folder: str | Path = CHECKPOINT_DIR) -> Path:
    """Write ``model``'s weights and ``record`` (plus provenance) as checkpoint ``name``; return the weights path.

    Added to the record unless already there: package version, git commit,
    torch version, device of the weights, UTC date, and the SHA-256 of the weights.
    """
    from dyndl_lite import __version__

    weights, record_path = paths(name, folder)
    weights.parent.mkdir(parents=True, exist_ok=True)
    record = dict(record)
    first = next(iter(model.parameters()), None)
    record.setdefault("device", str(first.device) if first is not None else "cpu")
    save_model(model, str(weights))
    record.update({
        "name": name,
        "package_version": __version__,
        "git_commit": record.get("git_commit") or _git_commit(),
        "torch_version": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "weights_sha256": _sha256(weights),
    })
    record_path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return weights


def load_record(name: str, folder: str | Path = CHECKPOINT_DIR) -> dict:
    """The JSON record of checkpoint ``name``, without touching the weights."""
    if not exists(name, folder):
        raise FileNotFoundError(
            f"Checkpoint {name!r} is not in {folder}. Train it, e.g. "
            f"`python -m dyndl_lite train <experiment> --model <model> --mode full --seed <S>`, "
            "or list the shipped ones with `ls dyndl_lite/checkpoints`."
        )
    return json.loads(paths(name, folder)[1].read_text())


def load(model: nn.Module, name: str, folder: str | Path = CHECKPOINT_DIR) -> dict:
    """Load checkpoint ``name``'s weights into ``model`` in place (strictly) and return its record."""
    record = load_record(name, folder)
    weights = paths(name, folder)[0]
    expected = record.get("weights_sha256")
    if expected and expected != _sha256(weights):
        raise OSError(f"{weights} does not match the SHA-256 in its record; the file is corrupt or was replaced.")
    first = next(iter(model.parameters()), None)
    device = str(first.device) if first is not None else "cpu"
    try:
        load_model(model, str(weights), strict=True, device=device)
    except RuntimeError as error:
        raise RuntimeError(f"Checkpoint {name!r} does not fit this model ({error}). "
                           f"Build the architecture named in its record: {record.get('model', 'see the JSON')}.") from error
    return record
