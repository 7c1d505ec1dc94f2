"""The papers' experiments: one module per paper, every module of one shape.

* :mod:`~dyndl_lite.experiments.chen`: Chen et al. (2018), Table 1 (MNIST MLP, ResNet, RK-Net,
  ODE-Net);
* :mod:`~dyndl_lite.experiments.yan`: Yan et al. (2020), Tables 1 and 2 (robustness of CNN,
  ODENet, TisODE);
* :mod:`~dyndl_lite.experiments.gai`: Gai & Zhang (2021), residual vs plain networks across weight
  decay.

Each module exposes the same names, with the same signatures (``tests/test_experiments.py``
compares them), so that one read predicts the others:

=============================================  ==================================================
``EXPERIMENTS``                                the trainable :class:`~dyndl_lite.runs.Experiment` s
``MODELS``                                     the networks those experiments train (what
                                               ``python -m dyndl_lite train <name> --model``
                                               takes)
``REGIMES``                                    how the training images are perturbed:
                                               ``"clean"``, and for Yan et al. ``"gaussian"``
``PAPER``, ``PAPER_SOURCE``                    the paper's numbers as published, and where they
                                               are printed
``recipe(model, regime)``                      the paper's training recipe
                                               (a :class:`~dyndl_lite.recipe.Recipe`)
``checkpoint_name(model, seed, regime)``       the checkpoint's name
``train(model, seed, regime, **options)``      train (or resume) one network:
                                               :func:`dyndl_lite.runs.train`, returns a path
``load(model, seed, regime, epochs)``          ``(network, record)`` from the checkpoint (user
                                               folder, then shipped)
``table(regime, mode, seeds, test)``           the paper's table measured on the checkpoints: a
                                               :class:`~dyndl_lite.experiments.results.Table`
``verdict_markdown(table)``                    that table beside the paper's, with a computed
                                               verdict per claim
``verdict_paragraph(table)``                   the verdict in plain words, with the numbers
=============================================  ==================================================

A paper's own numbers, measurements and prose sit beside its module: ``yan_paper``,
``yan_measure`` and ``yan_report`` for Yan et al., ``gai_paper`` and ``gai_report`` for Gai &
Zhang; ``yan_control`` measures the authors' own networks as chapter 6's control.
:func:`registry` maps every experiment's name (what ``python -m dyndl_lite train <name>`` takes) to
its :class:`~dyndl_lite.runs.Experiment`.
"""

from __future__ import annotations

from dyndl_lite.experiments import chen, gai, yan
from dyndl_lite.runs import Experiment

#: The experiment modules, in the book's order.
MODULES = (chen, yan, gai)


def registry() -> dict[str, Experiment]:
    """Every trainable experiment by name, from the modules' ``EXPERIMENTS``."""
    return {experiment.name: experiment for module in MODULES for experiment in module.EXPERIMENTS}


def get(name: str) -> Experiment:
    """The experiment ``name``, or a ``ValueError`` listing the known ones."""
    known = registry()
    if name not in known:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(sorted(known))}.")
    return known[name]
