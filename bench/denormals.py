"""Flush-to-zero: PGD on trained networks with and without denormal floats flushed.

Trained networks hold weights below float32's smallest normal number (``|w| < 1.18e-38``); on some
CPUs every multiplication with a denormal takes a slow microcode path. The book evaluates and
trains under :func:`dyndl_lite.config.flush_denormals`; this benchmark measures what that buys:
the same PGD attack (10 steps of eps/5, eps 0.3) on the same test images, timed with IEEE
denormals and with flush-to-zero, and checks that the predictions after the attack agree.

Usage: ``python -m bench.denormals [--images 200] [--repeats 2]`` (``$DYNDL_DATA`` must hold
official MNIST; the authors' networks are included when their files are in the data cache).
Writes ``bench/results/denormals.json``. The ratio depends on the CPU: state its model (the file
records it) beside any number quoted.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from bench.common import save
from dyndl_lite import attacks, released
from dyndl_lite.config import keep_denormals
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


def timed_pgd(net: torch.nn.Module, x, y, flush: bool, repeats: int) -> tuple[float, torch.Tensor]:
    """Best-of-``repeats`` seconds of PGD on ``(x, y)`` with or without flush-to-zero, and the
    predictions on the attacked images."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.nullcontext() if flush else keep_denormals():
            adversarial = attacks.pgd(net, x, y, EPS, step=EPS / 5, steps=yan.PGD_STEPS)
        best = min(best, time.perf_counter() - start)
    with torch.inference_mode():
        return best, net(adversarial).argmax(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    test = load_mnist("test", allow_fallback=False)
    x, y = test.images[: args.images], test.labels[: args.images]
    results = {"images": len(x), "eps": EPS, "steps": yan.PGD_STEPS, "networks": {}}
    for label, net in networks().items():
        slow, before = timed_pgd(net, x, y, flush=False, repeats=args.repeats)
        fast, after = timed_pgd(net, x, y, flush=True, repeats=args.repeats)
        row = {
            "denormal_weights": denormal_count(net),
            "seconds_ieee": round(slow, 2),
            "seconds_flushed": round(fast, 2),
            "speed-up": round(slow / fast, 2),
            "predictions_agree": int((before == after).sum()),
        }
        results["networks"][label] = row
        print(f"{label}: {row}")
    results["summary"] = [
        {
            "measure": f"PGD time with IEEE denormals / flushed, {label} "
            f"({row['denormal_weights']} denormal weights, {len(x)} images)",
            "value": f"{row['speed-up']:.2f}x",
            "goal": "at least 0.95 (never slower, within timing noise); same predictions",
            "met": row["speed-up"] >= 0.95 and row["predictions_agree"] == len(x),
        }
        for label, row in results["networks"].items()
    ]
    print(f"wrote {save('denormals', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
