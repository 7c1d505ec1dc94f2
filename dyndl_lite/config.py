"""Run-time configuration read in one place: mode, device and seeds.

The book runs in two modes:

* ``quick``: the shipped checkpoints evaluated on subsets of the test sets (and
  the chapters' own small networks trained briefly); a laptop-class CPU runs the
  book in minutes. Default where no CUDA device is present.
* ``full``: the same checkpoints evaluated under the papers' full protocols
  (whole test sets, every seed). Default where CUDA is present. Training with the
  papers' full recipes is ``make reproduce PLAN=paper``, not a mode.

The environment variable ``DYNDL_MODE`` overrides the default; a notebook may
override it again in its parameters cell by passing ``mode=...`` around.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

MODES = ("quick", "full")
MODE_VARIABLE = "DYNDL_MODE"
DEVICE_VARIABLE = "DYNDL_DEVICE"
DEVICES = ("cpu", "cuda", "mps")


def get_mode(mode: str | None = None) -> str:
    """Return the run mode: ``mode`` if given, else ``$DYNDL_MODE``, else a default.

    The default is ``"full"`` when CUDA is available and ``"quick"`` otherwise.
    An unknown value raises ``ValueError`` naming the accepted values.
    """
    source = "the argument"
    if mode is None:
        mode = os.environ.get(MODE_VARIABLE)
        source = f"${MODE_VARIABLE}"
    if mode is None or mode == "":
        return "full" if torch.cuda.is_available() else "quick"
    normalised = mode.strip().lower()
    if normalised not in MODES:
        raise ValueError(
            f"Unknown mode {mode!r} from {source}; use one of {', '.join(MODES)} "
            f"(for example `export {MODE_VARIABLE}=quick`)."
        )
    return normalised


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return the torch device to compute on.

    ``device`` if given, else ``$DYNDL_DEVICE``, else ``cuda`` when available,
    else ``cpu``. Only ``cpu``, ``cuda[:k]`` and ``mps`` are supported: another name is a
    ``ValueError`` naming where it came from; asking for CUDA or MPS on a machine without
    it is a ``RuntimeError``.
    """
    source = "the device argument"
    if device is None:
        source = f"${DEVICE_VARIABLE}" if os.environ.get(DEVICE_VARIABLE) else "the default"
        device = os.environ.get(DEVICE_VARIABLE) or ("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(
            f"device must be a string such as 'cpu' or a torch.device, got {type(device).__name__}."
        )
    try:
        parsed = torch.device(device.strip() if isinstance(device, str) else device)
    except RuntimeError as error:
        raise ValueError(
            f"Unknown device {device!r} from {source}; "
            f"use one of {', '.join(DEVICES)} (e.g. 'cuda:0')."
        ) from error
    if parsed.type not in DEVICES:
        raise ValueError(
            f"Device {device!r} from {source} is not supported; use one of {', '.join(DEVICES)}."
        )
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"Device {parsed} was requested (from {source}) but CUDA is not available; "
                f"unset ${DEVICE_VARIABLE} or pass device='cpu'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"Device {parsed} was requested (from {source}) but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist."
            )
    if parsed.type == "mps" and not (
        hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    ):
        raise RuntimeError(
            f"Device {parsed} was requested (from {source}) "
            "but Apple's MPS backend is not available here; "
            f"unset ${DEVICE_VARIABLE} or pass device='cpu'."
        )
    return parsed


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a seeded CPU generator.

    The returned generator lets a caller draw reproducible numbers without
    depending on the global state that other cells may consume.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


DENORMALS_VARIABLE = "DYNDL_DENORMALS"
DENORMALS = ("flush", "keep")

_flush_depth = 0


def denormals_policy() -> str:
    """``$DYNDL_DENORMALS``: ``"flush"`` (the default: :func:`flush_denormals` flushes) or
    ``"keep"`` (IEEE denormals everywhere in this process: for ``bench/denormals.py``, which
    measures what flushing buys). Any other value is a ``ValueError``."""
    policy = os.environ.get(DENORMALS_VARIABLE, "flush").strip().lower()
    if policy not in DENORMALS:
        raise ValueError(f"${DENORMALS_VARIABLE} must be one of {DENORMALS}, got {policy!r}.")
    return policy


def _start_workers_flushing() -> None:
    """Start torch's CPU worker threads with flush-to-zero on, then clear it on this thread.

    ``torch.set_flush_denormal`` sets a flag of the calling thread only, but a CPU operation on a
    large tensor is split among worker threads (OpenMP), and each new thread inherits the
    creating thread's flag when it starts. So the flag is set here, while the package is
    imported, and one operation large enough to use every thread creates them with it. Measured
    on an Intel Xeon (2.8 GHz, 2 threads): PGD on 25 images of the authors' CNN took 5.9 s with
    only the main thread flushing and 0.33 s with both (``bench/denormals.py``). Threads that
    already run when the package is first imported keep their flag.
    """
    if denormals_policy() == "keep" or not torch.set_flush_denormal(True):
        return
    try:
        torch.zeros(1 << 22).add_(1.0)  # 4 M elements: every worker thread takes a part
    finally:
        torch.set_flush_denormal(False)


_start_workers_flushing()


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)``, with the worker threads that this adds started
    flushing denormals like the others (:func:`_start_workers_flushing`). Use it rather than
    ``torch.set_num_threads`` to raise the thread count: a thread that torch adds on its own
    starts from whatever flag the main thread has at that moment, IEEE outside
    :func:`flush_denormals`."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}.")
    torch.set_num_threads(threads)
    _start_workers_flushing()


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats (``|x| < 1.2e-38`` in float32) as zero inside the block, for speed.

    Trained networks hold such weights (weight decay drives them towards 0: about a thousand in
    the book's ODENet, tens of thousands in the authors' released networks). On some CPUs every
    multiplication with one takes a slow microcode path: PGD on a trained ODENet ran twice as
    slow without flushing on the machine of the issue that asked for this, and 18 times on an
    Intel Xeon once every thread flushed. On others it costs nothing (``bench/denormals.py``
    measures it on yours; see the Performance appendix). Values below 1.2e-38 cannot change a
    prediction.

    The flag belongs to a thread. On the calling thread it is set on entering the outermost
    block and cleared on leaving it (torch has no getter: the process is assumed to start with
    IEEE denormals, its default), because other code, such as hypothesis's float strategies,
    needs denormals back. torch's worker threads, which compute the larger operations, flush
    from the start, inside and outside the block: they are started flushing when the package is
    imported (:func:`_start_workers_flushing`), as no thread can set another's flag.
    ``$DYNDL_DENORMALS=keep`` (:func:`denormals_policy`) turns all of it off for the process.
    Also usable as a decorator (``@flush_denormals()``). A no-op where the CPU has no
    flush-to-zero mode.

    >>> tiny = torch.tensor([1e-39])          # a float32 denormal
    >>> with flush_denormals():
    ...     inside = (tiny * 1.0).item()
    >>> inside, (tiny * 1.0).item() > 0       # flushed inside (on x86), restored after
    (0.0, True)
    """
    global _flush_depth
    if denormals_policy() == "keep":
        yield
        return
    if _flush_depth == 0:
        torch.set_flush_denormal(True)
    _flush_depth += 1
    try:
        yield
    finally:
        _flush_depth -= 1
        if _flush_depth == 0:
            torch.set_flush_denormal(False)


def describe(mode: str | None = None, device: str | torch.device | None = None) -> str:
    """One line naming mode, device and library versions, for the top of a notebook."""
    return (
        f"mode={get_mode(mode)}, device={get_device(device)}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
