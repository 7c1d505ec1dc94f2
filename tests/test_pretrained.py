"""Checkpoints round-trip exactly, carry their provenance, and refuse what they cannot load."""

import json

import pytest
import torch
from torch import nn

from dyndl_lite import pretrained


def net():
    return nn.Sequential(nn.Linear(3, 4), nn.GroupNorm(2, 4), nn.Linear(4, 2))


def test_round_trip_is_exact_and_record_has_provenance(tmp_path):
    torch.manual_seed(0)
    model = net()
    path = pretrained.save(model, "test-mlp-seed0", {"seed": 0, "test_acc": 0.5}, folder=tmp_path)
    assert path.suffix == ".safetensors" and pretrained.exists("test-mlp-seed0", folder=tmp_path)
    other = net()
    record = pretrained.load(other, "test-mlp-seed0", folder=tmp_path)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    for key in (
        "seed",
        "test_acc",
        "package_version",
        "git_commit",
        "torch_version",
        "date",
        "weights_sha256",
    ):
        assert key in record
    assert record.pop("loaded_from") == str(tmp_path)
    assert json.loads((tmp_path / "test-mlp-seed0.json").read_text()) == record


def test_missing_wrong_and_corrupt_checkpoints_are_explained(tmp_path):
    assert not pretrained.exists("test-mlp-seed1", folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m dyndl_lite train"):
        pretrained.load(net(), "test-mlp-seed1", folder=tmp_path)
    with pytest.raises(ValueError, match="seed"):
        pretrained.save(net(), "Bad Name", {}, folder=tmp_path)
    pretrained.save(net(), "test-mlp-seed0", {}, folder=tmp_path)
    with pytest.raises(pretrained.CheckpointError, match="does not fit"):
        pretrained.load(nn.Linear(3, 2), "test-mlp-seed0", folder=tmp_path)
    weights = tmp_path / "test-mlp-seed0.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(OSError, match="SHA-256"):
        pretrained.load(net(), "test-mlp-seed0", folder=tmp_path)


def test_provenance_names_the_checkpoint_its_folder_and_budget():
    from dyndl_lite.models.chen import chen_model

    record = pretrained.load(chen_model("mlp"), "chen-mlp-seed0", pretrained.SHIPPED_DIR)
    line = pretrained.provenance(record)
    assert line.startswith("chen-mlp-seed0 (shipped with the package): ")
    assert f"{record['epochs_run']} of the full recipe's 160 epochs on 60,000 images" in line
