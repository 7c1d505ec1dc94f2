"""Random SIGKILLs against two concurrent runs on one folder (issue 30).

Each round starts two ``train`` processes on one ``--out`` folder (the same run twice, or two
runs), kills one or both at a random moment, and checks that every process ended in one of three
ways: finished, refused with a one-line ``error:`` (no traceback), or killed; and that the folder
is consistent (every state and checkpoint passes its SHA-256 check). At the end each run is
finished without interference and must give the bitwise weights of an uninterrupted run.

Rounds: ``$DYNDL_KILL_ROUNDS`` (default 3; run 10 or more by hand); ``$DYNDL_KILL_SEED``
picks the random moments.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dyndl_lite import pretrained
from dyndl_lite.data import load_mnist
from dyndl_lite.state import StateStore

ROUNDS = int(os.environ.get("DYNDL_KILL_ROUNDS", "3"))
SEED = int(os.environ.get("DYNDL_KILL_SEED", "30"))
TRAIN = ["train", "chen", "--model", "mlp", "--epochs", "5", "--train-subset", "1000"]
TRAIN += ["--no-progress", "--threads", "1"]


def run_name(seed: int) -> str:
    return f"chen-mlp-5ep-seed{seed}"


def start(out: Path, seed: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dyndl_lite", *TRAIN, "--seed", str(seed), "--out", str(out)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def ending(process: subprocess.Popen) -> str:
    """``"finished"``, ``"killed"`` or ``"refused"``; anything else fails the test."""
    _, error = process.communicate(timeout=600)
    text = error.decode()
    if process.returncode == -signal.SIGKILL:
        return "killed"
    assert "Traceback" not in text, text
    if process.returncode == 0:
        return "finished"
    lines = text.strip().splitlines()
    assert process.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), text
    return "refused"


def check_consistent(out: Path) -> None:
    """Every saved state and every checkpoint in ``out`` passes its own SHA-256 check."""
    for folder in out.glob("*.state"):
        store = StateStore(folder)
        if store.exists():
            saved = store.read()
            assert pretrained.sha256(folder / saved["tensors"]) == saved["tensors_sha256"]
        else:  # only an interrupted first save can leave tensors without a pointer
            assert sorted(p.name for p in folder.glob("epoch-*.safetensors")) in (
                [],
                ["epoch-0001.safetensors"],
            )
    for record_path in out.glob("*.json"):
        record = json.loads(record_path.read_text())
        weights = record_path.with_suffix(".safetensors")
        assert pretrained.sha256(weights) == record["weights_sha256"], record_path


def weights(folder: Path, seed: int) -> dict[str, torch.Tensor]:
    return load_file(str(folder / f"{run_name(seed)}.safetensors"))


@pytest.mark.slow  # trains on MNIST: left out of make test-fast
def test_random_sigkills_on_two_runs_in_one_folder_leave_a_clear_error_or_a_consistent_state(
    tmp_path,
):
    try:
        load_mnist("test", allow_fallback=False)
    except FileNotFoundError:
        pytest.skip("needs the official MNIST files ($DYNDL_DATA)")
    straight, shared = tmp_path / "straight", tmp_path / "shared"
    began = time.monotonic()
    for seed in (0, 1):
        assert ending(start(straight, seed)) == "finished"
    one_run = (time.monotonic() - began) / 2  # start-up, data and five epochs, on this machine
    rng = random.Random(SEED)
    endings = []
    for _ in range(ROUNDS):
        processes = [start(shared, seed) for seed in rng.choice([(0, 0), (0, 1), (1, 1)])]
        time.sleep(rng.uniform(0.2, 1.2) * one_run)
        for process in rng.sample(processes, rng.choice([1, 2])):
            process.send_signal(signal.SIGKILL)
        endings += [ending(process) for process in processes]
        check_consistent(shared)
    for seed in (0, 1):  # finish both runs undisturbed
        if not pretrained.exists(run_name(seed), shared):
            assert ending(start(shared, seed)) == "finished"
        a, b = weights(straight, seed), weights(shared, seed)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list(shared.rglob("*.tmp")), "a killed save's temporaries were left behind"
    print(f"{ROUNDS} rounds, runs of {one_run:.1f} s:", {e: endings.count(e) for e in set(endings)})
    assert "killed" in endings
