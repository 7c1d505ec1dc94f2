"""Yan et al.'s robustness tables (ICLR 2020) as data: train the checkpoints, evaluate them, compare with the paper.

Protocol (Yan, Du, Tan, Feng 2020, Section 4; public code HanshuYAN/TisODE):

* models: :func:`dyndl_lite.models.yan.yan_cnn` and :func:`~dyndl_lite.models.yan.yan_odenet`;
* regime ``"clean"`` (Table 1): trained on unperturbed images;
* regime ``"gaussian"`` (Table 2): each training image receives, with probability 1/2,
  Gaussian noise of standard deviation ``sigma / 255`` with ``sigma`` drawn from
  ``{50, 75, 100}`` (MNIST);
* recipe: Adam, learning rate 1e-3, weight decay 5e-4, batch 128, 100 epochs, learning
  rate times 0.2 at epochs 30, 60, 90;
* perturbations (:mod:`dyndl_lite.attacks`): Gaussian noise with ``sigma`` on the 0-255 scale;
  FGSM and PGD with ``eps`` on the [0, 1] scale. The book attacks the cross-entropy loss
  (textbook FGSM / PGD); the authors' code attacks a margin loss on 1,000 random test
  images, PGD with 10 iterations of step ``eps / 5``.

Checkpoints are named ``yan-{cnn|odenet}[-gaussian]-seed{S}``; experiments ``yan-clean`` and
``yan-gaussian`` train them through :func:`dyndl_lite.runs.train`; :func:`table` evaluates the shipped ones on the test set
and returns the table as data, with the paper's numbers beside it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterable

import numpy as np
import torch
from torch import nn

from dyndl_lite import attacks, pretrained, runs
from dyndl_lite.models.yan import build

MODELS = ("cnn", "odenet")  # the rows of the paper's Tables 1 and 2
TRAINABLE = MODELS + ("tisode",)  # and Yan et al.'s own proposal (issue 18)
REGIMES = ("clean", "gaussian")
SEEDS = (0, 1, 2)
TRAIN_SIGMAS = (50.0, 75.0, 100.0)  # Table 2 training noise, MNIST
NOISE_PROB = 0.5

# Quick mode's budget for the networks a chapter trains itself (SVHN, ImgNet10): one epoch over
# at most this many training images instead of the paper's 100 epochs.
CPU_BUDGET_IMAGES = 60_000

# Columns: (kind, strength). Gaussian sigma on 0-255; FGSM / PGD eps on [0, 1].
COLUMNS = {
    ("mnist", 1): [("gaussian", 50), ("gaussian", 75), ("gaussian", 100), ("fgsm", 0.15), ("fgsm", 0.3), ("fgsm", 0.5)],
    ("mnist", 2): [("gaussian", 100), ("fgsm", 0.3), ("fgsm", 0.5), ("pgd", 0.2), ("pgd", 0.3)],
    ("svhn", 1): [("gaussian", 15), ("gaussian", 25), ("gaussian", 35), ("fgsm", 3 / 255), ("fgsm", 5 / 255), ("fgsm", 8 / 255)],
    ("svhn", 2): [("gaussian", 35), ("fgsm", 5 / 255), ("fgsm", 8 / 255), ("pgd", 3 / 255), ("pgd", 5 / 255)],
    ("imgnet10", 1): [("gaussian", 10), ("gaussian", 15), ("gaussian", 25), ("fgsm", 5 / 255), ("fgsm", 8 / 255), ("fgsm", 16 / 255)],
    ("imgnet10", 2): [("gaussian", 25), ("fgsm", 5 / 255), ("fgsm", 8 / 255), ("pgd", 3 / 255), ("pgd", 5 / 255)],
}

# Yan et al. (2020), Tables 1 and 2: accuracy in %, mean and std over runs, as published.
PAPER = {
    ("mnist", 1): {"cnn": [(98.1, 0.7), (85.8, 4.3), (56.4, 5.6), (63.4, 2.3), (24.0, 8.9), (8.3, 3.2)],
                   "odenet": [(98.7, 0.6), (90.6, 5.4), (73.2, 8.6), (83.5, 0.9), (42.1, 2.4), (14.3, 2.1)]},
    ("svhn", 1): {"cnn": [(90.0, 1.2), (76.3, 2.7), (60.9, 3.9), (29.2, 2.9), (13.7, 1.9), (5.4, 1.5)],
                  "odenet": [(95.7, 0.7), (88.1, 1.5), (78.2, 2.1), (58.2, 2.3), (43.0, 1.3), (30.9, 1.4)]},
    ("imgnet10", 1): {"cnn": [(80.1, 1.8), (63.3, 2.0), (40.8, 2.7), (28.5, 0.5), (18.1, 0.7), (9.4, 1.2)],
                      "odenet": [(81.9, 2.0), (67.5, 2.0), (48.7, 2.6), (36.2, 1.0), (27.2, 1.1), (14.4, 1.7)]},
    ("mnist", 2): {"cnn": [(98.7, 0.1), (54.2, 1.1), (15.8, 1.3), (32.9, 3.7), (0.0, 0.0)],
                   "odenet": [(99.4, 0.1), (71.5, 1.1), (19.9, 1.2), (64.7, 1.8), (13.0, 0.2)]},
    ("svhn", 2): {"cnn": [(90.6, 0.2), (25.3, 0.6), (12.3, 0.7), (32.4, 0.4), (14.0, 0.5)],
                  "odenet": [(95.1, 0.1), (49.4, 1.0), (34.7, 0.5), (50.9, 1.3), (27.2, 1.4)]},
    ("imgnet10", 2): {"cnn": [(92.6, 0.6), (40.9, 1.8), (26.7, 1.7), (28.6, 1.5), (11.2, 1.2)],
                      "odenet": [(92.6, 0.5), (42.0, 0.4), (29.0, 1.0), (29.8, 0.4), (12.3, 0.6)]},
}
PAPER_SOURCE = "Yan, Du, Tan, Feng, On Robustness of Neural Ordinary Differential Equations, ICLR 2020, Tables 1-2"

# Test images attacked: the first N of the official test set (fixed, stated, not random).
ATTACK_IMAGES = {"quick": 1000, "full": 10_000}
PGD_IMAGES = {"quick": 1000, "full": 1000}  # the authors attacked 1,000 test images
PGD_STEPS = 10  # step eps / 5, as in the authors' code
NOISE_SEED = 0  # one fixed noise draw per sigma, shared by every model (paired comparison)


def checkpoint_name(model: str, regime: str, seed: int) -> str:
    """``yan-cnn-seed0``, ``yan-odenet-gaussian-seed2``, ``yan-tisode-seed1``, ..."""
    if model not in TRAINABLE or regime not in REGIMES:
        raise ValueError(f"model must be one of {TRAINABLE} and regime one of {REGIMES}, got {model!r}, {regime!r}.")
    return f"yan-{model}{'' if regime == 'clean' else '-' + regime}-seed{seed}"


def column_label(kind: str, strength: float, dataset: str = "mnist") -> str:
    """``s=50``, ``FGSM-0.3``, ``PGD-5/255`` (fractions of 255 for the colour data sets)."""
    if kind == "gaussian":
        return f"s={strength:g}"
    if dataset == "mnist":
        return f"{kind.upper()}-{strength:g}"
    return f"{kind.upper()}-{round(strength * 255):d}/255"


# --------------------------------------------------------------------------- training


def recipe(mode: str, regime: str, epochs: int | None = None, train_subset: int | None = None):
    """Yan et al.'s recipe (full mode; ``epochs`` compresses it) or the CPU budget (quick mode), with the regime's noise."""
    from dyndl_lite.train import RECIPES, Recipe, register_recipe

    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got {regime!r}.")
    base = RECIPES.get("yan-full") or register_recipe(Recipe(
        name="yan-full", epochs=100, batch_size=128, optimizer="adam", lr=1e-3, weight_decay=5e-4,
        milestones=(30, 60, 90), gamma=0.2))
    if mode == "quick":
        base = dataclasses.replace(base, name="yan-cpu-budget", epochs=1, milestones=(), train_subset=CPU_BUDGET_IMAGES)
    elif epochs is not None and epochs != base.epochs:
        base = base.compressed(epochs)
    if train_subset is not None:
        base = dataclasses.replace(base, name=f"{base.name}-{train_subset}img", train_subset=train_subset)
    if regime == "gaussian":
        base = dataclasses.replace(base, name=base.name + "-gaussian", noise_prob=NOISE_PROB, noise_sigmas=TRAIN_SIGMAS)
    return base


def full_recipe(regime: str):
    """Yan et al.'s recipe for ``regime`` (``"gaussian"`` adds the Table 2 training noise): what the paper ran."""
    return recipe("full", regime)


def available_seeds(regime: str) -> list[int]:
    """Seeds for which both models of ``regime`` have a shipped checkpoint."""
    from dyndl_lite import pretrained

    return [s for s in range(10) if all(pretrained.exists(checkpoint_name(m, regime, s)) for m in MODELS)]


# --------------------------------------------------------------------------- evaluation


def _chunks(n: int, size: int) -> Iterable[slice]:
    return (slice(i, min(i + size, n)) for i in range(0, n, size))


@torch.inference_mode()
def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return int((model(x).argmax(1) == y).sum())


def column_accuracies(model: nn.Module, x: torch.Tensor, y: torch.Tensor, columns: list[tuple[str, float]],
                      pgd_images: int, chunk: int = 250) -> dict[tuple[str, float], float]:
    """Accuracy (in [0, 1]) under every column's perturbation.

    Gaussian: one fixed noise draw (seed :data:`NOISE_SEED`) per sigma. FGSM: one input
    gradient serves every eps, since ``sign(grad_x L(x))`` does not depend on eps.
    PGD: :data:`PGD_STEPS` steps of ``eps / 5`` from the clean image, on the first
    ``pgd_images`` of ``x``.
    """
    model.eval()
    out: dict[tuple[str, float], float] = {}
    fgsm_eps = sorted({s for k, s in columns if k == "fgsm"})
    counts = {c: 0 for c in columns}
    for part in _chunks(len(x), chunk):
        xb, yb = x[part], y[part]
        for kind, strength in columns:
            if kind == "gaussian":
                g = torch.Generator().manual_seed(NOISE_SEED * 1_000_003 + part.start)
                counts[(kind, strength)] += _correct(model, attacks.gaussian(xb, strength, generator=g), yb)
        if fgsm_eps:
            for eps, adv in zip(fgsm_eps, attacks.fgsm_sweep(model, xb, yb, fgsm_eps)):
                counts[("fgsm", eps)] += _correct(model, adv, yb)
        if part.start < pgd_images:
            stop = min(part.stop, pgd_images) - part.start
            for kind, strength in columns:
                if kind == "pgd":
                    adv = attacks.pgd(model, xb[:stop], yb[:stop], strength, step=strength / 5, steps=PGD_STEPS)
                    counts[(kind, strength)] += _correct(model, adv, yb[:stop])
    for kind, strength in columns:
        total = min(pgd_images, len(x)) if kind == "pgd" else len(x)
        out[(kind, strength)] = counts[(kind, strength)] / total
    return out


def load_checkpoint(model: str, regime: str, seed: int, in_channels: int = 1) -> tuple[nn.Module, dict]:
    """Checkpoint ``yan-<model>[-gaussian]-seed<S>`` (user folder first, then shipped) and its record."""
    from dyndl_lite import pretrained

    net = build(model, in_channels=in_channels)
    record = pretrained.load(net, checkpoint_name(model, regime, seed),
                             expect={"experiment": f"yan-{regime}", "model": model})
    return net.eval(), record


def table(number: int, mode: str = "quick", seeds: Iterable[int] | None = None, dataset: str = "mnist") -> dict:
    """Yan et al.'s Table ``number`` (1: clean training, 2: Gaussian training) for MNIST, as data.

    Every shipped checkpoint of the table's regime is evaluated on the first
    :data:`ATTACK_IMAGES` ``[mode]`` test images (PGD on the first :data:`PGD_IMAGES` ``[mode]``).
    Returns columns, per-model per-seed accuracies (%), their mean and sample std,
    clean accuracy on the same images, the paper's numbers, and what was measured.
    """
    from dyndl_lite.data import load_mnist

    if number not in (1, 2):
        raise ValueError(f"Yan et al. have Tables 1 and 2, got {number!r}.")
    if dataset != "mnist":
        raise ValueError("shipped checkpoints exist for MNIST only; SVHN / ImgNet10 tables need training (see the chapter).")
    regime = "clean" if number == 1 else "gaussian"
    seeds = list(available_seeds(regime) if seeds is None else seeds)
    if not seeds:
        raise FileNotFoundError(f"no shipped checkpoints yan-*{'' if regime == 'clean' else '-gaussian'}-seed*; "
                                f"train them with `python -m dyndl_lite train yan-{regime} --model cnn --seed 0`.")
    columns = COLUMNS[(dataset, number)]
    test = load_mnist("test")
    x, y = test.images[:ATTACK_IMAGES[mode]], test.labels[:ATTACK_IMAGES[mode]]
    n, n_pgd = len(x), min(PGD_IMAGES[mode], len(x))  # the counts used: the offline fallback holds 1,000 images
    rows, records, start = {}, {}, time.perf_counter()
    tisode = all(pretrained.exists(checkpoint_name("tisode", regime, seed)) for seed in seeds)
    for model in MODELS + (("tisode",) if tisode else ()):  # Yan et al.'s TisODE once its runs are shipped
        per_seed, clean = [], []
        for seed in seeds:
            net, record = load_checkpoint(model, regime, seed)
            acc = column_accuracies(net, x, y, columns, n_pgd)
            per_seed.append([100 * acc[c] for c in columns])
            with torch.inference_mode():
                clean.append(100 * sum(_correct(net, x[s], y[s]) for s in _chunks(n, 1000)) / n)
            records[checkpoint_name(model, regime, seed)] = record
        values = np.array(per_seed)
        rows[model] = {"seeds": values.tolist(), "mean": values.mean(0).tolist(),
                       "std": (values.std(0, ddof=1) if len(values) > 1 else np.zeros(len(columns))).tolist(),
                       "clean": clean}
    return {
        "table": number, "dataset": dataset, "regime": regime, "mode": mode, "seeds": list(seeds),
        "columns": [column_label(k, s, dataset) for k, s in columns], "column_specs": columns,
        "rows": rows, "paper": PAPER[(dataset, number)], "paper_source": PAPER_SOURCE,
        "data": f"{test.name}: first {n:,} images (PGD: first {n_pgd:,})",
        "images": n, "pgd_images": n_pgd, "accuracy_label": test.accuracy_label,
        "attack": f"cross-entropy FGSM; PGD {PGD_STEPS} steps of eps/5 from the clean image",
        "records": records, "seconds": round(time.perf_counter() - start, 1),
    }


def markdown(result: dict) -> str:
    """The table as Markdown: our mean +- std over seeds beside the paper's."""
    head = "| model | " + " | ".join(result["columns"]) + " |"
    lines = [head, "|" + "---|" * (len(result["columns"]) + 1)]
    for model in MODELS:
        ours = result["rows"][model]
        cells = [f"{m:.1f} ± {s:.1f}" if len(result["seeds"]) > 1 else f"{m:.1f}" for m, s in zip(ours["mean"], ours["std"])]
        lines.append(f"| {model.upper() if model == 'cnn' else 'ODENet'}, ours | " + " | ".join(cells) + " |")
        paper = [f"{m:.1f} ± {s:.1f}" for m, s in result["paper"][model]]
        lines.append(f"| {model.upper() if model == 'cnn' else 'ODENet'}, paper | " + " | ".join(paper) + " |")
    return "\n".join(lines)


def table_from_training(dataset: str, number: int, train, test, mode: str = "quick", seeds: Iterable[int] = (0,),
                        progress: bool = False) -> dict:
    """SVHN / ImgNet10 (no shipped checkpoints): train the 3-channel CNN and ODENet on ``train`` and evaluate
    Table ``number``'s columns on the first :data:`ATTACK_IMAGES` ``[mode]`` images of ``test``.

    The Gaussian training noise of Table 2 uses each data set's largest Table-2 sigma and the two below it
    in Table 1 (SVHN {15, 25, 35}, ImgNet10 {10, 15, 25}): Yan et al. give the MNIST sigmas only, so this is
    the book's choice.
    """
    from dyndl_lite.train import fit

    if (dataset, number) not in COLUMNS or dataset == "mnist":
        raise ValueError(f"dataset must be 'svhn' or 'imgnet10' and number 1 or 2, got {dataset!r}, {number!r}.")
    regime = "clean" if number == 1 else "gaussian"
    columns = COLUMNS[(dataset, number)]
    sigmas = tuple(float(s) for k, s in COLUMNS[(dataset, 1)] if k == "gaussian")
    rec = recipe(mode, regime)
    if regime == "gaussian":
        rec = dataclasses.replace(rec, noise_sigmas=sigmas)
    n = ATTACK_IMAGES[mode]
    x, y = test.images[:n], test.labels[:n]
    rows = {}
    for model in MODELS:
        per_seed, clean = [], []
        for seed in seeds:
            torch.manual_seed(seed)
            net = build(model, in_channels=3)
            fit(net, train, rec, seed=seed, progress=progress)
            acc = column_accuracies(net, x, y, columns, PGD_IMAGES[mode])
            per_seed.append([100 * acc[c] for c in columns])
            with torch.inference_mode():
                clean.append(100 * sum(_correct(net, x[s], y[s]) for s in _chunks(len(x), 1000)) / len(x))
        values = np.array(per_seed)
        rows[model] = {"seeds": values.tolist(), "mean": values.mean(0).tolist(), "clean": clean,
                       "std": (values.std(0, ddof=1) if len(values) > 1 else np.zeros(len(columns))).tolist()}
    return {"table": number, "dataset": dataset, "regime": regime, "mode": mode, "seeds": list(seeds),
            "columns": [column_label(k, s, dataset) for k, s in columns], "column_specs": columns, "rows": rows,
            "paper": PAPER[(dataset, number)], "paper_source": PAPER_SOURCE, "recipe": dataclasses.asdict(rec),
            "data": f"{train.name} for training; {test.name}: first {len(x):,} images "
                    f"(PGD: first {min(PGD_IMAGES[mode], len(x)):,})",
            "images": len(x), "pgd_images": min(PGD_IMAGES[mode], len(x)), "accuracy_label": test.accuracy_label,
            "attack": f"cross-entropy FGSM; PGD {PGD_STEPS} steps of eps/5 from the clean image"}


# --------------------------------------------------------------------------- chapter 5: a 2-D ODE-Net

def toy_recipe():
    """Chapter 5's recipe for the 2-D ODE-Net: Adam 1e-2, batch 50, 30 epochs on 400 points."""
    from dyndl_lite.train import Recipe, register_recipe

    return register_recipe(Recipe("yan-toy-circles", epochs=30, batch_size=50, optimizer="adam", lr=1e-2))


def toy_odenet(seed: int = 0, n: int = 400):
    """Train a plain (non-augmented) 2-D ODE-Net on concentric circles; return ``(net, train, test, history)``.

    ``dz/dt = f(t, z)`` with ``f`` a tanh MLP (2 hidden layers of 32) on ``[z, t]``,
    RK4 with step 0.1 on ``[0, 1]``, linear read-out; training data
    ``concentric_circles(n, seed=seed)``, test data the same law with ``seed + 1``.
    """
    from dyndl_lite.toy import ToyODENet, concentric_circles
    from dyndl_lite.train import fit

    torch.manual_seed(seed)
    train, test = concentric_circles(n, seed=seed), concentric_circles(n, seed=seed + 1)
    net = ToyODENet(2, 2, augment=0, width=32, depth=2, method="rk4", step_size=0.1)
    history = fit(net, train, toy_recipe(), test=test, seed=seed, progress=False)
    return net, train, test, history


for _regime, _table in (("clean", 1), ("gaussian", 2)):
    runs.register(runs.Experiment(  # "tisode" (issue 18) trains too; the tables still loop over MODELS
        name=f"yan-{_regime}", models=TRAINABLE, build=build,
        recipe=lambda model, regime=_regime: full_recipe(regime),
        checkpoint_name=lambda model, seed, regime=_regime: checkpoint_name(model, regime, seed),
        description=f"Yan et al. (2020) Table {_table}: MNIST CNN / ODENet / TisODE trained on "
                    f"{'clean' if _regime == 'clean' else 'Gaussian-perturbed'} images, "
                    f"checkpoints yan-<model>{'' if _regime == 'clean' else '-gaussian'}-seed<S>",
    ))


# --------------------------------------------------------------------------- verdicts (chapter 6)

PAPER_EPOCHS = 100  # Yan et al.'s recipe; records written before full_recipe_epochs existed lack the field


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def _column_images(result: dict) -> list[int] | None:
    """The count each column of a :func:`table` result was measured on (PGD columns use fewer images)."""
    if "images" not in result or "column_specs" not in result:
        return None
    return [result["pgd_images"] if kind == "pgd" else result["images"] for kind, _ in result["column_specs"]]


def verdict_rows(result: dict, ours: str = "odenet", theirs: str = "cnn") -> list[dict]:
    """:func:`dyndl_lite.verdicts.yan` applied to a :func:`table` result: is ``ours`` more accurate than
    ``theirs`` under each perturbation (per-seed accuracies, seeds paired; with one seed, the binomial
    standard error on the images each column used)? The paper's numbers join only for ODENet vs CNN."""
    from dyndl_lite import verdicts

    paper = result["paper"] if (ours, theirs) == ("odenet", "cnn") else None
    return verdicts.yan(result["columns"], result["rows"][ours]["seeds"], result["rows"][theirs]["seeds"],
                        paper, images=_column_images(result))


def verdict_markdown(result: dict) -> str:
    """Table ``result`` transposed, one line per perturbation: the paper's CNN, ODENet and difference, ours
    (mean ± sample std over the seeds, paired difference ± its std) and the computed verdict of
    :func:`dyndl_lite.verdicts.yan` ("ODENet more robust than CNN")."""
    from dyndl_lite import verdicts

    n = len(result["seeds"])
    spread = n > 1
    header = ["perturbation", "CNN, paper", "ODENet, paper", "difference, paper",
              f"CNN, ours ({n} seed{'s' if n > 1 else ''})", f"ODENet, ours ({n} seed{'s' if n > 1 else ''})",
              "difference, ours", "ODENet more robust? (ours)"]
    tisode = "tisode" in result["rows"]
    if tisode:  # Yan et al.'s own proposal against the ODENet; the paper's TisODE numbers are not printed
        header += [f"TisODE, ours ({n} seed{'s' if n > 1 else ''})", "TisODE − ODENet, ours",
                   "TisODE more robust than ODENet? (ours)"]
        against_odenet = verdict_rows(result, "tisode", "odenet")

    def difference(row: dict) -> str:
        return f"{row['mean']:+.1f}" + (f" ± {row['std']:.1f}" if row["std"] is not None else
                                        f" (s.e. {row['se']:.1f})" if row.get("se_kind") else "")

    lines = []
    for j, row in enumerate(verdict_rows(result)):
        cnn, ode = result["rows"]["cnn"], result["rows"]["odenet"]
        line = [row["column"], _pm(*result["paper"]["cnn"][j]), _pm(*result["paper"]["odenet"][j]),
                f"{row['paper_difference']:+.1f}",
                _pm(cnn["mean"][j], cnn["std"][j] if spread else None),
                _pm(ode["mean"][j], ode["std"][j] if spread else None), difference(row), row["verdict"]]
        if tisode:
            tis = result["rows"]["tisode"]
            line += [_pm(tis["mean"][j], tis["std"][j] if spread else None), difference(against_odenet[j]),
                     against_odenet[j]["verdict"]]
        lines.append(line)
    return verdicts.markdown_table(header, lines)


def paper_only_markdown(dataset: str, number: int, reason: str = "not run: data not available here") -> str:
    """The paper's Table ``number`` for ``dataset`` (SVHN, ImgNet10), marked as theirs, our cells ``reason``."""
    from dyndl_lite import verdicts

    if (dataset, number) not in PAPER or dataset == "mnist":
        raise ValueError(f"dataset must be 'svhn' or 'imgnet10' and number 1 or 2, got {dataset!r}, {number!r}.")
    paper = PAPER[(dataset, number)]
    labels = [column_label(k, s, dataset) for k, s in COLUMNS[(dataset, number)]]
    lines = [[label, _pm(*paper["cnn"][j]), _pm(*paper["odenet"][j]),
              f"{paper['odenet'][j][0] - paper['cnn'][j][0]:+.1f}", reason]
             for j, label in enumerate(labels)]
    return verdicts.markdown_table(
        ["perturbation", "CNN, paper (theirs)", "ODENet, paper (theirs)", "difference, paper (theirs)", "ours"], lines)


def verdict_paragraph(results: list[dict]) -> str:
    """Plain-words summary of the verdicts of Tables 1 and 2 (the :func:`table` results given), with the numbers."""
    from dyndl_lite import verdicts

    parts = []
    for result in results:
        rows = verdict_rows(result)
        counts = verdicts.count(rows)
        n = len(result["seeds"])
        clean = {m: float(np.mean(result["rows"][m]["clean"])) for m in MODELS}
        epochs = sorted({(r["epochs_run"], r.get("full_recipe_epochs", PAPER_EPOCHS)) for r in result["records"].values()})
        held = [r["column"] for r in rows if r["verdict"] == verdicts.HOLDS]
        failed = [r["column"] for r in rows if r["verdict"] == verdicts.FAILS]
        open_ = [r["column"] for r in rows if r["verdict"] == verdicts.UNRESOLVED]
        text = (f"**Table {result['table']} ({'clean' if result['regime'] == 'clean' else 'Gaussian'} training).** "
                f"Yan et al.'s claim, that the ODENet is more accurate than the CNN under each perturbation, "
                f"holds in our runs in {counts[verdicts.HOLDS]} of {len(rows)} columns"
                + (f" ({', '.join(held)})" if held else "")
                + f", does not hold in {counts[verdicts.FAILS]}" + (f" ({', '.join(failed)})" if failed else "")
                + (" and is not resolved (the difference lies within the rule's margin of zero) in "
                   f"{counts[verdicts.UNRESOLVED]} ({', '.join(open_)})"
                   if open_ else "")
                + f"; the paper has the ODENet ahead in {sum(r['paper_difference'] > 0 for r in rows)} of {len(rows)}. "
                f"Our numbers: {n} seed{'s' if n > 1 else ''}"
                + ("" if n > 1 else " (the standard error is the test images' sampling error alone: "
                                    "a second seed could still change a verdict)")
                + f", {' and '.join(f'{e} of {f} epochs' for e, f in epochs)} of the paper's recipe, "
                f"clean accuracy CNN {clean['cnn']:.1f} %, ODENet {clean['odenet']:.1f} % on {result['data']} "
                f"(paper: about 99 %).")
        if "tisode" in result["rows"]:
            tis_counts = verdicts.count(verdict_rows(result, "tisode", "odenet"))
            text += (f" Yan et al.'s TisODE is more accurate than the ODENet in {tis_counts[verdicts.HOLDS]} of "
                     f"{len(rows)} columns and less accurate in {tis_counts[verdicts.FAILS]} (clean accuracy "
                     f"{float(np.mean(result['rows']['tisode']['clean'])):.1f} %).")
        if min(clean.values()) < 99.0:
            text += (" These networks are below the paper's clean accuracy, so the verdicts describe young "
                     "networks and may change when the converged checkpoints are shipped.")
        parts.append(text)
    return "\n\n".join(parts)
