"""Run-time configuration read in one place: mode, device and seeds.

The book runs in two modes:

* ``quick``: small subsets, few epochs, few seeds; a 2-core CPU runs the whole
  book in minutes. Default where no CUDA device is present.
* ``full``: the papers' recipes (epochs, seeds, full test sets). Default where
  CUDA is present.

The environment variable ``DYNDL_MODE`` overrides the default; a notebook may
override it again in its parameters cell by passing ``mode=...`` around.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

MODES = ("quick", "full")
MODE_VARIABLE = "DYNDL_MODE"
DEVICE_VARIABLE = "DYNDL_DEVICE"


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
    else ``cpu``. Asking for CUDA on a machine without it is a clear error.
    """
    if device is None:
        device = os.environ.get(DEVICE_VARIABLE) or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"Device {device} was requested but CUDA is not available; "
            f"unset ${DEVICE_VARIABLE} or pass device='cpu'."
        )
    return device


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


def describe(mode: str | None = None, device: str | torch.device | None = None) -> str:
    """One line naming mode, device and library versions, for the top of a notebook."""
    return (
        f"mode={get_mode(mode)}, device={get_device(device)}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
