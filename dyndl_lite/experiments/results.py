"""What the experiment modules return: a paper's table measured on our networks, as typed data.

Every paper module (:mod:`~dyndl_lite.experiments.chen`, :mod:`~dyndl_lite.experiments.yan`,
:mod:`~dyndl_lite.experiments.gai`) has ``table(regime, mode, seeds, test)``; it returns a
:class:`Table`: the fields every paper shares (which networks, measured on which images, in which
mode), extended by the paper's own in :class:`ChenTable`, :class:`YanTable` and :class:`GaiTable`.
The module's ``verdict_markdown(table)`` and ``verdict_paragraph(table)`` print it. A table's
``rows`` are plain dictionaries, one per network (or per network and weight decay), as
:mod:`dyndl_lite.verdicts` reads them.

>>> from dyndl_lite.experiments import chen, gai, yan
>>> [module.table.__annotations__["return"] for module in (chen, yan, gai)]
['ChenTable', 'YanTable', 'GaiTable']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class Table:
    """The fields of every paper's table."""

    #: How the networks' training images were perturbed: ``"clean"``, or ``"gaussian"`` (Yan et
    #: al.'s Table 2); each module's ``REGIMES`` lists its own.
    regime: str
    #: ``"quick"`` or ``"full"`` (:func:`dyndl_lite.config.get_mode`).
    mode: str
    #: The training seeds of the networks measured.
    seeds: tuple[int, ...]
    #: The evaluation images, in words (their data set, and which of them).
    data: str
    #: How many images the accuracies count.
    images: int
    #: What the accuracy is: test accuracy only on official test data.
    accuracy_label: str
    #: Whether the images are the offline fallback's (official training images: no test set).
    fallback: bool
    #: The checkpoint records of the networks measured, by checkpoint name (empty for networks
    #: trained in place).
    records: Mapping[str, dict]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChenTable(Table):
    """Chen et al.'s Table 1 (:func:`dyndl_lite.experiments.chen.table`), read from the networks'
    evaluation records (a user-folder checkpoint without one is measured live)."""

    #: One row per model with a checkpoint: ``model``, ``parameters``, ``test_error_percent``
    #: (from its evaluation record, or measured now), ``source`` (``chen.FROM_RECORD`` or
    #: ``chen.MEASURED_LIVE``), ``data``, ``eval_images`` and ``accuracy_label`` of that error,
    #: ``recorded_test_error_percent`` (at training time, ``None`` on the fallback),
    #: ``epochs_run``, ``eval_seconds`` (``None`` when read from a record), ``record`` and the
    #: paper's ``paper_test_error_percent`` and ``paper_parameters_m``.
    rows: tuple[dict, ...]
    #: The ODE-Net against the ResNet on the same images
    #: (:func:`dyndl_lite.significance.paired_accuracy_difference`, with ``data`` and ``sources``);
    #: ``None`` when either is missing.
    paired: dict | None
    #: The ODE-Net's tolerance sweep (Chen et al. Fig. 3a), one dict per tolerance: ``tol``,
    #: ``solver_error``, ``test_error_percent``, ``nfe_forward``, ``reference_tol``,
    #: ``reference_images``, ``images``, ``data``, ``source``; empty without an ODE-Net.
    sweep: tuple[dict, ...] = ()
    #: The evaluation records the rows were read from (:class:`dyndl_lite.records.Record`), by
    #: checkpoint name; a network missing here was measured live.
    evaluation_records: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class YanTable(Table):
    """One of Yan et al.'s Tables 1-2 (:func:`dyndl_lite.experiments.yan.table`,
    :func:`~dyndl_lite.experiments.yan.table_from_training`)."""

    #: The paper's table: 1 (clean training) or 2 (Gaussian training).
    number: int
    #: ``"mnist"``, ``"svhn"`` or ``"imgnet10"``.
    dataset: str
    #: The columns' labels (``s=50``, ``FGSM-0.3``) and their ``(kind, strength)``.
    columns: tuple[str, ...]
    column_specs: tuple[tuple[str, float], ...]
    #: Per model: ``seeds`` (per seed, the accuracy in % under each column), their ``mean`` and
    #: sample ``std`` over seeds, ``clean`` (per seed, on the same images) and ``seed_ids``.
    rows: Mapping[str, dict]
    #: The paper's ``(mean, std)`` per model and column.
    paper: Mapping[str, list[tuple[float, float]]]
    #: How many of the images PGD attacks, and the images (PGD's) of each seed.
    pgd_images: int
    images_per_seed: Mapping[int, int]
    pgd_images_per_seed: Mapping[int, int]
    #: Whether every seed was measured on the same images (evaluation records, full mode, SVHN and
    #: ImgNet10): then the images' sampling error is common to the seeds and the verdicts bound it
    #: by the mean of the seeds' errors. False only when the seeds' images are disjoint (quick mode
    #: shares the images out among the seeds), where the errors are independent
    #: (:func:`dyndl_lite.significance.images_se_of_mean`).
    same_images: bool
    #: The attacks, in words.
    attack: str
    #: The epochs every network of the table was trained.
    epochs: int
    #: The seeds with a TisODE among the rows (none when no TisODE checkpoint exists).
    tisode_seeds: tuple[int, ...] = ()
    #: The recipe of networks trained in place (SVHN, ImgNet10), else ``None``.
    recipe: dict | None = None
    #: Seconds the measurement took.
    seconds: float | None = None
    #: Whether the numbers were read from the networks' evaluation records
    #: (:mod:`dyndl_lite.records`: every test image, PGD the first 1,000) instead of measured live.
    from_records: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class GaiTable(Table):
    """Gai & Zhang's residual against plain networks across weight decay
    (:func:`dyndl_lite.experiments.gai.table`)."""

    #: One row per network and weight decay: ``network`` (``"residual"`` or ``"plain"``),
    #: ``weight_decay``, ``test_acc``, ``lss`` (with ``lss_se`` and ``lss_left_out``), ``ots``,
    #: ``eval_images``, ``correct`` (per evaluation image, whether the network classified it
    #: correctly: the paired test of :func:`dyndl_lite.verdicts.generalizes_better`),
    #: ``ots_points``, ``train_acc``, ``epochs_run``, the ``checkpoint``'s name,
    #: its training ``record`` and the numbers' ``source`` (its evaluation record, or measured
    #: live: :data:`dyndl_lite.experiments.gai_report.FROM_RECORD` and the two beside it).
    rows: tuple[dict, ...]
    #: The images LSS and OTS are measured on (a fixed random subset of the evaluation images).
    ots_points: int
    #: The weight decays measured, each with both networks.
    weight_decays: tuple[float, ...]
