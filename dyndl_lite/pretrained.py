"""Checkpoints: safetensors weights with a JSON record beside them, written atomically, found in
two places.

A checkpoint ``<name>`` is two files in a folder: ``<name>.safetensors``
(tensors only: loading never unpickles) and ``<name>.json`` (how the weights
were made: recipe as run, seed, epochs run of the paper's, training data,
device and threads, wall time, accuracies, package version, git commit, and
the SHA-256 of the weights). Names follow ``<paper>-<model>[-<regime>]-seed<S>``,
e.g. ``chen-resnet-seed0``.

Two folders hold checkpoints:

* the **user folder** :func:`user_dir` (``$DYNDL_CHECKPOINTS``, default
  ``<data cache>/checkpoints``): where training writes, searched first;
* the **shipped folder** :data:`SHIPPED_DIR` inside the package: written only by
  :func:`ship`, which refuses to replace a checkpoint trained longer or on more data.

Writing is atomic: each file goes to a temporary name in the same folder, is
flushed to disk and renamed; the record is renamed last, and when an existing
pair is replaced its record is removed first. A reader therefore sees the old
pair, no pair, or the new pair, never a mixture, whenever the writer is killed.

Example::

    >>> from dyndl_lite import pretrained
    >>> pretrained.locate("chen-resnet-seed0")          # doctest: +SKIP
    PosixPath('.../dyndl_lite/checkpoints')
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_model
from torch import nn

from dyndl_lite import atomic

SHIPPED_DIR = Path(__file__).resolve().parent / "checkpoints"
CHECKPOINTS_VARIABLE = "DYNDL_CHECKPOINTS"
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9.]+)+-seed\d+$")


class CheckpointError(OSError):
    """A checkpoint on disk is missing a part, malformed, corrupt, or not the architecture asked
    for."""


def inside_shipped(folder: str | Path) -> bool:
    """Whether ``folder`` is, or is inside, :data:`SHIPPED_DIR` (symbolic links resolved)."""
    resolved, shipped = Path(folder).expanduser().resolve(), SHIPPED_DIR.resolve()
    return resolved == shipped or shipped in resolved.parents


def refuse_shipped(folder: str | Path, what: str) -> Path:
    """``folder`` as a path, or a ``ValueError`` when it is (inside) the package's own checkpoint
    folder: training, moving or overwriting there would destroy the shipped checkpoints."""
    if inside_shipped(folder):
        raise ValueError(
            f"{what} {folder} is the package's own checkpoint folder {SHIPPED_DIR} (or inside it); "
            "runs there would replace or delete the shipped checkpoints. Choose another folder."
        )
    return Path(folder).expanduser()


def user_dir() -> Path:
    """The user's checkpoint folder: ``$DYNDL_CHECKPOINTS``, else ``<data cache>/checkpoints``;
    a ``ValueError`` when that is the package's own folder (:func:`refuse_shipped`)."""
    from dyndl_lite.data import data_root

    folder = os.environ.get(CHECKPOINTS_VARIABLE)
    if folder:
        return refuse_shipped(folder, f"${CHECKPOINTS_VARIABLE}")
    return data_root() / "checkpoints"


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors of ``tensors`` holding a NaN or an infinity."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]


def finite_or_refuse(tensors: dict[str, torch.Tensor], what: str) -> None:
    """``CheckpointError`` naming the non-finite tensors of ``what``: such weights compute
    nothing, and an accuracy measured with them would be noise."""
    bad = non_finite(tensors)
    if bad:
        raise CheckpointError(
            f"{what} has non-finite weights ({', '.join(bad[:3])}); refusing them. "
            "The run diverged: train it again with a lower learning rate."
        )


def search_path() -> list[Path]:
    """Folders searched by :func:`load` when none is given: the user folder, then the shipped
    one."""
    return [user_dir(), SHIPPED_DIR]


def check_name(name: str) -> str:
    """``name`` if it is a valid checkpoint name, else a ``ValueError`` saying what one looks
    like."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"Checkpoint name {name!r} must look like '<paper>-<model>[-<regime>]-seed<S>' "
            "(lower case, digits, dots, dashes), e.g. 'chen-resnet-seed0'."
        )
    return name


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def json_safe(value):
    """``value`` with every non-finite float replaced by ``None``, so that
    ``json.dumps(allow_nan=False)`` works.

    Records are strict JSON: a bare ``NaN`` is not JSON and other readers reject it.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


_NUMBER = r"-?\d[\d.eE+-]*|null"
# a list of numbers as json.dumps(indent=1) writes it: one per line (a literal newline cannot
# occur inside a JSON string, so no string is ever matched)
_NUMBER_LIST = re.compile(rf"\[\n\s*((?:{_NUMBER})(?:,\n\s*(?:{_NUMBER}))*)\n\s*\]")


def dump_record(record: dict) -> str:
    """The record as strict JSON text (non-finite floats become ``null``): one key a line, and
    every list of numbers on one line (``[1,2,3]``), which keeps per-step training curves to a
    fifth of the bytes of one number a line."""
    text = json.dumps(json_safe(record), indent=1, default=str, allow_nan=False)
    return _NUMBER_LIST.sub(lambda m: "[" + re.sub(r",\n\s*", ",", m.group(1)) + "]", text) + "\n"


#: Per-step training curves (one number per optimizer step) in a record's ``history``.
STEP_CURVES = ("step_loss", "step_nfe_forward", "step_nfe_backward")
#: Experiments whose chapters read those curves (chapter 4 plots Chen et al.'s). The others
#: ship without them and keep their per-epoch history: the package holds what a chapter reads.
STEP_CURVES_READ = frozenset({"chen"})


def shipped_form(record: dict) -> dict:
    """``record`` as :func:`ship` stores it: without :data:`STEP_CURVES` unless its experiment is
    in :data:`STEP_CURVES_READ` (a 100-epoch run of Yan et al.'s recipe has 46,900 steps,
    0.9 MB of JSON that no chapter reads)."""
    if record.get("experiment") in STEP_CURVES_READ:
        return record
    history = {k: v for k, v in record.get("history", {}).items() if k not in STEP_CURVES}
    return {**record, "history": history}


def paths(name: str, folder: str | Path) -> tuple[Path, Path]:
    """``(weights, record)`` file paths of checkpoint ``name`` in ``folder``."""
    check_name(name)
    folder = Path(folder)
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def exists(name: str, folder: str | Path | None = None) -> bool:
    """Whether both files of checkpoint ``name`` are in ``folder`` (default: in any folder of
    :func:`search_path`)."""
    folders = search_path() if folder is None else [Path(folder)]
    return any(all(p.is_file() for p in paths(name, f)) for f in folders)


def locate(name: str) -> Path:
    """The first folder of :func:`search_path` that holds checkpoint ``name``, or
    ``FileNotFoundError``."""
    for folder in search_path():
        if exists(name, folder):
            return folder
    raise FileNotFoundError(
        f"Checkpoint {name!r} is neither in the user folder {user_dir()} "
        f"nor shipped in {SHIPPED_DIR}. "
        "Train it with `python -m dyndl_lite train <experiment> --model <model> --seed <S>` "
        "(`python -m dyndl_lite list` shows the experiments)."
    )


def save(
    model: nn.Module,
    name: str,
    record: dict,
    folder: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model``'s weights and ``record`` (plus provenance) as checkpoint ``name``; return the
    weights path.

    ``folder`` defaults to :func:`user_dir`. An existing checkpoint of that name is an
    error unless ``overwrite``. Added to the record: name, package version, git commit,
    torch version, UTC date, and the SHA-256 of the weights (which :func:`load` requires).
    """
    from dyndl_lite import __version__

    folder = refuse_shipped(folder, "folder") if folder is not None else user_dir()
    weights, record_path = paths(name, folder)
    finite_or_refuse(model.state_dict(), f"checkpoint {name!r}")
    if (weights.exists() or record_path.exists()) and not overwrite:
        raise FileExistsError(
            f"Checkpoint {name!r} already exists in {folder}; pass overwrite=True "
            "(--overwrite on the command line) to replace it."
        )
    folder.mkdir(parents=True, exist_ok=True)
    temporary_weights = atomic.temporary_path(weights)
    temporary_record = atomic.temporary_path(record_path)
    try:
        save_model(model, str(temporary_weights))
        atomic.flush(temporary_weights)
        record = dict(record)
        record.update(
            {
                "name": name,
                "package_version": __version__,
                "git_commit": record.get("git_commit") or _git_commit(),
                "torch_version": torch.__version__,
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "weights_sha256": sha256(temporary_weights),
            }
        )
        temporary_record.write_text(dump_record(record))
        atomic.flush(temporary_record)
        # from here until the last rename there is no pair at all
        record_path.unlink(missing_ok=True)
        atomic.commit(temporary_weights, weights)
        atomic.commit(temporary_record, record_path)
    finally:
        temporary_weights.unlink(missing_ok=True)
        temporary_record.unlink(missing_ok=True)
    return weights


def load_record(name: str, folder: str | Path | None = None) -> dict:
    """The JSON record of checkpoint ``name`` (from ``folder``, default the first that has it),
    weights untouched."""
    folder = locate(name) if folder is None else Path(folder)
    weights, record_path = paths(name, folder)
    if not record_path.is_file() and weights.is_file():
        raise CheckpointError(
            f"Checkpoint {name!r}: the weights {weights} exist but their record {record_path} "
            "does not (a save interrupted between its two files, or a deleted record); without "
            "the record nothing vouches for the weights. Run the same training command again "
            "to finish it (with --overwrite to replace the weights), or restore the record."
        )
    if not record_path.is_file():
        raise FileNotFoundError(
            f"Checkpoint {name!r} is not in {folder} (no {record_path.name}). Train it with "
            "`python -m dyndl_lite train <experiment> --model <model> --seed <S>` "
            "(`python -m dyndl_lite list` shows the experiments), "
            f"or list the shipped ones in {SHIPPED_DIR}."
        )
    if not weights.is_file():
        raise CheckpointError(
            f"Checkpoint {name!r}: the record {record_path} exists "
            f"but its weights {weights} do not."
        )
    try:
        record = json.loads(record_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"The record {record_path} is not valid JSON ({error}).") from error
    if not isinstance(record, dict) or not isinstance(record.get("weights_sha256"), str):
        raise CheckpointError(
            f"The record {record_path} has no 'weights_sha256'; it cannot vouch for its weights."
        )
    return record


def load(
    model: nn.Module, name: str, folder: str | Path | None = None, expect: dict | None = None
) -> dict:
    """Load checkpoint ``name``'s weights into ``model`` in place (strictly) and return its record.

    ``folder`` defaults to the first folder of :func:`search_path` that holds ``name``;
    the returned record's ``"loaded_from"`` says which. The weights must match the
    record's SHA-256, and every ``key: value`` of ``expect`` (e.g. ``{"experiment": "chen",
    "model": "resnet"}``) must equal the record's, so a record cannot describe another network.
    """
    folder = locate(name) if folder is None else Path(folder)
    record = load_record(name, folder)
    weights = paths(name, folder)[0]
    if record["weights_sha256"] != sha256(weights):
        raise CheckpointError(
            f"{weights} does not match the SHA-256 in its record; "
            "the file is corrupt or was replaced."
        )
    for key, value in (expect or {}).items():
        if record.get(key) != value:
            raise CheckpointError(
                f"Checkpoint {name!r} in {folder} records {key}={record.get(key)!r}, "
                f"but {key}={value!r} was asked for; it belongs to another network."
            )
    finite_or_refuse(load_file(str(weights)), f"checkpoint {name!r} in {folder}")
    first = next(iter(model.parameters()), None)
    device = str(first.device) if first is not None else "cpu"
    try:
        load_model(model, str(weights), strict=True, device=device)
    except RuntimeError as error:
        raise CheckpointError(
            f"Checkpoint {name!r} does not fit this model ({error}). "
            f"Build the architecture named in its record: {record.get('model', 'see the JSON')}."
        ) from error
    record["loaded_from"] = str(folder)
    return record


def provenance(record: dict) -> str:
    """One line for a chapter: which checkpoint it uses, from which folder, trained how long, on
    what.

    ``record`` is what :func:`load` returned (it carries ``"loaded_from"``), e.g.
    ``"chen-resnet-seed0 (shipped with the package): 15 of the full recipe's 160 epochs on 60,000
    images of MNIST train (official, 60,000 images); cpu, 1 thread, 58 min"``. The full recipe is
    the paper's (Gai & Zhang give no MNIST schedule: theirs is the book's, see its record).
    """
    folder = record.get("loaded_from")
    where = (
        "shipped with the package"
        if folder and Path(folder) == SHIPPED_DIR
        else f"from your folder {folder}"
        if folder
        else "origin not recorded"
    )
    data = record.get("data", {})
    threads = record.get("threads")
    machine = record.get("device", "device not recorded") + (
        f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""
    )
    seconds = record.get("wall_time_s") or 0
    wall = f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
    return (
        f"{record.get('name')} ({where}): {record.get('epochs_run')} of the full recipe's "
        f"{record.get('full_recipe_epochs')} epochs on {data.get('train_images', 0):,} images of "
        f"{data.get('train', 'unrecorded data')}; {machine}, {wall}"
    )


def training_amount(record: dict) -> tuple[int, int]:
    """``(epochs run, training images per epoch)`` of a record, the two quantities :func:`ship`
    compares."""
    return int(record.get("epochs_run", 0)), int(record.get("data", {}).get("train_images", 0))


def check_epoch_data(name: str, record: dict) -> None:
    """``CheckpointError`` unless the record says, for every epoch run, that it trained and tested
    on official data (``history.epoch_data``, :func:`dyndl_lite.train.epoch_data`)."""
    data = record.get("history", {}).get("epoch_data") or []
    epochs = record.get("epochs_run")
    unofficial = [i + 1 for i, entry in enumerate(data) if entry.get("fallback") is not False]
    if len(data) != epochs or unofficial:
        which = f"epochs {unofficial[:5]}" if unofficial else f"{len(data)} of {epochs} epochs"
        raise CheckpointError(
            f"{name}: the record does not show official data for every epoch ({which} used the "
            "offline fallback or were not recorded); the book ships only runs trained and tested "
            "on official MNIST throughout. Train it again without --allow-fallback."
        )


def ship(
    name: str, source: str | Path | None = None, replace: bool = False, move: bool = False
) -> Path:
    """Copy finished checkpoint ``name`` from ``source`` (default: the user folder) into
    :data:`SHIPPED_DIR`.

    Refused: a ``source`` inside :data:`SHIPPED_DIR`; a record whose run is not finished
    (``epochs_run`` below the recipe's epochs); one with any epoch trained or tested on the
    offline fallback or not recorded (:func:`check_epoch_data`); weights that fail their SHA-256
    or are not finite; and, unless ``replace``,
    replacing a shipped checkpoint trained for more epochs or on more images per epoch.
    ``move`` deletes the source pair after the copy. The record is stored in its
    :func:`shipped_form`. Returns the shipped weights path.
    """
    source = refuse_shipped(source, "the source") if source is not None else user_dir()
    record = load_record(name, source)
    weights = paths(name, source)[0]
    if record["weights_sha256"] != sha256(weights):
        raise CheckpointError(
            f"{weights} does not match the SHA-256 in its record; refusing to ship it."
        )
    finite_or_refuse(load_file(str(weights)), f"{name} in {source}")
    planned = int(record.get("recipe", {}).get("epochs", -1))
    if record.get("epochs_run") != planned:
        raise CheckpointError(
            f"{name}: {record.get('epochs_run')} of {planned} epochs run; "
            "finish the run before shipping it."
        )
    if record.get("data", {}).get("fallback", True) is not False:
        raise CheckpointError(
            f"{name} was trained on the offline fallback data (or its record does not say "
            "otherwise); the book ships checkpoints trained on the official MNIST training set "
            "only."
        )
    check_epoch_data(name, record)
    if exists(name, SHIPPED_DIR) and not replace:
        shipped = load_record(name, SHIPPED_DIR)
        old, new = training_amount(shipped), training_amount(record)
        if old[0] > new[0] or old[1] > new[1]:
            raise CheckpointError(
                f"The shipped {name} was trained longer or on more data "
                f"({old[0]} epochs of {old[1]:,} images) "
                f"than this one ({new[0]} epochs of {new[1]:,} images); "
                "pass replace=True (--replace) to ship it anyway."
            )
    target_weights, target_record = paths(name, SHIPPED_DIR)
    temporary_weights = atomic.temporary_path(target_weights)
    try:
        shutil.copyfile(weights, temporary_weights)
        target_record.unlink(missing_ok=True)
        atomic.commit(temporary_weights, target_weights)
        atomic.write_text(target_record, dump_record(shipped_form(record)))
    finally:
        temporary_weights.unlink(missing_ok=True)
    if move:
        record_path = paths(name, source)[1]
        record_path.unlink()
        weights.unlink()
    return target_weights
