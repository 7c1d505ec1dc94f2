import os
import subprocess
import sys

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


_WORKER_CHECK = """
import torch
from dyndl_lite import config
config.set_threads(2)  # not torch.set_num_threads: a thread it adds would not flush
big = torch.full((1 << 22,), 1e-39)  # float32 denormals, split between the two threads
with config.flush_denormals():
    inside = int(((big * 1.0) != 0).sum())
print(inside, int(((torch.tensor([1e-39]) * 1.0) != 0).sum()))
"""


def _worker_check(policy: str, mkl_threads: str = "2") -> tuple[int, int]:
    """In a fresh process that asks for two threads after importing the package
    (:func:`config.set_threads`), with
    ``$DYNDL_DENORMALS=policy``: the denormals left by a large product inside
    :func:`config.flush_denormals`, and by a one-element product on the main thread outside
    it. ``$MKL_NUM_THREADS=1`` makes torch start with one thread, so the second joins later."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": mkl_threads}
    env[config.DENORMALS_VARIABLE] = policy
    done = subprocess.run(
        [sys.executable, "-c", _WORKER_CHECK], env=env, capture_output=True, text=True, check=True
    )
    inside, outside = done.stdout.split()
    return int(inside), int(outside)


def test_every_thread_flushes_inside_the_block() -> None:
    """Only the calling thread's flag used to be set: the worker thread's half of a large
    operation kept its denormals, and PGD ran 18 times slower on an Intel Xeon. A thread added
    after the import by config.set_threads is started flushing too."""
    assert _worker_check("flush") == (0, 1)
    assert _worker_check("flush", mkl_threads="1") == (0, 1)


def test_keep_turns_flushing_off(monkeypatch) -> None:
    """``$DYNDL_DENORMALS=keep``: the block leaves IEEE denormals (bench/denormals.py's
    baseline, which also starts no worker thread flushing: see its results)."""
    monkeypatch.setenv(config.DENORMALS_VARIABLE, "keep")
    with config.flush_denormals():
        assert _denormals_survive()


def test_a_bad_denormals_policy_or_thread_count_is_named(monkeypatch) -> None:
    monkeypatch.setenv(config.DENORMALS_VARIABLE, "sometimes")
    with pytest.raises(ValueError, match="DYNDL_DENORMALS"):
        config.denormals_policy()
