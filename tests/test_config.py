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
