"""Yan et al.'s robustness tables (ICLR 2020) as published: their columns, numbers, recipe and
attack settings, and the authors' released attack log.

Yan, Du, Tan, Feng 2020, Section 4; public code HanshuYAN/TisODE:

* models: the CNN and the ODENet (:func:`dyndl_lite.models.yan.build`), :data:`PAPER_MODELS`;
* Table 1 trains on unperturbed images; Table 2 gives each training image, with probability
  :data:`NOISE_PROB`, Gaussian noise of standard deviation ``sigma / 255`` with ``sigma`` drawn
  from :data:`TRAIN_SIGMAS` (MNIST);
* recipe (:data:`PAPER_RECIPE`): Adam, learning rate 1e-3, weight decay 5e-4, batch 128,
  100 epochs, learning rate times 0.2 at epochs 30, 60, 90;
* perturbations (:data:`COLUMNS`): Gaussian noise with ``sigma`` on the 0-255 scale; FGSM and PGD
  with ``eps`` on the [0, 1] scale; the authors' code attacks a margin loss on 1,000 random test
  images, PGD with :data:`PGD_STEPS` iterations of step ``eps / 5``.

How the book measures them is :mod:`~dyndl_lite.experiments.yan_measure`; the book's runs are
:mod:`~dyndl_lite.experiments.yan`.
"""

from __future__ import annotations

from collections.abc import Iterable

from dyndl_lite.train import Recipe

#: The rows of the paper's Tables 1 and 2 (Yan et al.'s own TisODE is not among them).
PAPER_MODELS = ("cnn", "odenet")
TRAIN_SIGMAS = (50.0, 75.0, 100.0)  # Table 2 training noise, MNIST
NOISE_PROB = 0.5
PGD_STEPS = 10  # step eps / 5, as in the authors' code

#: Yan et al.'s recipe (Section 4 and the authors' code), the same for every model.
PAPER_RECIPE = Recipe(
    name="yan-full",
    epochs=100,
    batch_size=128,
    optimizer="adam",
    lr=1e-3,
    weight_decay=5e-4,
    milestones=(30, 60, 90),
    gamma=0.2,
)


def columns(
    gaussian: Iterable[float] = (), fgsm: Iterable[float] = (), pgd: Iterable[float] = ()
) -> list[tuple[str, float]]:
    """A table's columns ``(kind, strength)`` in the paper's order: Gaussian sigmas (0-255 scale),
    then FGSM and PGD radii (``eps`` on the [0, 1] scale).

    >>> columns(gaussian=(100,), pgd=(0.3,))
    [('gaussian', 100), ('pgd', 0.3)]
    """
    return (
        [("gaussian", s) for s in gaussian]
        + [("fgsm", e) for e in fgsm]
        + [("pgd", e) for e in pgd]
    )


def of_255(*levels: int) -> tuple[float, ...]:
    """Radii given in 255ths, as the colour data sets' columns are: ``of_255(8) == (8 / 255,)``."""
    return tuple(level / 255 for level in levels)


#: Columns per (data set, table number).
COLUMNS = {
    ("mnist", 1): columns(gaussian=(50, 75, 100), fgsm=(0.15, 0.3, 0.5)),
    ("mnist", 2): columns(gaussian=(100,), fgsm=(0.3, 0.5), pgd=(0.2, 0.3)),
    ("svhn", 1): columns(gaussian=(15, 25, 35), fgsm=of_255(3, 5, 8)),
    ("svhn", 2): columns(gaussian=(35,), fgsm=of_255(5, 8), pgd=of_255(3, 5)),
    ("imgnet10", 1): columns(gaussian=(10, 15, 25), fgsm=of_255(5, 8, 16)),
    ("imgnet10", 2): columns(gaussian=(25,), fgsm=of_255(5, 8), pgd=of_255(3, 5)),
}

#: Yan et al. (2020), Tables 1 and 2: accuracy in %, mean and std over runs, as published.
PAPER = {
    ("mnist", 1): {
        "cnn": [(98.1, 0.7), (85.8, 4.3), (56.4, 5.6), (63.4, 2.3), (24.0, 8.9), (8.3, 3.2)],
        "odenet": [(98.7, 0.6), (90.6, 5.4), (73.2, 8.6), (83.5, 0.9), (42.1, 2.4), (14.3, 2.1)],
    },
    ("svhn", 1): {
        "cnn": [(90.0, 1.2), (76.3, 2.7), (60.9, 3.9), (29.2, 2.9), (13.7, 1.9), (5.4, 1.5)],
        "odenet": [(95.7, 0.7), (88.1, 1.5), (78.2, 2.1), (58.2, 2.3), (43.0, 1.3), (30.9, 1.4)],
    },
    ("imgnet10", 1): {
        "cnn": [(80.1, 1.8), (63.3, 2.0), (40.8, 2.7), (28.5, 0.5), (18.1, 0.7), (9.4, 1.2)],
        "odenet": [(81.9, 2.0), (67.5, 2.0), (48.7, 2.6), (36.2, 1.0), (27.2, 1.1), (14.4, 1.7)],
    },
    ("mnist", 2): {
        "cnn": [(98.7, 0.1), (54.2, 1.1), (15.8, 1.3), (32.9, 3.7), (0.0, 0.0)],
        "odenet": [(99.4, 0.1), (71.5, 1.1), (19.9, 1.2), (64.7, 1.8), (13.0, 0.2)],
    },
    ("svhn", 2): {
        "cnn": [(90.6, 0.2), (25.3, 0.6), (12.3, 0.7), (32.4, 0.4), (14.0, 0.5)],
        "odenet": [(95.1, 0.1), (49.4, 1.0), (34.7, 0.5), (50.9, 1.3), (27.2, 1.4)],
    },
    ("imgnet10", 2): {
        "cnn": [(92.6, 0.6), (40.9, 1.8), (26.7, 1.7), (28.6, 1.5), (11.2, 1.2)],
        "odenet": [(92.6, 0.5), (42.0, 0.4), (29.0, 1.0), (29.8, 0.4), (12.3, 0.6)],
    },
}
PAPER_SOURCE = (
    "Yan, Du, Tan, Feng, On Robustness of Neural Ordinary Differential Equations, ICLR 2020, "
    "Tables 1-2"
)

#: The only TisODE numbers we can source: the authors' released attack log (their paper's TisODE
#: table we could not read here). FGSM accuracy (%) of three Gaussian-trained runs per model, each
#: attacked on 1,000 test images by their ``attack_mnist/main_{cnn,ode,tisode}.py``; the log's other
#: columns (FGSM-0.15 for the TisODE, PGD, black box) were switched off in that code and read 0.
AUTHORS_LOG_SOURCE = "Yan et al.'s public repository HanshuYAN/TisODE, file sharing_MNIST_FGSM.txt"
AUTHORS_LOG_FGSM = {
    0.3: {"cnn": (54.5, 52.4, 54.4), "odenet": (72.3, 70.8, 70.3), "tisode": (74.9, 78.6, 78.1)},
    0.5: {"cnn": (16.8, 16.1, 14.3), "odenet": (19.4, 21.2, 18.8), "tisode": (37.5, 35.9, 27.8)},
}


def column_label(kind: str, strength: float, dataset: str = "mnist") -> str:
    """``s=50``, ``FGSM-0.3``, ``PGD-5/255`` (fractions of 255 for the colour data sets)."""
    if kind == "gaussian":
        return f"s={strength:g}"
    if dataset == "mnist":
        return f"{kind.upper()}-{strength:g}"
    return f"{kind.upper()}-{round(strength * 255):d}/255"
