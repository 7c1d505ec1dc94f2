"""Peak memory of a block of code, measured the same way by every reader.

``with peak_memory(device) as m: ...`` sets ``m.bytes`` to the peak memory used inside
the block above what was in use when it started:

* CUDA: ``torch.cuda.max_memory_allocated - memory_allocated`` at entry, after
  ``torch.cuda.reset_peak_memory_stats``: exactly the tensors' bytes, from PyTorch's allocator.
* CPU, ``count="tensors"`` (the default): the same quantity, counted by :class:`TensorBytes`, a
  ``TorchDispatchMode`` that sees every PyTorch operation (autograd's backward included), adds
  the bytes of each new tensor storage and subtracts them when the storage is freed. It is exact
  and deterministic, but slows each operation (about 1.4x on small tensors): time separately.
* CPU, ``count="process"`` (Linux): the process's resident-set high-water mark ``VmHWM`` from
  ``/proc/self/status``, reset at entry by writing ``5`` to ``/proc/self/clear_refs`` after glibc's
  ``malloc_trim``. This counts all memory of the process (tensors, allocator slack, Python
  objects), so differences of a few MiB are allocator noise.

:func:`gradient_cost` uses them to compare the adjoint method with backpropagation.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class PeakMemory:
    """Result of :func:`peak_memory`: ``bytes`` above the baseline and how they were measured."""

    device: str
    method: str
    bytes: int = 0

    @property
    def mib(self) -> float:
        return self.bytes / 2**20


def _rss_kib(field: str) -> int:
    match = re.search(rf"{field}:\s+(\d+) kB", _STATUS.read_text())
    if match is None:
        raise RuntimeError(
            f"{_STATUS} has no {field} line; peak CPU memory cannot be measured here."
        )
    return int(match.group(1))


def _release_free_memory() -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``), so the baseline is what
    is live."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the baseline may include freed memory the allocator keeps


def _reset_cpu_peak() -> None:
    _release_free_memory()
    try:
        _CLEAR_REFS.write_text("5")
    except OSError as error:
        raise RuntimeError(
            f"Cannot reset the peak resident memory ({_CLEAR_REFS}: {error}); "
            "CPU peak memory needs Linux. "
            "Measure on a Linux machine (Colab works) or on a CUDA device."
        ) from None


def _tensors(tree: object) -> Iterator[torch.Tensor]:
    """The tensors in an operation's arguments or results: nested tuples, lists and dict values.

    A plain recursion, several times cheaper per operation than ``torch.utils._pytree``'s general
    flattening, which :class:`TensorBytes` would otherwise pay on every operation it sees.
    """
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (tuple, list)):
        for item in tree:
            yield from _tensors(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from _tensors(item)


class TensorBytes(TorchDispatchMode):
    """Count the bytes of tensor storages created while the mode is active: ``live`` now,
    ``peak`` at most.

    A storage is counted once, when an operation first returns it (views and in-place results
    reuse an input's storage and add nothing), and uncounted when it is freed. Storages that
    existed before the mode was entered are the baseline and never counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._counted: set[int] = set()

    def _release(self, address: int, nbytes: int) -> None:
        self._counted.discard(address)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs))}
        for tensor in _tensors(out):
            storage = tensor.untyped_storage()
            address, nbytes = storage.data_ptr(), storage.nbytes()
            if nbytes and address not in inputs and address not in self._counted:
                self._counted.add(address)
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._release, address, nbytes)
        return out


COUNTS = ("tensors", "process")


@contextlib.contextmanager
def peak_memory(device: str | torch.device = "cpu", count: str = "tensors") -> Iterator[PeakMemory]:
    """Measure the peak memory used inside the ``with`` block, above the level at entry.

    ``count`` chooses the CPU method (``"tensors"`` or ``"process"``); on CUDA the allocator
    counts tensors. See the module docstring.
    """
    device = torch.device(device)
    if count not in COUNTS:
        raise ValueError(f"count must be one of {COUNTS}, got {count!r}.")
    if device.type == "cuda" or count == "process":
        gc.collect()  # garbage freed inside the block would lower the peak below the baseline
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        result = PeakMemory(str(device), "torch.cuda.max_memory_allocated")
        yield result
        torch.cuda.synchronize(device)
        result.bytes = torch.cuda.max_memory_allocated(device) - base
    elif device.type == "cpu" and count == "tensors":
        result = PeakMemory("cpu", "tensor storages counted by TensorBytes")
        with TensorBytes() as counter:
            yield result
        result.bytes = counter.peak
    elif device.type == "cpu":
        if not _STATUS.exists():
            raise RuntimeError(
                "Peak process memory is read from /proc/self/status, "
                "which this system lacks (not Linux); "
                "use count='tensors', or measure on Linux (Colab works) or on a CUDA device."
            )
        _reset_cpu_peak()
        base = _rss_kib("VmRSS")
        result = PeakMemory("cpu", "VmHWM after clear_refs (Linux)")
        yield result
        result.bytes = max(0, _rss_kib("VmHWM") - base) * 1024
    else:
        raise ValueError(f"peak_memory supports 'cpu' and 'cuda' devices, got {device}.")


GRADIENT_METHODS = ("adjoint", "torchdiffeq adjoint", "backprop through solver")


def gradient_cost(
    how: str,
    func: torch.nn.Module,
    y0: torch.Tensor,
    n_steps: int,
    method: str = "rk4",
    t1: float = 1.0,
) -> dict:
    """Peak memory, seconds and function evaluations of one gradient of ``L = sum z(t1)^2``.

    ``z`` solves ``dz/dt = func(t, z)``, ``z(0) = y0`` with ``n_steps`` equal fixed steps of
    ``method``; ``how`` is one of :data:`GRADIENT_METHODS`: the from-scratch adjoint
    (:func:`dyndl_lite.adjoint.odeint_adjoint`), torchdiffeq's ``odeint_adjoint``, or
    backpropagation through :func:`dyndl_lite.solvers.odeint`. Returns a dict with
    ``peak_mib``, ``seconds``, ``nfe_forward`` and ``nfe_backward``.
    """
    import time

    import torchdiffeq

    from dyndl_lite import adjoint, solvers
    from dyndl_lite.models.blocks import CountedField

    if how not in GRADIENT_METHODS:
        raise ValueError(f"how must be one of {GRADIENT_METHODS}, got {how!r}.")
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}.")
    field = CountedField(func)
    t = torch.tensor([0.0, t1], dtype=y0.dtype, device=y0.device)
    h = t1 / n_steps
    solve = {
        "adjoint": lambda: adjoint.odeint_adjoint(field, y0, t, method, h),
        "torchdiffeq adjoint": lambda: torchdiffeq.odeint_adjoint(
            field, y0, t, method=method, options={"step_size": h}
        ),
        "backprop through solver": lambda: solvers.odeint(field, y0, t, method, h),
    }[how]

    def gradient() -> tuple[int, float]:
        field.nfe = 0
        func.zero_grad(set_to_none=True)
        start = time.perf_counter()
        loss = solve()[-1].square().sum()
        nfe_forward = field.nfe
        loss.backward()
        if y0.device.type == "cuda":
            torch.cuda.synchronize(y0.device)
        return nfe_forward, time.perf_counter() - start

    nfe_forward, seconds = gradient()  # timed without instrumentation ...
    nfe_total = field.nfe
    with peak_memory(y0.device) as peak:  # ... memory in a second, identical run
        gradient()
    func.zero_grad(set_to_none=True)
    return {
        "peak_mib": peak.mib,
        "seconds": seconds,
        "nfe_forward": nfe_forward,
        "nfe_backward": nfe_total - nfe_forward,
    }
