"""Yan et al.'s robustness tables (ICLR 2020): the book's runs of their networks, and the tables
measured on them.

The paper's columns, numbers and recipe are :mod:`~dyndl_lite.experiments.yan_paper`; how a table
is measured, :mod:`~dyndl_lite.experiments.yan_measure`; how it is printed and judged,
:mod:`~dyndl_lite.experiments.yan_report`. This module is the protocol every paper module shares:

* :data:`MODELS`: the networks the experiments train, the paper's CNN and ODENet and Yan et al.'s
  own TisODE (:func:`dyndl_lite.models.yan.build`); :data:`REGIMES`: ``"clean"`` (Table 1) and
  ``"gaussian"`` (Table 2: each training image noised with probability 1/2);
* :func:`recipe`, :func:`checkpoint_name` (``yan-{cnn|odenet|tisode}[-gaussian]-seed{S}``),
  :func:`train` and :func:`load` for the experiments ``yan-clean`` and ``yan-gaussian``
  (:data:`EXPERIMENTS`);
* :func:`table` evaluates the checkpoints on the test set and returns a
  :class:`~dyndl_lite.experiments.results.YanTable`, the paper's numbers beside ours;
  :func:`verdict_markdown` and :func:`verdict_paragraph` state what holds (they and
  :data:`PAPER_SOURCE` are defined beside this module and imported here, so that ``yan`` has
  every name of the protocol).

The book attacks the cross-entropy loss (textbook FGSM / PGD); the authors' code attacks a margin
loss on 1,000 random test images.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dyndl_lite import pretrained, records, runs
from dyndl_lite.data import ImageData, load_mnist
from dyndl_lite.experiments.results import YanTable
from dyndl_lite.experiments.yan_measure import measure_rows, recorded_rows, seed_images, span
from dyndl_lite.experiments.yan_paper import (
    COLUMNS,
    NOISE_PROB,
    PAPER,
    PAPER_MODELS,
    PAPER_RECIPE,
    PGD_STEPS,
    TRAIN_SIGMAS,
    column_label,
)
from dyndl_lite.experiments.yan_paper import PAPER_SOURCE as PAPER_SOURCE
from dyndl_lite.experiments.yan_report import TABLE_NUMBERS
from dyndl_lite.experiments.yan_report import verdict_markdown as verdict_markdown
from dyndl_lite.experiments.yan_report import verdict_paragraph as verdict_paragraph
from dyndl_lite.models.yan import build
from dyndl_lite.protocols import cell_name
from dyndl_lite.record_format import Record, record_path
from dyndl_lite.train import Recipe, fit

#: The networks the experiments train: the rows of the paper's tables and Yan et al.'s TisODE.
MODELS = PAPER_MODELS + ("tisode",)
REGIMES = ("clean", "gaussian")
SEEDS = (0, 1, 2)

#: The book's own runs (plans/book.toml): 10 of the paper's 100 epochs, milestones scaled.
BOOK_EPOCHS = 10
#: Run lengths the plans train, longest first: the paper's (plans/paper.toml), the book's.
RUN_EPOCHS = (PAPER_RECIPE.epochs, BOOK_EPOCHS)

# Quick mode's budget for the networks a chapter trains itself (SVHN, ImgNet10): one epoch over
# at most this many training images instead of the paper's 100 epochs.
QUICK_TRAIN_IMAGES = 60_000

# Test images attacked: the first N of the official test set (fixed, stated, not random).
ATTACK_IMAGES = {"quick": 1000, "full": 10_000}
# The authors attacked 1,000 test images. Shipped networks are read from their evaluation records
# (the full protocol); only a live table (your own networks, or the offline fallback's images) uses
# these counts, and quick mode runs PGD, most of its time, on the first 250.
PGD_IMAGES = {"quick": 250, "full": 1000}
# Quick mode shares its images out among the seeds (seed i of S gets its own 1/S of them), so that
# the chapter's running time does not grow with the number of seeds shipped; full mode attacks
# every seed on all of them, as the paper does.
SHARED_IMAGES = {"quick": True, "full": False}
ATTACK = f"cross-entropy FGSM; PGD {PGD_STEPS} steps of eps/5 from the clean image"


def _checked(name: str, value: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else a ``ValueError`` naming the argument."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}.")
    return value


def checkpoint_name(model: str, seed: int = 0, regime: str = "clean") -> str:
    """``yan-cnn-seed0``, ``yan-odenet-gaussian-seed2``, ``yan-tisode-seed1``, ..."""
    _checked("model", model, MODELS), _checked("regime", regime, REGIMES)
    return f"yan-{model}{'' if regime == 'clean' else '-' + regime}-seed{seed}"


def _with_regime(base: Recipe, regime: str, sigmas: tuple[float, ...] = TRAIN_SIGMAS) -> Recipe:
    """``base`` with the regime's training noise: none (clean), or Table 2's Gaussian noise
    (each image with probability 1/2, a sigma drawn from ``sigmas``)."""
    if _checked("regime", regime, REGIMES) == "clean":
        return base
    return dataclasses.replace(
        base, name=base.name + "-gaussian", noise_prob=NOISE_PROB, noise_sigmas=sigmas
    )


def recipe(model: str, regime: str = "clean") -> Recipe:
    """Yan et al.'s recipe for ``regime``, the same for every model: :data:`PAPER_RECIPE`, and for
    ``"gaussian"`` each training image noised with probability 1/2 by a sigma drawn from
    :data:`TRAIN_SIGMAS`."""
    _checked("model", model, MODELS)
    return _with_regime(PAPER_RECIPE, regime)


def quick_recipe(regime: str = "clean", sigmas: tuple[float, ...] = TRAIN_SIGMAS) -> Recipe:
    """Quick mode's budget for the networks a chapter trains itself: one epoch over at most
    :data:`QUICK_TRAIN_IMAGES` images, otherwise :func:`recipe`."""
    base = dataclasses.replace(
        PAPER_RECIPE, name="yan-quick", epochs=1, milestones=(), train_subset=QUICK_TRAIN_IMAGES
    )
    return _with_regime(base, regime, sigmas)


EXPERIMENTS = tuple(
    runs.Experiment(
        name=f"yan-{regime}",
        models=MODELS,
        build=build,
        recipe=lambda model, regime=regime: recipe(model, regime),
        checkpoint_name=lambda model, seed, regime=regime: checkpoint_name(model, seed, regime),
        book_epochs=lambda model: BOOK_EPOCHS,
        description=f"Yan et al. (2020) Table {TABLE_NUMBERS[regime]}: MNIST CNN / ODENet / TisODE "
        f"trained on {'clean' if regime == 'clean' else 'Gaussian-perturbed'} images, "
        f"checkpoints yan-<model>{'' if regime == 'clean' else '-gaussian'}-seed<S>",
    )
    for regime in REGIMES
)
_BY_REGIME = dict(zip(REGIMES, EXPERIMENTS, strict=True))


def run_checkpoint(model: str, seed: int, regime: str, epochs: int) -> str:
    """The checkpoint name of a run of ``epochs`` epochs: :func:`checkpoint_name` for the book's
    :data:`BOOK_EPOCHS`, ``yan-cnn-gaussian-100ep-seed0`` for the paper's 100
    (:func:`dyndl_lite.runs.run_name`)."""
    return runs.run_name(_BY_REGIME[_checked("regime", regime, REGIMES)], model, seed, epochs)


def _complete(seed: int, regime: str, epochs: int, models: Iterable[str]) -> bool:
    """Whether every one of ``models`` has a checkpoint of ``seed``, ``regime`` and ``epochs``."""
    return all(pretrained.exists(run_checkpoint(m, seed, regime, epochs)) for m in models)


def table_epochs(regime: str) -> int | None:
    """The longest run length of :data:`RUN_EPOCHS` at which some seed has both networks of the
    paper's table (:data:`PAPER_MODELS`) in ``regime``, or ``None`` when there is none.

    A table compares networks trained equally long: its seeds all share this length, so a
    seed whose ODENet is still training at 100 epochs does not pair a 100-epoch CNN with a
    10-epoch ODENet.
    """
    return next(
        (e for e in RUN_EPOCHS for s in range(10) if _complete(s, regime, e, PAPER_MODELS)), None
    )


def available_seeds(regime: str, epochs: int | None = None) -> list[int]:
    """Seeds for which both networks of the paper's table have a checkpoint of ``epochs`` epochs
    in ``regime`` (user folder or shipped); ``epochs`` defaults to :func:`table_epochs`."""
    epochs = table_epochs(regime) if epochs is None else epochs
    if epochs is None:
        return []
    return [s for s in range(10) if _complete(s, regime, epochs, PAPER_MODELS)]


def longest_epochs(model: str, seed: int, regime: str) -> int | None:
    """The longest run length of :data:`RUN_EPOCHS` with a checkpoint of ``model``, or ``None``."""
    return next((e for e in RUN_EPOCHS if _complete(seed, regime, e, [model])), None)


def train(model: str, seed: int = 0, regime: str = "clean", **options: Any) -> Path:
    """Train (or resume) ``model`` in ``regime``; ``options`` as :func:`dyndl_lite.runs.train`.
    Returns the weights path."""
    return runs.train(_BY_REGIME[_checked("regime", regime, REGIMES)], model, seed, **options)


def load(
    model: str, seed: int = 0, regime: str = "clean", epochs: int | None = None
) -> tuple[nn.Module, dict]:
    """Checkpoint of ``model``, ``seed``, ``regime`` and ``epochs`` epochs (default: the longest
    run there is, :func:`longest_epochs`), user folder first, then shipped, and its record."""
    experiment = _BY_REGIME[_checked("regime", regime, REGIMES)]
    if epochs is None:
        # no run at all: the book's run length, whose missing checkpoint the error names
        epochs = longest_epochs(model, seed, regime) or BOOK_EPOCHS
    return runs.load(experiment, model, seed, epochs=epochs)


# --------------------------------------------------------------------------- tables


def _networks(regime: str, seeds: list[int], epochs: int) -> list[tuple[str, int]]:
    """``(model, seed)`` of the paper's networks of every seed, then the TisODE of the seeds that
    have one."""
    tisode = [s for s in seeds if _complete(s, regime, epochs, ["tisode"])]
    return [(m, s) for m in PAPER_MODELS for s in seeds] + [("tisode", s) for s in tisode]


def _checkpoints(
    regime: str, seeds: list[int], epochs: int, records: dict[str, dict]
) -> Iterator[tuple[str, int, nn.Module]]:
    """``(model, seed, network)`` of :func:`_networks`, each checkpoint record kept in
    ``records``."""
    for model, seed in _networks(regime, seeds, epochs):
        net, record = load(model, seed, regime, epochs=epochs)
        records[record["name"]] = record
        yield model, seed, net


def evaluation_records(
    regime: str, seeds: list[int], epochs: int
) -> dict[tuple[str, int], Record] | None:
    """The current evaluation record (:func:`dyndl_lite.records.load`) of every network of the
    table, by ``(model, seed)``; ``None`` when a checkpoint of the user folder (a reader's own
    ``train``) has no record, so that the table is measured live (:func:`missing_records` names
    them). A shipped checkpoint must have a current record: a missing, stale or edited one is a
    :class:`~dyndl_lite.records.RecordError` naming ``make evaluate``."""
    if missing_records(regime, seeds, epochs):
        return None
    return {
        (model, seed): records.load(run_checkpoint(model, seed, regime, epochs))
        for model, seed in _networks(regime, seeds, epochs)
    }


def missing_records(regime: str, seeds: list[int], epochs: int) -> list[str]:
    """The checkpoints of the table in the user folder (a reader's own ``train``) without an
    evaluation record beside them; a shipped checkpoint always has one (see
    :func:`evaluation_records`)."""
    names = [run_checkpoint(m, s, regime, epochs) for m, s in _networks(regime, seeds, epochs)]
    folders = {n: pretrained.locate(n) for n in names}
    return [
        n
        for n in names
        if not pretrained.inside_shipped(folders[n]) and not record_path(n, folders[n]).exists()
    ]


def table(
    regime: str = "clean",
    mode: str = "quick",
    seeds: Sequence[int] | None = None,
    test: ImageData | None = None,
) -> YanTable:
    """Yan et al.'s table of ``regime`` (Table 1 ``"clean"``, Table 2 ``"gaussian"``) on MNIST.

    Without ``test``, in every mode, the numbers are read from the networks' evaluation records
    (:func:`evaluation_records`: the Yan protocol on all 10,000 official MNIST test images, PGD
    on the first 1,000, every seed on the same images; ``from_records``), which a chapter
    re-checks live with :func:`dyndl_lite.recorded.show`. With ``test``, or when a checkpoint of
    the reader's own has no record, they are measured live: every checkpoint of the regime on
    the first :data:`ATTACK_IMAGES` ``[mode]`` images of ``test`` (default: the MNIST test set),
    PGD on the first :data:`PGD_IMAGES` ``[mode]``; where :data:`SHARED_IMAGES` ``[mode]``
    (quick mode) those images are shared out among the seeds
    (:func:`~dyndl_lite.experiments.yan_measure.seed_images`), so that each seed's networks see
    their own part of them. ``seeds`` default to :func:`available_seeds`. The TisODE joins the
    rows for the seeds whose TisODE checkpoint exists (``tisode_seeds``), so that a partly run
    plan already compares it with the ODENet of the same seeds. Every network of the table has
    been trained ``epochs`` epochs (:func:`table_epochs`: the longest run length at which some
    seed is complete).
    """
    _checked("regime", regime, REGIMES)
    _checked("mode", mode, tuple(ATTACK_IMAGES))
    epochs = table_epochs(regime)
    seeds = list(available_seeds(regime, epochs) if seeds is None else seeds)
    if not seeds or epochs is None:
        raise FileNotFoundError(
            f"no shipped checkpoints yan-*{'' if regime == 'clean' else '-gaussian'}-seed*; "
            f"train them with `python -m dyndl_lite train yan-{regime} --model cnn --seed 0`."
        )
    if test is None:
        recorded = evaluation_records(regime, seeds, epochs)
        if recorded is not None:
            return _recorded_table(regime, mode, epochs, recorded)
        test = load_mnist("test")
    return _live_table(regime, mode, seeds, epochs, test)


def _live_table(regime: str, mode: str, seeds: list[int], epochs: int, test: ImageData) -> YanTable:
    """:func:`table` measured live on ``test``: the first :data:`ATTACK_IMAGES` ``[mode]``
    images, shared out among the seeds where :data:`SHARED_IMAGES` ``[mode]``."""
    number = TABLE_NUMBERS[regime]
    x, y = test.images[: ATTACK_IMAGES[mode]], test.labels[: ATTACK_IMAGES[mode]]
    # the counts used: the offline fallback holds 1,000 images
    n, n_pgd = len(x), min(PGD_IMAGES[mode], len(x))
    shared = SHARED_IMAGES[mode] and len(seeds) > 1
    shares = dict(zip(seeds, seed_images(n, n_pgd, len(seeds), shared), strict=True))
    records_, start = {}, time.perf_counter()
    networks = _checkpoints(regime, seeds, epochs, records_)
    rows = measure_rows(networks, x, y, COLUMNS[("mnist", number)], shares)
    missing = missing_records(regime, seeds, epochs)
    data = f"{test.name}: first {n:,} images (PGD: first {n_pgd:,}), measured live" + (
        f" (no evaluation record yet: {', '.join(missing)})" if missing else ""
    )
    if shared:
        data += (
            f", shared out: {span(len(index) for index, _ in shares.values())} per seed "
            f"(PGD: {span(k for _, k in shares.values())})"
        )
    return _yan_table(
        regime,
        (test.accuracy_label, test.is_fallback, data, mode),
        shares,
        rows,
        epochs=epochs,
        records=records_,
        seconds=round(time.perf_counter() - start, 1),
    )


def _recorded_table(
    regime: str, mode: str, epochs: int, recorded: dict[tuple[str, int], Record]
) -> YanTable:
    """:func:`table` read from the networks' evaluation records: every seed on all the records'
    test images (PGD on the first 1,000), in every mode."""
    start = time.perf_counter()
    rows = recorded_rows(recorded, COLUMNS[("mnist", TABLE_NUMBERS[regime])])
    some = next(iter(recorded.values()))
    n, n_pgd = some.cells["clean"].n, some.cells[cell_name("pgd", 0.3)].n
    seeds = sorted({seed for _, seed in recorded})
    shares = {seed: (torch.arange(n), n_pgd) for seed in seeds}
    data = (
        f"{some.key['data']}: all {n:,} images (PGD: first {n_pgd:,}), from the networks' "
        f"evaluation records (protocol {some.key['protocol']} v{some.key['protocol_version']})"
    )
    return _yan_table(
        regime,
        ("test accuracy", False, data, mode),
        shares,
        rows,
        epochs=epochs,
        records={r.checkpoint: pretrained.load_record(r.checkpoint) for r in recorded.values()},
        seconds=round(time.perf_counter() - start, 1),
        from_records=True,
    )


def _yan_table(
    regime: str,
    measured_on: tuple[str, bool, str, str],
    shares: dict[int, tuple[torch.Tensor, int]],
    rows: dict[str, dict],
    dataset: str = "mnist",
    **more: Any,
) -> YanTable:
    """The :class:`~dyndl_lite.experiments.results.YanTable` of :func:`table` and
    :func:`table_from_training`: the ``rows`` measured on ``measured_on`` (what the accuracy is,
    whether the images are the offline fallback's, their description, and the mode), with the
    table's columns, the paper's numbers and the images of each seed (``shares``, from
    :func:`~dyndl_lite.experiments.yan_measure.seed_images`)."""
    accuracy_label, fallback, data, mode = measured_on
    number = TABLE_NUMBERS[regime]
    specs = COLUMNS[(dataset, number)]
    used = torch.cat([index for index, _ in shares.values()]).unique()
    attacked = torch.cat([index[:pgd] for index, pgd in shares.values()]).unique()
    # disjoint images per seed: the seeds' image errors are independent; any overlap (records,
    # full mode: every seed on the same images) counts as shared, the conservative reading
    disjoint = len(shares) > 1 and len(used) == sum(len(index) for index, _ in shares.values())
    return YanTable(
        regime=regime,
        mode=mode,
        seeds=tuple(shares),
        data=data,
        images=len(used),
        accuracy_label=accuracy_label,
        fallback=fallback,
        number=number,
        dataset=dataset,
        columns=tuple(column_label(kind, strength, dataset) for kind, strength in specs),
        column_specs=tuple(specs),
        rows=rows,
        paper=PAPER[(dataset, number)],
        pgd_images=len(attacked),
        images_per_seed={seed: len(index) for seed, (index, _) in shares.items()},
        pgd_images_per_seed={seed: pgd for seed, (_, pgd) in shares.items()},
        same_images=not disjoint,
        attack=ATTACK,
        tisode_seeds=tuple(rows["tisode"]["seed_ids"]) if "tisode" in rows else (),
        **more,
    )


def table_from_training(
    dataset: str,
    regime: str,
    train_data: ImageData,
    test_data: ImageData,
    mode: str = "quick",
    seeds: Iterable[int] = (0,),
    progress: bool = False,
) -> YanTable:
    """SVHN / ImgNet10 (no shipped checkpoints): train the 3-channel CNN and ODENet on
    ``train_data`` and evaluate the columns of ``regime``'s table on the first
    :data:`ATTACK_IMAGES` ``[mode]`` images of ``test_data``.

    Quick mode trains with :func:`quick_recipe`, full mode with the paper's. The Gaussian training
    noise of Table 2 uses each data set's largest Table-2 sigma and the two below it in Table 1
    (SVHN {15, 25, 35}, ImgNet10 {10, 15, 25}): Yan et al. give the MNIST sigmas only, so this is
    the book's choice.
    """
    number = TABLE_NUMBERS[_checked("regime", regime, REGIMES)]
    _checked("dataset", dataset, ("svhn", "imgnet10"))
    _checked("mode", mode, tuple(ATTACK_IMAGES))
    sigmas = tuple(float(s) for k, s in COLUMNS[(dataset, 1)] if k == "gaussian")
    rec = (
        quick_recipe(regime, sigmas)
        if mode == "quick"
        else _with_regime(PAPER_RECIPE, regime, sigmas)
    )
    seeds = list(seeds)
    x, y = test_data.images[: ATTACK_IMAGES[mode]], test_data.labels[: ATTACK_IMAGES[mode]]
    n, n_pgd = len(x), min(PGD_IMAGES[mode], len(x))

    def networks() -> Iterator[tuple[str, int, nn.Module]]:
        for model in PAPER_MODELS:
            for seed in seeds:
                torch.manual_seed(seed)
                net = build(model, in_channels=3)
                fit(net, train_data, rec, seed=seed, progress=progress)
                yield model, seed, net

    shares = dict(zip(seeds, seed_images(n, n_pgd, len(seeds), shared=False), strict=True))
    rows = measure_rows(networks(), x, y, COLUMNS[(dataset, number)], shares)
    data = (
        f"{train_data.name} for training; "
        f"{test_data.name}: first {n:,} images (PGD: first {n_pgd:,})"
    )
    return _yan_table(
        regime,
        (test_data.accuracy_label, test_data.is_fallback, data, mode),
        shares,
        rows,
        dataset=dataset,
        epochs=rec.epochs,
        records={},
        recipe=dataclasses.asdict(rec),
    )
