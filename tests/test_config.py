import pytest
import torch

from dyndl_lite import config


def test_mode_defaults_to_quick_without_cuda(monkeypatch):
    monkeypatch.delenv(config.MODE_VARIABLE, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.get_mode() == "quick"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_mode() == "full"


def test_mode_from_environment_and_argument(monkeypatch):
    monkeypatch.setenv(config.MODE_VARIABLE, "FULL")
    assert config.get_mode() == "full"
    assert config.get_mode("quick") == "quick"


@pytest.mark.parametrize("bad", ["fast", "Quick-ish", "1"])
def test_unknown_mode_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv(config.MODE_VARIABLE, bad)
    with pytest.raises(ValueError, match=r"DYNDL_MODE.*quick, full"):
        config.get_mode()
    with pytest.raises(ValueError, match="the argument"):
        config.get_mode(bad)


def test_device_choice(monkeypatch):
    monkeypatch.delenv(config.DEVICE_VARIABLE, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.get_device() == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        config.get_device("cuda")


def test_seed_everything_makes_draws_repeatable():
    generator = config.seed_everything(7)
    first = (torch.rand(3), torch.rand(2, generator=generator))
    generator = config.seed_everything(7)
    second = (torch.rand(3), torch.rand(2, generator=generator))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    with pytest.raises(ValueError, match="non-negative integer"):
        config.seed_everything(-1)


def test_unknown_or_missing_devices_are_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(config.DEVICE_VARIABLE, "tpu")
    with pytest.raises(
        ValueError, match=r"Unknown device 'tpu' from \$DYNDL_DEVICE; use one of cpu, cuda, mps"
    ):
        config.get_device()
    with pytest.raises(ValueError, match="'meta' from the device argument is not supported"):
        config.get_device("meta")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="MPS backend is not available"):
        config.get_device("mps")
    with pytest.raises(TypeError, match="device must be a string"):
        config.get_device(0.5)
    assert config.get_device(" cpu ") == torch.device("cpu")
