"""Gai & Zhang (2021) as published: their weight-decay sweep and its values, with provenance.

An MNIST ResNet's LSS and OTS as printed, and a CIFAR-100 weight-decay sweep of residual and plain
networks read off their plots; the book prints them beside ours
(:mod:`~dyndl_lite.experiments.gai_report`).
"""

from __future__ import annotations

#: Gai & Zhang's weight-decay sweep (CIFAR-100), every one of them trained here on MNIST.
PAPER_WEIGHT_DECAYS = (0.0, 5e-4, 1e-3, 5e-3, 1e-2)
#: The weight decays of Gai & Zhang's CIFAR-10 training-accuracy observation (their figure).
PAPER_CIFAR10_WEIGHT_DECAYS = (1e-4, 2e-1)

PAPER_SOURCE = (
    "Gai & Zhang, A Mathematical Principle of Deep Learning: Learn the Geodesic Curve in the "
    "Wasserstein Space, arXiv:2102.09235 (2021)"
)
#: Gai & Zhang's values: the MNIST ResNet's as printed, the CIFAR-100 sweep's read off their plots.
PAPER = {
    # MNIST ResNet with L2 regularisation, as printed.
    "mnist": {"lss": 1.12, "ots": 0.96},
    # CIFAR-100 weight-decay sweep, values read off their plots (about +-0.02).
    "cifar100": {
        "weight_decay": [0.0, 5e-4, 1e-3, 5e-3, 1e-2],
        "resnet_test_acc_pct": [74.5, 76.4, 77.1, 79.7, 78.1],
        "plain_test_acc_pct": [57.4, 64.2, 69.6, 67.8, 44.2],
        "resnet_ots": [1.0, 1.0, 0.99, 0.96, 0.86],
        "plain_ots": [0.15, 0.0, 0.22, 0.06, 0.0],  # "~0" in the paper is written 0.0 here
        "resnet_lss": [1.38, 1.28, 1.30, 1.55, 1.82],
        "plain_lss": [4.6, 4.1, 4.0, 3.5, 3.9],
    },
}


def paper_cifar100_rows() -> list[dict]:
    """Gai & Zhang's CIFAR-100 values as table rows for :func:`dyndl_lite.verdicts.gai`. The paper
    plots test accuracy only, so it stands in the ``train_acc`` field; use these rows for the
    per-weight-decay comparisons, not for the training-accuracy trend."""
    p = PAPER["cifar100"]
    return [
        {
            "network": net,
            "weight_decay": g,
            "lss": p[f"{key}_lss"][i],
            "ots": p[f"{key}_ots"][i],
            "train_acc": p[f"{key}_test_acc_pct"][i] / 100,
        }
        for i, g in enumerate(p["weight_decay"])
        for net, key in (("residual", "resnet"), ("plain", "plain"))
    ]
