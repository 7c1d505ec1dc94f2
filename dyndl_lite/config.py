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


_flush_depth = 0
_kept = 0


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats (``|x| < 1.2e-38`` in float32) as zero inside the block, for speed.

    Trained networks hold such weights (weight decay drives them towards 0: about a thousand in
    the book's ODENet, tens of thousands in the authors' released networks). On some CPUs every
    multiplication with one takes a slow microcode path: on the machine of the issue that asked
    for this, PGD on a trained ODENet ran twice as slow without flushing. On others it costs
    nothing (``bench/denormals.py`` measures it on yours; see the Performance appendix). Values
    below 1.2e-38 cannot change a prediction. The CPU flag is global to the thread, so it is
    set on entering the outermost block and cleared on leaving it (torch has no getter: the
    process is assumed to start with IEEE denormals, its default); other code, such as
    hypothesis's float strategies, needs denormals back. Also usable as a decorator
    (``@flush_denormals()``). A no-op where the CPU has no flush-to-zero mode.

    >>> tiny = torch.tensor([1e-39])          # a float32 denormal
    >>> with flush_denormals():
    ...     inside = (tiny * 1.0).item()
    >>> inside, (tiny * 1.0).item() > 0       # flushed inside (on x86), restored after
    (0.0, True)
    """
    global _flush_depth
    if _kept:
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


@contextmanager
def keep_denormals() -> Iterator[None]:
    """Inside this block :func:`flush_denormals` does nothing, so the package computes with IEEE
    denormals: for measuring what flushing buys (``bench/denormals.py``), not for use."""
    global _kept
    _kept += 1
    try:
        yield
    finally:
        _kept -= 1


def describe(mode: str | None = None, device: str | torch.device | None = None) -> str:
    """One line naming mode, device and library versions, for the top of a notebook."""
    return (
        f"mode={get_mode(mode)}, device={get_device(device)}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
