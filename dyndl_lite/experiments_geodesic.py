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


# --------------------------------------------------------------------------- verdicts and controls (chapter 10)

OLD_BASIS = "PCA refitted at each epoch (older record)"


def snapshot_basis(record: dict) -> str:
    """How a record's 2-D track pictures were projected (its ``snapshots["basis"]``; older records lack it)."""
    return record.get("snapshots", {}).get("basis", OLD_BASIS)


def align_2d(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``points @ R`` with ``R`` the 2x2 orthogonal map closest to ``reference`` (orthogonal Procrustes:
    ``R = U V^T`` from the SVD ``U S V^T`` of ``points^T reference``, both centred).

    Used for 2-D pictures whose PCA axes were refitted at each epoch: it removes the sign flips and rotations
    of the axes, not the change of the plane itself. ``points`` and ``reference`` have shape (..., 2).
    """
    a, b = np.asarray(points, dtype=float), np.asarray(reference, dtype=float)
    if a.shape != b.shape or a.shape[-1] != 2:
        raise ValueError(f"points and reference must have the same shape (..., 2), got {a.shape} and {b.shape}.")
    fa, fb = a.reshape(-1, 2), b.reshape(-1, 2)
    u, _, vt = np.linalg.svd((fa - fa.mean(0)).T @ (fb - fb.mean(0)))
    return a @ (u @ vt)


def bound_check(track1: np.ndarray, track2: np.ndarray, seed: int = 0) -> dict:
    """Gai & Zhang's track-distance bound on m pairs of tracks (n+1, m, d), with two controls that can fail.

    With ``a = x1(0) - x2(0)``, ``b = x1(n) - x2(n)`` and ``B = |a||b| / sqrt(|a|^2 + |b|^2)``
    (:func:`dyndl_lite.geodesic.track_lower_bound`):

    * ``network``: fraction of pairs with ``min_l |x1(l) - x2(l)| >= B``. Weak on its own: the layers 0 and n
      already give a distance ``<= min(|a|, |b|)``, and ``B >= min(|a|, |b|) / sqrt 2``;
    * ``monotone``: fraction with ``<a, b> >= 0``, the theorem's premise (true for an optimal map);
    * ``straight``: the geodesic model, straight segments between the network's own end points,
      ``min_t |(1 - t) a + t b| >= B`` (holds exactly when the premise does);
    * ``shuffled`` (control): the same with the end points of a random permutation of the inputs, a map that
      ignores its input; the bound must fail for a sizeable fraction, showing the check can fail.
    """
    from dyndl_lite.geodesic import track_distance, track_lower_bound

    t1, t2 = np.asarray(track1, dtype=float), np.asarray(track2, dtype=float)
    if t1.shape != t2.shape or t1.ndim != 3:
        raise ValueError(f"track1 and track2 must both have shape (n+1, m, d), got {t1.shape} and {t2.shape}.")

    def straight(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # min over t in [0, 1] of |a + t (b - a)|
        step = b - a
        t = np.clip(-(a * step).sum(-1) / np.maximum((step * step).sum(-1), 1e-300), 0, 1)
        return np.linalg.norm(a + t[:, None] * step, axis=-1)

    a, b = t1[0] - t2[0], t1[-1] - t2[-1]
    bound = track_lower_bound(t1[0], t2[0], t1[-1], t2[-1])
    perm = np.random.default_rng(seed).permutation(t1.shape[1])
    b_shuffled = t1[-1][perm] - t2[-1][perm]
    bound_shuffled = track_lower_bound(t1[0], t2[0], t1[-1][perm], t2[-1][perm])
    distance = track_distance(t1, t2)
    positive = bound > 0
    return {"pairs": int(t1.shape[1]), "network": float(np.mean(distance >= bound)),
            "monotone": float(np.mean((a * b).sum(-1) >= 0)), "straight": float(np.mean(straight(a, b) >= bound * (1 - 1e-9))),
            "shuffled": float(np.mean(straight(a, b_shuffled) >= bound_shuffled * (1 - 1e-9))),
            "median_ratio": float(np.median(distance[positive] / bound[positive])) if positive.any() else float("nan")}


def paper_cifar100_rows() -> list[dict]:
    """Gai & Zhang's CIFAR-100 values as table rows for :func:`dyndl_lite.verdicts.gai`. The paper plots test
    accuracy only, so it stands in the ``train_acc`` field; use these rows for the per-weight-decay
    comparisons, not for the training-accuracy trend."""
    p = PAPER_CIFAR100
    return [{"network": net, "weight_decay": g, "lss": p[f"{key}_lss"][i], "ots": p[f"{key}_ots"][i],
             "train_acc": p[f"{key}_test_acc_pct"][i] / 100}
            for i, g in enumerate(p["weight_decay"]) for net, key in (("residual", "resnet"), ("plain", "plain"))]


def gai_verdict_markdown(rows: list[dict]) -> str:
    """Per weight decay: our LSS and OTS, residual vs plain, with :func:`dyndl_lite.verdicts.gai`'s verdicts,
    beside the paper's CIFAR-100 values at the same weight decay (judged by the same rule), where it has one."""
    from dyndl_lite import verdicts

    ours = verdicts.gai(rows)["per_weight_decay"]
    theirs = {r["weight_decay"]: r for r in verdicts.gai(paper_cifar100_rows())["per_weight_decay"]}
    lines = []
    for r in ours:
        t = theirs.get(r["weight_decay"])
        lines.append([f"{r['weight_decay']:g}",
                      f"{r['lss_residual']:.2f} / {r['lss_plain']:.2f}", r["straighter"],
                      f"{t['lss_residual']:.2f} / {t['lss_plain']:.2f}: {t['straighter']}" if t else "not in the paper",
                      f"{r['ots_residual']:.3f} / {r['ots_plain']:.3f}", r["more_optimal"],
                      f"{t['ots_residual']:.2f} / {t['ots_plain']:.2f}: {t['more_optimal']}" if t else "not in the paper"])
    return verdicts.markdown_table(
        ["γ", "LSS residual / plain (ours)", "straighter? (ours)", "paper, CIFAR-100 (theirs)",
         "OTS residual / plain (ours)", "more optimal? (ours)", "paper, CIFAR-100 (theirs)"], lines)


def training_trends(records: dict[tuple[str, float], dict]) -> list[dict]:
    """Per run, whether LSS falls as training accuracy rises over the epochs of its record's ``dynamics``
    (:func:`dyndl_lite.verdicts.falls_as_rises`, Spearman's rho over epochs); ``records`` maps
    ``(network, weight_decay)`` to a checkpoint record."""
    from dyndl_lite import verdicts

    out = []
    for (network, gamma), record in records.items():
        dyn = record["dynamics"]
        row = {"network": network, "weight_decay": gamma, "epochs": len(dyn["epoch"]),
               "lss_first": dyn["lss"][0], "lss_last": dyn["lss"][-1]}
        if len(dyn["epoch"]) >= 2:
            row.update(verdicts.falls_as_rises(dyn["lss"], dyn["train_acc"]))
        else:
            row.update({"rho": float("nan"), "points": 1, "verdict": verdicts.UNRESOLVED})
        out.append(row)
    return out


def gai_verdict_paragraph(rows: list[dict], trends: list[dict], epochs: list[int], data: str) -> str:
    """Plain words, with the numbers, for :func:`gai_verdict_markdown` and :func:`training_trends`."""
    from dyndl_lite import verdicts

    v = verdicts.gai(rows)
    per = v["per_weight_decay"]
    k = len(per)
    straight = sum(r["straighter"] == verdicts.HOLDS for r in per)
    optimal = sum(r["more_optimal"] == verdicts.HOLDS for r in per)
    across = v["lss_falls_as_accuracy_rises"].get("residual")
    during = [t for t in trends if t["network"] == "residual"]
    during_holds = sum(t["verdict"] == verdicts.HOLDS for t in during)
    res_lss = [r["lss_residual"] for r in per]
    res_ots = [r["ots_residual"] for r in per]
    paper = verdicts.gai(paper_cifar100_rows())["per_weight_decay"]
    paper_both = sum(r["straighter"] == r["more_optimal"] == verdicts.HOLDS for r in paper)
    budget = "-".join(str(e) for e in sorted({min(epochs), max(epochs)}))
    text = (f"**Verdict** (MNIST, {k} weight decays, one seed each, {budget} epochs of training; LSS and OTS on "
            f"{data}). The residual network is straighter than the plain one at {straight} of {k} weight decays and "
            f"more optimal at {optimal} of {k}; Gai & Zhang's CIFAR-100 residual network is both at {paper_both} of "
            f"their {len(paper)}. "
            f"Our residual LSS ranges over {min(res_lss):.2f}-{max(res_lss):.2f} and OTS over "
            f"{min(res_ots):.3f}-{max(res_ots):.3f}, against the paper's MNIST ResNet {PAPER_MNIST['lss']} and "
            f"{PAPER_MNIST['ots']}. ")
    if across is not None:
        text += (f"Across weight decays the residual network's LSS {'falls' if across['verdict'] == verdicts.HOLDS else 'does not fall'} "
                 f"as its training accuracy rises (Spearman's rho = {across['rho']:+.2f} over {across['points']} "
                 "points; with three points rho = -1 happens by chance one time in six). ")
    text += (f"During training, LSS falls as training accuracy rises in {during_holds} of {len(during)} residual runs "
             f"(rank correlation over the epochs of each record). ")
    claims = [straight == k, optimal == k, across is not None and across["verdict"] == verdicts.HOLDS]
    text += ("All three of the paper's qualitative claims hold in our runs." if all(claims) else
             f"{sum(claims)} of the three qualitative claims (straighter at every weight decay, more optimal at every "
             "weight decay, LSS falling as accuracy rises across weight decays) hold in our runs.")
    return text
