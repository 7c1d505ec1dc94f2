"""Yan et al.'s own networks under the book's protocol: a control that splits the gap between the
paper's Table 2 and the book's into what the protocol changes and what the training changes.

For one column of Table 2 and one architecture, with ``paper`` the published mean, ``authors``
the authors' released network (:mod:`dyndl_lite.released`) measured by the book's code and
``ours`` the mean of the book's networks over seeds::

    ours - paper = (authors - paper) + (ours - authors)
                    protocol gap       training gap

The protocol gap holds everything that differs between the paper's measurement and the book's on
the *same kind* of weights (test images, attack loss, rounding, the run drawn); the training gap
everything that differs between their weights and ours (epochs, seed, selection of the best
epoch) measured the *same way*. Each gap gets a margin:

* protocol: ``1.96 sqrt(se_b(authors)^2 + std_paper^2)``, with ``se_b`` the binomial standard
  error on the ``n`` images the column used (:func:`dyndl_lite.significance.accuracy_se`, the
  book's one convention: Agresti and Caffo's, so that 0 % still carries an error) and
  ``std_paper`` the paper's run-to-run standard deviation (their run 1 is one draw of the runs
  they average);
* training: ``t_{0.975, S-1} std(ours)/sqrt(S) + 1.96 se_images`` over ``S >= 2`` seeds (with
  one seed, the images' term alone). Where the records keep both networks' per-image outcomes
  on the same images, ``se_images`` is paired image by image: ``std(u)/sqrt(N)`` with
  ``u_i = mean_s ours_s(i) - authors(i)`` (:func:`dyndl_lite.significance.paired_images_se`).
  Otherwise it is ``sqrt(mean_s se_b(ours_s)^2 + se_b(authors)^2)``. Our seeds are measured on
  the same test images, so the images' sampling error is common to them: it is not in the
  seeds' spread and does not average out. Without per-image outcomes, the mean of the seeds'
  binomial errors bounds our part (the standard deviation of a mean is at most the mean of the
  standard deviations), and adding the authors' error in quadrature treats the two networks'
  errors on an image as independent.

"Ours" are, per architecture, the networks of Table 2 (every architecture of a seed trained
equally long), unless some seed of that architecture has been trained longer: then the longest
such runs, read from their evaluation records (:func:`longer_runs`). So a CNN that has finished
the paper's 100 epochs is compared with the authors' CNN, trained as long, while its ODENet is
still training; each row prints its epochs.

A gap inside its margin reads "within noise". The same weights were also attacked by the authors'
own script (their log, :data:`~dyndl_lite.experiments.yan_paper.AUTHORS_LOG_FGSM`, run 1): that is
the sharpest protocol check, the same network measured two ways.

Example::

    >>> from dyndl_lite.experiments import yan, yan_control
    >>> found = yan_control.control("quick")                 # doctest: +SKIP
    >>> rows = yan_control.gaps(found, yan.table("gaussian"))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from dyndl_lite import pretrained, protocols, records, released, significance, verdicts
from dyndl_lite.data import DatasetNotFoundError
from dyndl_lite.experiments import yan
from dyndl_lite.experiments.results import YanTable
from dyndl_lite.experiments.yan_measure import recorded_rows
from dyndl_lite.experiments.yan_paper import AUTHORS_LOG_FGSM, column_label
from dyndl_lite.experiments.yan_paper import COLUMNS as PAPER_COLUMNS
from dyndl_lite.record_format import Record, record_path

#: The columns of Table 2 (MNIST), the table the control measures.
COLUMNS = PAPER_COLUMNS[("mnist", 2)]
#: Live re-measurement per mode on top of the records (:func:`dyndl_lite.records.spot_check`):
#: quick mode samples cells and images, full mode re-measures every cell on every image.
SPOT_CHECK = {
    "quick": {"cells": 1, "images": 200, "pgd_images": 25},
    "full": {"cells": None, "images": None, "pgd_images": None},
}
COMMAND = "python -m dyndl_lite.experiments.yan_control"


def measure_record(model: str, force: bool = False) -> Path:
    """Measure the authors' released ``model`` under the book's Yan protocol
    (:data:`dyndl_lite.protocols.YAN`: all 10,000 official MNIST test images, PGD the first 1,000)
    and write its evaluation record into the package's checkpoint folder (numbers only: their
    weights are never shipped). An existing record is kept unless ``force``."""
    net, loaded = released.load(model)
    record = records.measure(
        protocols.YAN,
        net,
        records.official_test_data(),
        loaded["name"],
        loaded["weights_sha256"],
        command=f"{COMMAND} {model}",
        say=print,
    )
    return records.write(record, pretrained.SHIPPED_DIR, overwrite=force)


def load_record(model: str) -> records.Record:
    """The evaluation record of the authors' ``model``, checked (digest, bitmaps) and current:
    keyed by the pinned SHA-256 of their file and this code's Yan protocol version."""
    entry = released.entry(model)
    record = records.read(records.record_path(entry.name, pretrained.SHIPPED_DIR))
    remedy = f"Re-measure it with `{COMMAND} {model} --force`."
    return records.require_current(record, entry.sha256, protocols.YAN, remedy)


def control(mode: str = "quick", seed: int = 0) -> dict:
    """The authors' networks under the book's protocol, read from their records
    (:func:`load_record`), each re-checked live (:func:`dyndl_lite.records.spot_check` with
    :data:`SPOT_CHECK` ``[mode]`` and ``seed``) when its file is at hand.

    Returns per model the accuracies (%) of every Table 2 column and the images each used, the
    clean accuracy, the accuracy among the images classified correctly when clean (what the
    authors' scripts call ``accuracy_withRef``), the record's one-line description and the spot
    check's line (or why it was skipped).
    """
    found = {}
    data = None
    for model in released.RELEASED:
        record = load_record(model)
        clean = record.cells["clean"].outcomes
        cells = [record.cells[protocols.cell_name(k, s)] for k, s in COLUMNS]
        try:
            net, _ = released.load(model)
            data = records.official_test_data() if data is None else data
            check = records.spot_check(record, net, data, seed=seed, **SPOT_CHECK[mode])
        except DatasetNotFoundError as missing:
            check = f"no live check: {missing}"
        found[model] = {
            "accuracy": [100 * c.value for c in cells],
            "images": [c.n for c in cells],
            "accuracy_among_clean_correct": [
                100 * (c.outcomes & clean[: c.n]).sum() / clean[: c.n].sum() for c in cells
            ],
            "clean": 100 * record.cells["clean"].value,
            "outcomes": [np.asarray(c.outcomes, dtype=bool) for c in cells],
            "described": records.describe(record),
            "spot_check": check,
        }
    return {"mode": mode, "models": found}


def _training_margin(
    ours: np.ndarray, ours_images: int, authors: float, n: int, paired_se: float | None = None
) -> float:
    """The training gap's margin (see the module docstring): Student's t over our seeds plus the
    test images' error of ``ours - authors``: ``paired_se`` where the per-image outcomes are
    known, else the binomial errors of ours (the mean over seeds: they share the images) and of
    the authors' combined."""
    se = significance.accuracy_se
    if paired_se is not None:
        images = 1.96 * paired_se
    else:
        images = 1.96 * math.hypot(np.mean([se(a, ours_images) for a in ours]), se(authors, n))
    if len(ours) >= 2:
        t = significance.t_quantile(len(ours) - 1, level=0.025)  # two-sided 95 %
        return t * ours.std(ddof=1) / math.sqrt(len(ours)) + images
    return images


def _paired_training_se(
    ours: list[list[np.ndarray]] | None, authors: dict, column: int
) -> float | None:
    """The images' error of ``mean_s ours_s - authors`` in ``column``, paired image by image
    (:func:`dyndl_lite.significance.paired_images_se` with the authors' outcomes repeated for each
    of our seeds), where both keep per-image outcomes of the same images; else ``None``."""
    theirs = authors.get("outcomes")
    if ours is None or theirs is None:
        return None
    mine = np.array([seed[column] for seed in ours])
    if mine.shape[1] != len(theirs[column]):
        return None
    return significance.paired_images_se(mine, np.tile(theirs[column], (len(mine), 1)))


def _reading(gap: float, margin: float, below: str, above: str) -> str:
    if abs(gap) <= margin:
        return "within noise"
    return below if gap < 0 else above


def longer_runs(table2: YanTable) -> dict[str, tuple[int, list[Record]]]:
    """Per architecture of Table 2 (``"cnn"``, ``"odenet"``) whose longest Gaussian-trained run
    (:func:`dyndl_lite.experiments.yan.longest_epochs`, over every seed) is longer than
    ``table2.epochs``: that run length and the evaluation records of those runs, one per seed
    that has one (:func:`dyndl_lite.records.load`, checked current). An architecture whose
    longer runs lack a record (a reader's own, not yet evaluated) is left out, and the control
    uses the table's."""
    found = {}
    for model in ("cnn", "odenet"):
        by_seed = {s: yan.longest_epochs(model, s, "gaussian") for s in range(10)}
        epochs = max((e for e in by_seed.values() if e is not None), default=None)
        if epochs is None or table2.epochs is None or epochs <= table2.epochs:
            continue
        names = [
            yan.run_checkpoint(model, s, "gaussian", epochs)
            for s, e in by_seed.items()
            if e == epochs
        ]
        if all(record_path(n, pretrained.locate(n)).exists() for n in names):
            found[model] = (epochs, [records.load(n) for n in names])
    return found


def _ours_from_table(table2: YanTable, model: str) -> dict:
    """Our ``model`` as in ``table2``: per-seed accuracies, the images each column used, and the
    per-image outcomes where the table keeps them (read from records, every seed on the same
    images)."""
    first = table2.seeds[0]  # with one seed, the images its columns used
    return {
        "accuracy": np.array(table2.rows[model]["seeds"]),
        "outcomes": table2.rows[model].get("outcomes") if table2.same_images else None,
        "images": [
            table2.pgd_images_per_seed[first] if kind == "pgd" else table2.images_per_seed[first]
            for kind, _ in table2.column_specs
        ],
        "epochs": table2.epochs,
    }


def _ours_from_records(epochs: int, found: list[Record]) -> dict:
    """Our networks of one architecture from their evaluation records
    (:func:`~dyndl_lite.experiments.yan_measure.recorded_rows`), as :func:`_ours_from_table`."""
    rows = recorded_rows({("ours", i): record for i, record in enumerate(found)}, COLUMNS)
    cells = [found[0].cells[protocols.cell_name(kind, strength)] for kind, strength in COLUMNS]
    return {
        "accuracy": np.array(rows["ours"]["seeds"]),
        "outcomes": rows["ours"]["outcomes"],
        "images": [c.n for c in cells],
        "epochs": epochs,
    }


def gaps(
    control: dict, table2: YanTable, longer: dict[str, tuple[int, list[Record]]] | None = None
) -> list[dict]:
    """One row per (model, column) of Table 2 for the CNN and the ODENet: the paper's mean and
    std, the authors' network under the book's code, ours (mean over seeds), the protocol gap
    ``authors - paper`` and the training gap ``ours - authors``, each with its margin and reading
    (see the module's docstring).

    Ours are ``table2``'s networks, except for an architecture in ``longer``
    (:func:`longer_runs`: the run length and the evaluation records of runs longer than the
    table's), whose records are used instead; every row names its ``epochs``.
    """
    if table2.number != 2:
        raise ValueError(
            "table2 must be yan.table('gaussian')'s result (the Gaussian-trained networks)."
        )
    if table2.fallback:
        raise ValueError(
            "table2 was measured on the offline fallback's images (official training images); "
            "the control is measured on the official test set, so the two do not compare."
        )
    longer = {} if longer is None else longer
    rows = []
    for model in ("cnn", "odenet"):
        if model in longer:
            mine = _ours_from_records(*longer[model])
        else:
            mine = _ours_from_table(table2, model)
        for j, column in enumerate(table2.columns):
            paper, paper_std = table2.paper[model][j]
            authors = control["models"][model]["accuracy"][j]
            n = control["models"][model]["images"][j]
            ours = mine["accuracy"][:, j]
            protocol, training = authors - paper, ours.mean() - authors
            protocol_margin = 1.96 * math.hypot(significance.accuracy_se(authors, n), paper_std)
            paired_se = _paired_training_se(mine.get("outcomes"), control["models"][model], j)
            training_margin = _training_margin(ours, mine["images"][j], authors, n, paired_se)
            rows.append(
                {
                    "model": model,
                    "column": column,
                    "paper": paper,
                    "paper_std": paper_std,
                    "authors": authors,
                    "authors_images": n,
                    "ours": float(ours.mean()),
                    "seeds": len(ours),
                    "epochs": mine["epochs"],
                    "protocol_gap": protocol,
                    "protocol_margin": protocol_margin,
                    "protocol": _reading(protocol, protocol_margin, "book lower", "book higher"),
                    "training_gap": float(training),
                    "training_margin": training_margin,
                    "training_images_se": "binomial" if paired_se is None else "paired",
                    "training": _reading(training, training_margin, "ours lower", "ours higher"),
                }
            )
    return rows


def gaps_markdown(rows: list[dict]) -> str:
    """:func:`gaps` as a table: paper, authors' networks (book's code), ours (with the seeds and
    epochs of each row), and both gaps with their margins and readings."""
    header = [
        "network",
        "perturbation",
        "paper",
        "authors' network, book's code",
        "ours",
        "protocol gap (authors − paper)",
        "training gap (ours − authors)",
    ]
    lines = [
        [
            "CNN" if r["model"] == "cnn" else "ODENet",
            r["column"],
            f"{r['paper']:.1f} ± {r['paper_std']:.1f}",
            f"{r['authors']:.1f} (n = {r['authors_images']:,})",
            f"{r['ours']:.1f} ({r['seeds']} seed{'s' if r['seeds'] > 1 else ''}, "
            f"{r['epochs']} epochs)",
            f"{r['protocol_gap']:+.1f} ± {r['protocol_margin']:.1f}: {r['protocol']}",
            f"{r['training_gap']:+.1f} ± {r['training_margin']:.1f}: {r['training']}",
        ]
        for r in rows
    ]
    return verdicts.markdown_table(header, lines)


def same_weights_markdown(control: dict) -> str:
    """The authors' run-1 networks measured twice: by their own script (their log, FGSM only)
    and by the book's code, with the accuracy among clean-correct images beside the plain one."""
    header = [
        "network",
        "perturbation",
        "their script (log, run 1)",
        "book's code: accuracy",
        "book's code: among clean-correct",
    ]
    lines = []
    for model, found in control["models"].items():
        for j, (kind, strength) in enumerate(COLUMNS):
            if kind != "fgsm" or strength not in AUTHORS_LOG_FGSM:
                continue
            lines.append(
                [
                    {"cnn": "CNN", "odenet": "ODENet", "tisode": "TisODE"}[model],
                    column_label(kind, strength),
                    f"{AUTHORS_LOG_FGSM[strength][model][0]:.1f}",
                    f"{found['accuracy'][j]:.1f}",
                    f"{found['accuracy_among_clean_correct'][j]:.1f}",
                ]
            )
    return verdicts.markdown_table(header, lines)


def which_accuracy(control: dict) -> str:
    """A computed sentence: can the authors' own log for the same networks (FGSM columns of
    :data:`~dyndl_lite.experiments.yan_paper.AUTHORS_LOG_FGSM`, run 1) tell which of the book's two
    accuracies (plain, or among clean-correct images) their tables report?

    With ``a`` and ``b`` the mean absolute differences of the two accuracies from the log and
    ``s`` the mean difference between the two accuracies, the log points to the nearer one only
    when it lies within ``s / 2`` of it; farther away it is about as far from both, and the
    sentence says that it cannot tell them apart."""
    plain, among, apart = [], [], []
    for model, found in control["models"].items():
        for j, (kind, strength) in enumerate(COLUMNS):
            if kind == "fgsm" and strength in AUTHORS_LOG_FGSM:
                logged = AUTHORS_LOG_FGSM[strength][model][0]
                plain.append(abs(found["accuracy"][j] - logged))
                among.append(abs(found["accuracy_among_clean_correct"][j] - logged))
                apart.append(abs(found["accuracy_among_clean_correct"][j] - found["accuracy"][j]))
    if not plain:
        raise ValueError("the control has no FGSM column that the authors' log reports.")
    near, separation = min(np.mean(plain), np.mean(among)), float(np.mean(apart))
    if near < separation / 2:
        closer = (
            "the plain accuracy"
            if np.mean(plain) <= np.mean(among)
            else "the accuracy among clean-correct images"
        )
        answer = f"the log points to {closer}"
    else:
        answer = (
            "the log lies farther from both than half their separation, so it cannot tell which "
            "of the two the tables report"
        )
    return (
        f"Over the {len(plain)} FGSM entries of the authors' log, the book's plain accuracy lies "
        f"{np.mean(plain):.1f} points from their logged number on average, the accuracy among "
        f"clean-correct images {np.mean(among):.1f}; the two accuracies differ by "
        f"{separation:.1f} points on average (at most {max(apart):.1f}) on these networks, whose "
        f"clean accuracy is high: {answer}. (Their log attacked 1,000 random test images with "
        "their own script; the record, the images printed above.)"
    )


def summary(rows: list[dict]) -> str:
    """A computed paragraph: how much of the gap between the paper and the book is protocol and
    how much training, in numbers (per network, over the columns of Table 2)."""
    parts = []
    for model, label in (("cnn", "CNN"), ("odenet", "ODENet")):
        mine = [r for r in rows if r["model"] == model]
        protocol = np.mean([abs(r["protocol_gap"]) for r in mine])
        training = np.mean([r["training_gap"] for r in mine])
        inside = sum(r["protocol"] == "within noise" for r in mine)
        lower = sum(r["training"] == "ours lower" for r in mine)
        larger = sum(abs(r["training_gap"]) > abs(r["protocol_gap"]) for r in mine)
        epochs = mine[0]["epochs"]
        parts.append(
            f"for the {label} (ours trained {epochs} epochs, the authors' {released.EPOCHS}), "
            f"the authors' network measured by the book's code lies within "
            f"noise of the paper in {inside} of {len(mine)} columns (mean absolute protocol gap "
            f"{protocol:.1f} points), while ours lie {abs(training):.1f} points "
            f"{'below' if training < 0 else 'above'} the authors' network on average, "
            f"significantly below it in {lower} of {len(mine)} columns; the training gap is "
            f"the larger of the two in {larger} of {len(mine)} columns"
        )
    return (
        "Where the gap comes from: "
        + "; ".join(parts)
        + ". The protocol gap is what the book's measurement changes on the authors' own "
        "weights (test images, attack loss, the run drawn); the training gap is what our "
        "training changes (its length and learning-rate schedule, the seed, the epoch kept), "
        "measured the same way."
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m dyndl_lite.experiments.yan_control MODEL... [--force]``: measure records."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=measure_record.__doc__)
    parser.add_argument("models", nargs="+", choices=list(released.RELEASED))
    parser.add_argument("--force", action="store_true", help="re-measure an existing record")
    args = parser.parse_args(argv)
    for model in args.models:
        print(f"wrote {measure_record(model, args.force)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
