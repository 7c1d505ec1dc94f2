"""Atomic file writes: a file is either its old complete self or its new complete self, never
half-written.

The recipe (POSIX): write to a temporary file in the *same* folder, flush it to
disk (``fsync``), ``os.replace`` it over the target (an atomic rename), then
``fsync`` the folder so the rename itself survives a power cut. A process killed
at any moment leaves at most a stray ``.<name>.*.tmp`` file, never a torn target.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def temporary_path(target: Path) -> Path:
    """A fresh, empty temporary file beside ``target`` (``.<target name>.<random>.tmp``)."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    return Path(name)


def remove_strays(folder: Path, *targets: str) -> list[Path]:
    """Delete the stray temporaries (``.<target>.*.tmp``) that killed writes of the files named
    ``targets`` left in ``folder``; return them. Call it only while holding the lock of whatever
    writes those files, so that no live write loses its temporary.
    """
    strays = [p for target in targets for p in Path(folder).glob(f".{target}.*.tmp")]
    for path in strays:
        path.unlink(missing_ok=True)
    return strays


def flush(path: Path) -> None:
    """Force ``path``'s bytes to disk."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Force ``folder``'s entries (renames, deletions) to disk; a no-op where folders cannot be
    opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(temporary: Path, target: Path) -> None:
    """Flush ``temporary`` and rename it over ``target`` (atomic), then flush the folder.

    The file gets the usual permissions (``0o666`` less the umask), not ``mkstemp``'s private
    ``0o600``.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    flush(temporary)
    os.replace(temporary, target)
    fsync_dir(target.parent)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        temporary.write_text(text)
        commit(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
