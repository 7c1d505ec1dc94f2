"""Flush-to-zero: PGD on trained networks with and without denormal floats flushed.

Trained networks hold weights below float32's smallest normal number (``|w| < 1.18e-38``); on some
CPUs every multiplication with a denormal takes a slow microcode path. The book evaluates and
trains under :func:`dyndl_lite.config.flush_denormals`; this benchmark measures what that buys:
the same PGD attack (10 steps of eps/5, eps 0.3) on the same test images, timed with IEEE
denormals and with flush-to-zero, and checks that the predictions after the attack agree. Each
runs in its own process (``$DYNDL_DENORMALS=keep`` or ``flush``): torch's worker threads take
their flag when they start, so one process cannot measure both.

Usage: ``python -m bench.denormals [--images 200] [--repeats 2]`` (``$DYNDL_DATA`` must hold
official MNIST; the authors' networks are included when their files are in the data cache).
Writes ``bench/results/denormals.json``. The ratio depends on the CPU: state its model (the file
records it) beside any number quoted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from bench.common import save
from dyndl_lite import attacks, released
from dyndl_lite.config import DENORMALS, DENORMALS_VARIABLE
from dyndl_lite.data import DatasetNotFoundError, load_mnist
from dyndl_lite.experiments import yan

EPS = 0.3


def denormal_count(net: torch.nn.Module) -> int:
    """How many parameters are nonzero and below float32's smallest normal number."""
    tiny = torch.finfo(torch.float32).tiny
    return sum(
        int(((p != 0) & (p.abs() < tiny)).sum()) for p in net.parameters() if p.is_floating_point()
    )


def networks() -> dict[str, torch.nn.Module]:
    """The Gaussian-trained ODENet and CNN of seed 0 (the book's longest run), and the authors'
    released networks where their files are at hand."""
    found = {}
    for model in ("cnn", "odenet"):
        if yan.longest_epochs(model, 0, "gaussian") is not None:
            net, record = yan.load(model, 0, "gaussian")
            found[f"book's {record['name']}"] = net
    for model in released.RELEASED:
        try:
            found[f"authors' {model}"] = released.load(model)[0]
        except DatasetNotFoundError as missing:
            print(f"skipping the authors' {model}: {missing}")
    return found


def timed_pgd(images: int, repeats: int) -> dict[str, dict]:
    """In this process, under its ``$DYNDL_DENORMALS``: per network, the best-of-``repeats``
    seconds of PGD on the first ``images`` test images, the predictions on the attacked images
    and the network's denormal weights."""
    test = load_mnist("test", allow_fallback=False)
    x, y = test.images[:images], test.labels[:images]
    found = {}
    for label, net in networks().items():
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            adversarial = attacks.pgd(net, x, y, EPS, step=EPS / 5, steps=yan.PGD_STEPS)
            best = min(best, time.perf_counter() - start)
        with torch.inference_mode():
            predictions = net(adversarial).argmax(1).tolist()
        denormals = denormal_count(net)
        found[label] = {"seconds": best, "predictions": predictions, "denormals": denormals}
    return found


def in_process(policy: str, images: int, repeats: int) -> dict[str, dict]:
    """:func:`timed_pgd` in a fresh process with ``$DYNDL_DENORMALS=policy``."""
    command = [sys.executable, "-m", "bench.denormals", "--images", str(images)]
    command += ["--repeats", str(repeats), "--policy", policy]
    env = {**os.environ, DENORMALS_VARIABLE: policy}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--policy", choices=DENORMALS, help="(internal) time one policy here")
    args = parser.parse_args(argv)
    if args.policy:
        print(json.dumps(timed_pgd(args.images, args.repeats)))
        return 0
    ieee = in_process("keep", args.images, args.repeats)
    flushed = in_process("flush", args.images, args.repeats)
    results = {"images": args.images, "eps": EPS, "steps": yan.PGD_STEPS, "networks": {}}
    for label, slow in ieee.items():
        fast = flushed[label]
        agree = sum(a == b for a, b in zip(slow["predictions"], fast["predictions"], strict=True))
        row = {
            "denormal_weights": slow["denormals"],
            "seconds_ieee": round(slow["seconds"], 2),
            "seconds_flushed": round(fast["seconds"], 2),
            "speed-up": round(slow["seconds"] / fast["seconds"], 2),
            "predictions_agree": agree,
        }
        results["networks"][label] = row
        print(f"{label}: {row}")
    results["summary"] = [
        {
            "measure": f"PGD time with IEEE denormals / flushed, {label} "
            f"({row['denormal_weights']} denormal weights, {args.images} images)",
            "value": f"{row['speed-up']:.2f}x",
            "goal": "at least 0.95 (never slower, within timing noise); same predictions",
            "met": row["speed-up"] >= 0.95 and row["predictions_agree"] == args.images,
        }
        for label, row in results["networks"].items()
    ]
    print(f"wrote {save('denormals', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
