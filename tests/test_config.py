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


def _denormals_survive() -> bool:
    return (torch.tensor([1e-39]) * 1.0).item() > 0


def test_flush_denormals_is_scoped_and_restored_after_training_and_attacks() -> None:
    """Flush-to-zero is global CPU state: leaking it broke hypothesis's float strategies."""
    from dyndl_lite import attacks
    from dyndl_lite.train import count_correct

    assert _denormals_survive()
    with config.flush_denormals():
        with config.flush_denormals():  # nested: the inner exit must not clear it
            pass
        assert not _denormals_survive()
    assert _denormals_survive()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    count_correct(model, x, y, device="cpu")
    attacks.fgsm(model, x, y, eps=0.1)
    assert _denormals_survive()


def test_keep_denormals_switches_flushing_off_for_benchmarks() -> None:
    with config.keep_denormals(), config.flush_denormals():
        assert _denormals_survive()
    with config.flush_denormals():
        assert not _denormals_survive()
