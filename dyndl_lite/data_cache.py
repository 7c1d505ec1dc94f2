"""The data cache folder: where data files live, whether downloads are allowed, and checked,
atomic downloads.

The folder is ``$DYNDL_DATA`` if set, else ``~/.cache/dyndl_lite`` (:func:`data_root`);
``$DYNDL_OFFLINE`` forbids downloads (:func:`offline`). :func:`download` writes to a temporary file
that is renamed into place only once its checksum is right, so an interrupted download never leaves
a half-written file. An OS error under the folder (a file where a folder should be, permission
denied) is raised with a message naming the folder (:func:`exists`, :func:`check_root`), never read
as a missing file. The loaders of :mod:`dyndl_lite.data` and the released networks of
:mod:`dyndl_lite.released` keep their files here.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from dyndl_lite import atomic

DATA_VARIABLE = "DYNDL_DATA"
OFFLINE_VARIABLE = "DYNDL_OFFLINE"


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not on disk and cannot be downloaded here."""


class ChecksumError(OSError):
    """A data file on disk does not have its official checksum."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``root`` if given, else ``$DYNDL_DATA``, else ``~/.cache/dyndl_lite``."""
    if root is None:
        root = os.environ.get(DATA_VARIABLE) or Path.home() / ".cache" / "dyndl_lite"
    return Path(root).expanduser()


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    """The MD5 hex digest of the file ``path``, read in chunks of ``chunk`` bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str, destination: Path, checksum: str, timeout: float = 30.0, algorithm: str = "md5"
) -> Path:
    """Download ``url`` to ``destination`` atomically, keeping it only if its ``algorithm`` digest
    (``"md5"`` or ``"sha256"``) is ``checksum``.

    The bytes go to a temporary file in the destination folder, which is renamed
    into place after the checksum matches and deleted otherwise.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = atomic.temporary_path(destination)
    try:
        with open(partial, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 20):
                out.write(block)
        with open(partial, "rb") as handle:
            got = hashlib.file_digest(handle, algorithm).hexdigest()
        if got != checksum:
            raise ChecksumError(
                f"Downloaded {url} has {algorithm} {got}, expected {checksum}; "
                "the server sent a bad file."
            )
        atomic.commit(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return destination


def offline() -> bool:
    """Whether ``$DYNDL_OFFLINE`` forbids downloads (set to anything but "", "0" or "false")."""
    return os.environ.get(OFFLINE_VARIABLE, "") not in ("", "0", "false", "False")


def exists(path: Path) -> bool:
    """Whether ``path`` exists; an OS error other than "no such file" (permission denied, a file
    where a folder should be) is raised with a message naming the cache folder, never read as
    "missing"."""
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError as error:
        raise OSError(
            error.errno,
            f"cannot read {path} ({error.strerror}); check ${DATA_VARIABLE} or the root argument "
            "(it must be a readable folder)",
        ) from error
    return True


def check_root(root: Path) -> None:
    """Raise if the cache folder exists but is not a folder (a common typo in ``$DYNDL_DATA``)."""
    for folder in (root, *root.parents):
        if exists(folder):
            if not folder.is_dir():
                raise NotADirectoryError(
                    f"the data folder {root} cannot be used: {folder} is a file, not a folder; "
                    f"point ${DATA_VARIABLE} (or root=) at a folder."
                )
            return


#: network failures, after which a loader may fall back or say how to get the data (local OS
#: errors, such as a full disk, are raised)
NETWORK_ERRORS = (
    urllib.error.URLError,
    TimeoutError,
    ConnectionError,
    http.client.HTTPException,
    ChecksumError,
)
