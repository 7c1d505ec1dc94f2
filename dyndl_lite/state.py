"""The whole state of a training run after a completed epoch, saved atomically so that the run can
resume.

A run's state folder holds

* ``epoch-<E>.safetensors``: the model's parameters and buffers, the optimizer's
  tensors (momentum buffers, Adam moments and step counts) and every random
  number generator state the run draws from (the run's own generator, torch's
  global CPU generator, and CUDA's when present), as uint8 tensors;
* ``state.json``: the epoch, the history, the optimizer's hyper-parameters, the
  run's description (``spec``) and the SHA-256 of the tensor file it belongs to.

``state.json`` is replaced last, by an atomic rename, and names its tensor file:
a kill at any moment leaves either the previous complete state or the new one.
Loading a state restores everything, so on a CPU a resumed run continues
bitwise identically to one that was never interrupted. Nothing is unpickled.

Example::

    >>> store = StateStore(Path("runs/chen-mlp-seed0.state"))  # doctest: +SKIP
    >>> store.save(  # doctest: +SKIP
    ...     epoch=3, model=net, optimizer=opt, generator=g, history=history, spec=spec
    ... )
    >>> store.load(model=net, optimizer=opt, generator=g)  # doctest: +SKIP
    (3, history, spec)
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from dyndl_lite import atomic
from dyndl_lite.pretrained import CheckpointError, dump_record, finite_or_refuse, sha256

STATE_FILE = "state.json"


class RunLocked(RuntimeError):
    """Another process holds the lock of this run's folder."""


@contextmanager
def exclusive(lock: Path, what: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on the file ``lock`` (created, holding our pid)
    for the ``with`` block; :class:`RunLocked` naming the other process if one holds it.

    The lock dies with its process (a SIGKILL included), so a stale lock file never blocks a run.
    """
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock, "a+")  # noqa: SIM115 (held open for the whole block)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        other = handle.read().strip() or "unknown"
        handle.close()
        raise RunLocked(
            f"{what} is in use by another process (pid {other}, lock {lock}); "
            "wait for it to finish or choose another --out."
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _rng_tensors(generator: torch.Generator) -> dict[str, torch.Tensor]:
    states = {"rng.run": generator.get_state(), "rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            states[f"rng.cuda.{index}"] = state
    return states


def _restore_rng(tensors: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    generator.set_state(tensors["rng.run"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _split_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state as ``(tensors, json)``: tensors under ``optimizer.<param>.<key>``, the
    rest as JSON."""
    state = optimizer.state_dict()
    tensors, plain = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def _join_optimizer(tensors: dict[str, torch.Tensor], saved: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entries in saved["plain"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [
        dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in saved["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


class StateStore:
    """The state folder of one training run (see the module docstring for its layout)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @property
    def pointer(self) -> Path:
        return self.folder / STATE_FILE

    def exists(self) -> bool:
        return self.pointer.is_file()

    def refuse_orphans(self) -> None:
        """``CheckpointError`` when epoch tensors remain but ``state.json`` is gone: restarting
        would silently throw away those epochs.

        The one exception is a lone ``epoch-0001.safetensors``: the first save, killed between
        its two files (or a pointer deleted after one epoch). It is deleted, with a warning, and
        the run starts afresh, losing that one epoch; refusing would stop a plan for good after
        an unlucky kill.
        """
        orphans = sorted(self.folder.glob("epoch-*.safetensors")) if self.folder.is_dir() else []
        if [path.name for path in orphans] == ["epoch-0001.safetensors"]:
            warnings.warn(
                f"{orphans[0]} has no {STATE_FILE} (a first save interrupted between its two "
                "files); deleting it and starting the run again from epoch 1.",
                stacklevel=2,
            )
            orphans[0].unlink()
        elif orphans:
            raise CheckpointError(
                f"The training state {self.folder} holds {orphans[-1].name} but no {STATE_FILE}, "
                "so it cannot be resumed; delete the folder to restart the run from epoch 1."
            )

    def remove_strays(self) -> None:
        """Delete the temporaries that saves killed mid-write left in the folder (hold the run's
        lock: :func:`exclusive`)."""
        if self.folder.is_dir():
            for path in self.folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)

    def read(self) -> dict:
        """The JSON part of the saved state (epoch, history, spec, ...), tensors untouched."""
        try:
            saved = json.loads(self.pointer.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(
                f"The training state {self.pointer} is not valid JSON ({error}); "
                "delete the folder to start the run afresh."
            ) from error
        for key in ("epoch", "tensors", "tensors_sha256", "history", "spec", "optimizer"):
            if key not in saved:
                raise CheckpointError(
                    f"The training state {self.pointer} has no {key!r}; "
                    "delete the folder to start the run afresh."
                )
        return saved

    def save(
        self,
        *,
        epoch: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        history: dict,
        spec: dict,
        extra: dict | None = None,
    ) -> None:
        """Write the state after ``epoch`` completed epochs; the previous state stays valid until
        the last rename."""
        self.folder.mkdir(parents=True, exist_ok=True)
        optimizer_tensors, optimizer_json = _split_optimizer(optimizer)
        tensors = {
            f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()
        }
        finite_or_refuse(tensors, f"the training state of epoch {epoch} in {self.folder}")
        tensors.update(optimizer_tensors)
        tensors.update(_rng_tensors(generator))
        name = f"epoch-{epoch:04d}.safetensors"
        target = self.folder / name
        temporary = atomic.temporary_path(target)
        try:
            save_file(tensors, str(temporary))
            atomic.commit(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        atomic.write_text(
            self.pointer,
            dump_record(
                {
                    "epoch": epoch,
                    "tensors": name,
                    "tensors_sha256": sha256(target),
                    "history": history,
                    "spec": spec,
                    "optimizer": optimizer_json,
                    "extra": extra or {},
                }
            ),
        )
        for old in self.folder.glob("epoch-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def load(
        self,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
    ) -> dict:
        """Restore model, optimizer and generators in place; return the JSON part (epoch, history,
        spec, extra)."""
        saved = self.read()
        path = self.folder / saved["tensors"]
        if not path.is_file() or sha256(path) != saved["tensors_sha256"]:
            raise CheckpointError(
                f"The training state's tensors {path} are missing or do not match their SHA-256; "
                "delete the folder to start the run afresh."
            )
        tensors = load_file(str(path))
        device = next(iter(model.parameters())).device
        try:
            model.load_state_dict(
                {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")},
                strict=True,
            )
            model.to(device)
            optimizer.load_state_dict(_join_optimizer(tensors, saved["optimizer"]))
        except (RuntimeError, ValueError, KeyError) as error:
            first = str(error).strip().splitlines()[0]
            raise CheckpointError(
                f"The training state in {self.folder} does not fit this network ({first}); "
                "the architecture changed since it was saved. Delete the folder to start afresh."
            ) from None
        _restore_rng(tensors, generator)
        return saved

    def remove(self) -> None:
        """Delete the state folder (after the finished checkpoint has been written)."""
        if self.folder.is_dir():
            for child in self.folder.iterdir():
                child.unlink()
            self.folder.rmdir()
