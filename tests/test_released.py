"""The authors' released networks (dyndl_lite.released): fetched by SHA-256, unpickled only through
the allowlist, copied into the book's models with logits that agree."""

import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch

from dyndl_lite import data, released
from dyndl_lite.data import ChecksumError, DatasetNotFoundError

HAVE_FILES = all(entry.cached().is_file() for entry in released.RELEASED.values())
needs_files = pytest.mark.skipif(
    not HAVE_FILES, reason="the authors' files are not in $DYNDL_DATA/TisODE (see its README)"
)


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def test_download_keeps_a_file_only_when_its_sha256_matches(tmp_path):
    source = tmp_path / "served.bin"
    source.write_bytes(b"the authors' bytes")
    target = tmp_path / "cache" / "model_best.pth"
    target.parent.mkdir()
    with pytest.raises(ChecksumError, match="sha256"):
        data.download(source.as_uri(), target, "0" * 64, algorithm="sha256")
    assert list(target.parent.iterdir()) == []  # neither the file nor a partial one is left
    data.download(source.as_uri(), target, _sha256(source.read_bytes()), algorithm="sha256")
    assert target.read_bytes() == source.read_bytes()


def test_fetch_refuses_a_cached_file_with_another_sha256_without_unpickling(tmp_path, monkeypatch):
    monkeypatch.delenv(data.OFFLINE_VARIABLE, raising=False)
    entry = released.entry("cnn")
    path = entry.cached(tmp_path)
    path.parent.mkdir(parents=True)
    marker = tmp_path / "ran"
    path.write_bytes(pickle.dumps(_Payload(marker)))  # would create `marker` if unpickled
    with pytest.raises(released.ReleasedNetworkError, match="not the pinned"):
        released.fetch("cnn", tmp_path)
    with pytest.raises(released.ReleasedNetworkError, match="refusing to unpickle"):
        released.read_weights(path, entry.sha256)
    assert not marker.exists()


def test_fetch_offline_names_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv(data.OFFLINE_VARIABLE, "1")
    with pytest.raises(DatasetNotFoundError, match="MNIST_ODE_gaus_1"):
        released.fetch("odenet", tmp_path)


class _Payload:
    """A pickle whose loading would run ``os.mkdir(marker)``: the allowlist must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_allowlist_refuses_a_pickle_with_another_global(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save(
        {"weights": torch.zeros(2), "hook": _Payload(marker)},
        path,
        _use_new_zipfile_serialization=False,  # the authors' legacy format
    )
    with pytest.raises(
        pickle.UnpicklingError, match="refused global posix.mkdir|refused global os"
    ):
        released.read_weights(path, _sha256(path.read_bytes()))
    assert not marker.exists()


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="cnn, odenet, tisode"):
        released.entry("resnet")


@needs_files
@pytest.mark.parametrize("model", sorted(released.RELEASED))
def test_released_weights_give_the_authors_logits(model):
    net, record = released.load(model, check_images=8)
    assert record["weights_sha256"] == released.entry(model).sha256
    assert record["logit_check"]["max_abs_difference"] <= 1e-4
    weights = released.read_weights(released.fetch(model), released.entry(model).sha256)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.allclose(net(x), released.reference_logits(model, weights, x), atol=1e-4)


@needs_files
def test_the_logit_check_catches_a_wrong_mapping():
    """Swapping two same-shaped tensors passes the shape check but not the logit check."""
    weights = released.read_weights(released.fetch("cnn"), released.entry("cnn").sha256)
    swapped = list(weights)
    convs = [i for i, (_, t) in enumerate(weights) if t.shape == (64, 64, 3, 3)]
    swapped[convs[-1]], swapped[convs[-2]] = weights[convs[-2]], weights[convs[-1]]
    net = released.copy_into(released.build_released("cnn"), swapped).eval()
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        gap = (net(x) - released.reference_logits("cnn", weights, x)).abs().max().item()
    assert gap > 1e-3
