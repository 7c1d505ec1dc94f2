"""Chapter 10's experiment: residual vs plain MNIST networks across a weight-decay sweep (Gai & Zhang 2021).

Networks: :func:`dyndl_lite.models.residual.mnist_tracknet` (tracks in R^32,
8 blocks; how tracks are formed is defined there, once). For each weight
decay in :data:`WEIGHT_DECAYS` and each architecture, :func:`train_one`
trains on the full MNIST training set with :data:`RECIPE` (through
``dyndl_lite.train.fit``), records after every epoch the training accuracy
and the mean LSS on :data:`TRACK_POINTS` fixed test images, saves 2-D
pictures of the tracks at a few epochs, and ships the weights as checkpoint
``gai-{resnet|plain}-wd{gamma}-seed{S}``. :func:`table` evaluates the
shipped checkpoints: test accuracy, mean LSS and exact OTS.

Paper numbers (:data:`PAPER_MNIST`, :data:`PAPER_CIFAR100`) are Gai & Zhang's,
copied here with their provenance; the book prints them beside ours.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
import math
import time

import numpy as np
import torch

from dyndl_lite.geodesic import _as_track, lss, ots, tracks
from dyndl_lite.models.residual import MNIST_DEPTH, MNIST_HIDDEN, MNIST_WIDTH, mnist_tracknet, pca_2d

WEIGHT_DECAYS = (0.0, 5e-4, 5e-3)  # three of the paper's five CIFAR-100 values (CPU budget of this session)
SEEDS = (0,)
EPOCHS = 5  # short CPU budget: five passes over the 60,000 training images
TRACK_POINTS = 1000  # fixed test images (seed 0 subset) for LSS during training
SNAPSHOT_POINTS = 200  # test images whose 2-D tracks are stored at SNAPSHOT_EPOCHS
OTS_POINTS = 2000  # test images for the exact OTS of the table (one assignment problem of this size)

# Gai & Zhang (2021), arXiv:2102.09235: MNIST ResNet with L2 regularisation.
PAPER_MNIST = {"lss": 1.12, "ots": 0.96}
# Gai & Zhang (2021), CIFAR-100 weight-decay sweep, values read off their plots (about +-0.02).
PAPER_CIFAR100 = {
    "weight_decay": [0.0, 5e-4, 1e-3, 5e-3, 1e-2],
    "resnet_test_acc_pct": [74.5, 76.4, 77.1, 79.7, 78.1],
    "plain_test_acc_pct": [57.4, 64.2, 69.6, 67.8, 44.2],
    "resnet_ots": [1.0, 1.0, 0.99, 0.96, 0.86],
    "plain_ots": [0.15, 0.0, 0.22, 0.06, 0.0],  # "~0" in the paper is written 0.0 here
    "resnet_lss": [1.38, 1.28, 1.30, 1.55, 1.82],
    "plain_lss": [4.6, 4.1, 4.0, 3.5, 3.9],
}


def recipe(weight_decay: float, epochs: int = EPOCHS):
    """The training recipe of every chapter-10 network: SGD, momentum 0.9, lr 0.01, x0.1 at 60% and 80% of training."""
    from dyndl_lite.train import Recipe, register_recipe

    return register_recipe(Recipe(
        name=f"gai-mnist-wd{wd_tag(weight_decay)}-{epochs}ep", epochs=epochs, batch_size=128, optimizer="sgd", lr=0.01,
        momentum=0.9, weight_decay=weight_decay, milestones=tuple(sorted({math.ceil(0.6 * epochs), math.ceil(0.8 * epochs)} - {epochs})), gamma=0.1,
    ))


def wd_tag(weight_decay: float) -> str:
    """``0`` -> ``"0"``, ``5e-4`` -> ``"5e-4"``, ``1e-2`` -> ``"1e-2"`` (used in checkpoint names)."""
    if weight_decay == 0:
        return "0"
    mantissa, exponent = f"{weight_decay:.0e}".split("e")
    return f"{mantissa}e-{int(exponent[1:])}" if exponent.startswith("-") else f"{mantissa}e{int(exponent)}"


def checkpoint_name(residual: bool, weight_decay: float, seed: int = 0) -> str:
    """``gai-resnet-wd5e-4-seed0`` or ``gai-plain-wd5e-4-seed0``."""
    return f"gai-{'resnet' if residual else 'plain'}-wd{wd_tag(weight_decay)}-seed{seed}"


def snapshot_epochs(epochs: int) -> tuple[int, ...]:
    """Epochs at which 2-D track pictures are stored: 1, then about a quarter, half and all of training."""
    return tuple(sorted({1, max(1, epochs // 4), max(1, epochs // 2), epochs}))


def mean_lss(model: torch.nn.Module, images: torch.Tensor) -> float:
    """Mean over images of the per-sample LSS of their tracks (tracks with a zero-length step left out)."""
    return lss_summary(tracks(model, images))[0]


def lss_summary(track: torch.Tensor | np.ndarray) -> tuple[float, int]:
    """(mean per-sample LSS, number of tracks left out) for tracks (n+1, m, d).

    A track with a zero-length step (a plain network whose relu layer maps it to
    the same point twice, e.g. a collapsed all-zero layer) has no defined LSS and
    is left out; the count is reported beside the mean. NaN if every track is left out.
    Tracks with NaN or Inf are an error (they are not zero-length steps).
    """
    track, _ = _as_track(track)
    if track.shape[1] == 0:
        raise ValueError("track holds no samples (shape (n+1, 0, d)); pass at least one track.")
    regular = np.all(np.linalg.norm(np.diff(track, axis=0), axis=-1) > 0, axis=0)
    mean = float(np.mean(lss(track[:, regular]))) if regular.any() else float("nan")
    return mean, int((~regular).sum())


def train_one(residual: bool, weight_decay: float, seed: int = 0, epochs: int = EPOCHS, train=None, test=None,
              save: bool = True, progress: bool = False, device=None) -> tuple[torch.nn.Module, dict]:
    """Train one network on MNIST (full training set unless ``train`` is given) and ship it as a checkpoint."""
    from dyndl_lite import pretrained
    from dyndl_lite.config import seed_everything
    from dyndl_lite.data import load_mnist
    from dyndl_lite.train import fit

    train = train if train is not None else load_mnist("train")
    test = test if test is not None else load_mnist("test")
    probe = test.subset(TRACK_POINTS, seed=0).images
    pictured = test.subset(SNAPSHOT_POINTS, seed=1)
    dynamics = {"epoch": [], "lss": [], "train_acc": []}
    snapshots = {}
    wanted = snapshot_epochs(epochs)

    def record(epoch: int, model, history) -> None:
        dynamics["epoch"].append(epoch)
        dynamics["lss"].append(mean_lss(model, probe))
        dynamics["train_acc"].append(history.train_acc[-1])
        if epoch in wanted:
            snapshots[str(epoch)] = np.round(pca_2d(tracks(model, pictured.images)), 4).tolist()

    seed_everything(seed)
    model = mnist_tracknet(residual)
    start = time.perf_counter()
    history = fit(model, train, recipe(weight_decay, epochs), test=test, seed=seed, progress=progress, callback=record,
                  device=device)
    record_ = {
        "recipe": dataclasses.asdict(recipe(weight_decay, epochs)),
        "seed": seed,
        "epochs_run": len(history.epoch),
        "data": {"train": train.name, "test": test.name},
        "mode": "full",
        "wall_time_s": round(time.perf_counter() - start, 1),
        "final_train_acc": history.train_acc[-1],
        "final_test_acc": history.test_acc[-1],
        "architecture": {"residual": residual, "width": MNIST_WIDTH, "hidden": MNIST_HIDDEN, "depth": MNIST_DEPTH},
        "history": history.as_dict(),
        "dynamics": {**dynamics, "lss_points": f"{test.name}, fixed subset of {TRACK_POINTS} (seed 0)"},
        "snapshots": {"labels": pictured.labels.tolist(), "tracks_pca_2d": snapshots},
    }
    if save:
        pretrained.save(model, checkpoint_name(residual, weight_decay, seed), record_)
    return model, record_


MODELS = tuple(f"{arch}-wd{wd_tag(g)}" for arch in ("resnet", "plain") for g in WEIGHT_DECAYS)


def train_checkpoint(model: str, mode: str = "full", seed: int = 0, device=None, progress: bool = True,
                     epochs: int | None = None, **_) -> Path:
    """Command-line entry: ``python -m dyndl_lite train gai --model resnet-wd5e-4 [--epochs E]``; returns the weights path."""
    from dyndl_lite import pretrained

    if model not in MODELS:
        raise ValueError(f"unknown chapter-10 model {model!r}; choose one of {MODELS}.")
    arch, gamma = model.split("-wd", 1)
    weight_decay = next(g for g in WEIGHT_DECAYS if wd_tag(g) == gamma)
    train_one(arch == "resnet", weight_decay, seed=seed, epochs=epochs or EPOCHS, progress=progress, device=device)
    return pretrained.paths(checkpoint_name(arch == "resnet", weight_decay, seed))[0]


def load_one(residual: bool, weight_decay: float, seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """The shipped checkpoint ``checkpoint_name(residual, weight_decay, seed)`` and its record."""
    from dyndl_lite import pretrained

    name = checkpoint_name(residual, weight_decay, seed)
    if not pretrained.exists(name):
        raise FileNotFoundError(
            f"checkpoint {name} is not shipped; train it with "
            f"dyndl_lite.experiments_geodesic.train_one(residual={residual}, weight_decay={weight_decay}, seed={seed})."
        )
    model = mnist_tracknet(residual)
    return model, pretrained.load(model, name)


def evaluate_row(model: torch.nn.Module, test, ots_points: int = OTS_POINTS) -> dict:
    """Accuracy on all of ``test``, mean LSS and exact OTS between x(0) and x(n) on at most ``ots_points`` of its images.

    The counts used are returned beside the numbers: ``eval_images`` (all of ``test``) and
    ``ots_points`` (``min(ots_points, len(test))``: the offline fallback holds only 1,000 images).
    ``accuracy_label`` says what the accuracy is (test accuracy only on official test data).
    """
    from dyndl_lite.train import evaluate

    used = min(ots_points, len(test))
    sub = test.subset(used, seed=0).images
    track = tracks(model, sub)
    mean, left_out = lss_summary(track)
    return {"test_acc": evaluate(model, test.images, test.labels), "lss": mean, "lss_left_out": left_out,
            "ots": ots(track[0], track[-1]), "eval_images": len(test), "ots_points": used,
            "accuracy_label": getattr(test, "accuracy_label", "accuracy")}


def table(test, weight_decays=WEIGHT_DECAYS, seed: int = 0, ots_points: int = OTS_POINTS) -> list[dict]:
    """One row per (architecture, weight decay) from the shipped checkpoints, evaluated now."""
    rows = []
    for residual in (True, False):
        for gamma in weight_decays:
            model, record = load_one(residual, gamma, seed)
            rows.append({"network": "residual" if residual else "plain", "weight_decay": gamma,
                         **evaluate_row(model, test, ots_points), "train_acc": record["final_train_acc"]})
    return rows


from dyndl_lite.experiments import register  # noqa: E402  (registry of the command line)

register("gai", models=MODELS, train=train_checkpoint,
         description="Gai & Zhang: residual vs plain MNIST MLPs across weight decay (chapter 10)")

if __name__ == "__main__":  # python -m dyndl_lite.experiments_geodesic [epochs]: retrain and ship every checkpoint
    import sys

    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else EPOCHS
    for gamma in sorted(WEIGHT_DECAYS, key=lambda g: g != 5e-4):  # 5e-4 first: chapters 9 and 10 draw it
        for residual in (True, False):
            _, rec = train_one(residual, gamma, epochs=epochs)
            print(checkpoint_name(residual, gamma), f"test acc {rec['final_test_acc']:.4f}",
                  f"LSS {rec['dynamics']['lss'][-1]:.3f}", f"{rec['wall_time_s']} s", flush=True)
