"""Yan et al.'s tables in Markdown and their verdicts in words: what chapter 6 prints from a
:class:`~dyndl_lite.experiments.results.YanTable`.

:func:`verdict_rows` applies :func:`dyndl_lite.verdicts.yan` to a table (is one network more
accurate than another under each perturbation, paired over the seeds both were measured on);
:func:`verdict_markdown` and :func:`verdict_paragraph` print the ODENet-CNN verdicts beside the
paper's numbers, :func:`tisode_markdown` the TisODE against the ODENet, :func:`authors_log_markdown`
and :func:`authors_log_paragraph` the authors' released log, :func:`paper_only_markdown` the
paper's SVHN and ImgNet10 tables where their data are missing.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from dyndl_lite import significance, verdicts
from dyndl_lite.experiments.results import YanTable
from dyndl_lite.experiments.yan_paper import (
    AUTHORS_LOG_FGSM,
    AUTHORS_LOG_SOURCE,
    COLUMNS,
    PAPER,
    PAPER_MODELS,
    PAPER_RECIPE,
    column_label,
)

#: Yan et al.'s table of each training regime.
TABLE_NUMBERS = {"clean": 1, "gaussian": 2}


def _pm(mean: float, std: float | None) -> str:
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def column_images(table: YanTable, seed: int) -> list[int] | None:
    """The images each column of ``table`` was measured on for ``seed`` (PGD columns use fewer),
    or ``None`` where the table does not record that seed's images."""
    if seed not in table.images_per_seed:
        return None
    images, pgd = table.images_per_seed[seed], table.pgd_images_per_seed[seed]
    return [pgd if kind == "pgd" else images for kind, _ in table.column_specs]


def _by_seed(table: YanTable, model: str, key: str) -> dict[int, list[float] | float]:
    """``{seed: table.rows[model][key] of that seed}``; a row without ``seed_ids`` holds every
    seed of the table."""
    row = table.rows[model]
    return dict(zip(row.get("seed_ids", table.seeds), row[key], strict=True))


def paired_seeds(
    table: YanTable, ours: str, theirs: str
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The seeds both ``ours`` and ``theirs`` were measured on, in the table's seed order, with
    their per-seed accuracies ``(seeds, columns)`` on those seeds."""
    a, b = _by_seed(table, ours, "seeds"), _by_seed(table, theirs, "seeds")
    common = [s for s in table.seeds if s in a and s in b]
    if not common:
        raise ValueError(f"{ours} and {theirs} share no seed in this table.")
    return common, np.array([a[s] for s in common]), np.array([b[s] for s in common])


def clean_accuracy(table: YanTable, model: str, seeds: Iterable[int] | None = None) -> float:
    """``model``'s clean accuracy (%) in ``table``, the mean over ``seeds`` (default: every seed it
    was measured on), each seed on its own images."""
    by_seed = _by_seed(table, model, "clean")
    wanted = list(by_seed) if seeds is None else list(seeds)
    missing = [s for s in wanted if s not in by_seed]
    if missing:
        raise ValueError(f"{model} was not measured on seed(s) {missing}; it has {list(by_seed)}.")
    return float(np.mean([by_seed[s] for s in wanted]))


def verdict_rows(table: YanTable, ours: str = "odenet", theirs: str = "cnn") -> list[dict]:
    """:func:`dyndl_lite.verdicts.yan` applied to ``table``: is ``ours`` more accurate than
    ``theirs`` under each perturbation (per-seed accuracies, on the seeds both were measured on,
    paired: :func:`paired_seeds`), by Student's t over those seeds plus the binomial error of the
    images each seed's columns used (on the same images for every seed unless the table shared
    them out: ``table.same_images``)? The paper's numbers join only for ODENet vs CNN."""
    paper = table.paper if (ours, theirs) == ("odenet", "cnn") else None
    seeds, a, b = paired_seeds(table, ours, theirs)
    per_seed = [column_images(table, seed) for seed in seeds]
    images = None if any(counts is None for counts in per_seed) else per_seed
    return verdicts.yan(
        list(table.columns),
        a,
        b,
        paper,
        images=images,
        same_images=table.same_images,
        paired_se=_paired_se(table, seeds, ours, theirs),
    )


def _paired_se(table: YanTable, seeds: list[int], ours: str, theirs: str) -> list[float] | None:
    """Per column, the images' error of ``ours - theirs`` paired image by image over ``seeds``
    (:func:`dyndl_lite.significance.paired_images_se`), where both rows keep per-image outcomes
    of the same images for every seed (tables read from evaluation records); else ``None``."""
    if not table.same_images or any("outcomes" not in table.rows[m] for m in (ours, theirs)):
        return None
    a, b = _by_seed(table, ours, "outcomes"), _by_seed(table, theirs, "outcomes")
    return [
        significance.paired_images_se(
            np.array([a[s][j] for s in seeds]), np.array([b[s][j] for s in seeds])
        )
        for j in range(len(table.columns))
    ]


def _difference(row: dict) -> str:
    """A verdict row's mean difference with its spread: ``+2.3 ± 1.6`` over seeds, ``+1.2 (s.e.
    0.8)`` for one seed's binomial standard error."""
    if row["std"] is not None:
        return f"{row['mean']:+.1f} ± {row['std']:.1f}"
    if row.get("se_kind"):
        return f"{row['mean']:+.1f} (s.e. {row['se']:.1f})"
    return f"{row['mean']:+.1f}"


def _with_t(row: dict) -> str:
    """``FGSM-0.3 (t = 5.1, p = 0.020)``: a column with its t statistic over seeds, if any."""
    if row.get("t") is None:
        # t is undefined for differences identical over seeds (their spread is 0)
        if row.get("std") == 0:
            return f"{row['column']} (identical differences over seeds)"
        return row["column"]
    return f"{row['column']} (t = {row['t']:.1f}, p = {row['p_one_sided']:.3f})"


def _seeds_label(seeds: Iterable[int]) -> str:
    n = len(list(seeds))
    return f"{n} seed{'s' if n > 1 else ''}"


def verdict_markdown(table: YanTable) -> str:
    """``table`` transposed, one line per perturbation: the paper's CNN, ODENet and difference,
    ours (mean ± sample std over the seeds, paired difference ± its std) and the computed verdict
    of :func:`dyndl_lite.verdicts.yan` ("ODENet more robust than CNN"). The TisODE, when the table
    has it, is a table of its own (:func:`tisode_markdown`)."""
    spread = len(table.seeds) > 1
    header = [
        "perturbation",
        "CNN, paper",
        "ODENet, paper",
        "difference, paper",
        f"CNN, ours ({_seeds_label(table.seeds)})",
        f"ODENet, ours ({_seeds_label(table.seeds)})",
        "difference, ours",
        "ODENet more robust? (ours)",
    ]
    cnn, ode = table.rows["cnn"], table.rows["odenet"]
    lines = [
        [
            row["column"],
            _pm(*table.paper["cnn"][j]),
            _pm(*table.paper["odenet"][j]),
            f"{row['paper_difference']:+.1f}",
            _pm(cnn["mean"][j], cnn["std"][j] if spread else None),
            _pm(ode["mean"][j], ode["std"][j] if spread else None),
            _difference(row),
            row["verdict"],
        ]
        for j, row in enumerate(verdict_rows(table))
    ]
    return verdicts.markdown_table(header, lines)


def tisode_markdown(table: YanTable) -> str:
    """Yan et al.'s own proposal against the ODENet, one line per perturbation of ``table``: ours
    (mean ± sample std over the seeds with a TisODE, the ODENet on the same seeds), the paired
    difference and the verdict "TisODE more robust than ODENet". The paper's TisODE numbers are not
    printed (see :func:`authors_log`)."""
    if "tisode" not in table.rows:
        raise ValueError("this table has no TisODE rows: its checkpoints are not shipped.")
    seeds, tis, ode = paired_seeds(table, "tisode", "odenet")
    spread = len(seeds) > 1

    def cell(values: np.ndarray) -> str:
        return _pm(values.mean(), values.std(ddof=1) if spread else None)

    lines = [
        [row["column"], cell(ode[:, j]), cell(tis[:, j]), _difference(row), row["verdict"]]
        for j, row in enumerate(verdict_rows(table, "tisode", "odenet"))
    ]
    label = f"seed{'s' if spread else ''} {', '.join(map(str, seeds))}"
    return verdicts.markdown_table(
        [
            "perturbation",
            f"ODENet, ours ({label})",
            f"TisODE, ours ({label})",
            "TisODE − ODENet, ours",
            "TisODE more robust than ODENet? (ours)",
        ],
        lines,
    )


def authors_log() -> list[dict]:
    """:data:`~dyndl_lite.experiments.yan_paper.AUTHORS_LOG_FGSM` summarised per FGSM radius
    ``eps``: mean and sample std over the three runs of each model, the TisODE's lead over the
    ODENet (difference of means), and ``paper_gap``, the largest distance (points) between the
    log's CNN or ODENet mean and the paper's Table 2: whether the log is the paper's experiment."""
    specs = COLUMNS[("mnist", 2)]
    rows = []
    for eps, by_model in AUTHORS_LOG_FGSM.items():
        j = specs.index(("fgsm", eps))
        row = {"eps": eps, "column": column_label("fgsm", eps), "paper_column": j}
        for model, values in by_model.items():
            row[model] = (float(np.mean(values)), float(np.std(values, ddof=1)))
        row["tisode_minus_odenet"] = row["tisode"][0] - row["odenet"][0]
        row["paper_gap"] = max(abs(row[m][0] - PAPER[("mnist", 2)][m][j][0]) for m in PAPER_MODELS)
        rows.append(row)
    return rows


def authors_log_markdown() -> str:
    """:func:`authors_log` as a table, marked as the authors', beside the paper's Table 2."""
    paper = PAPER[("mnist", 2)]
    lines = [
        [
            row["column"],
            _pm(*paper["cnn"][row["paper_column"]]),
            _pm(*paper["odenet"][row["paper_column"]]),
            _pm(*row["cnn"]),
            _pm(*row["odenet"]),
            _pm(*row["tisode"]),
            f"{row['tisode_minus_odenet']:+.1f}",
        ]
        for row in authors_log()
    ]
    return verdicts.markdown_table(
        [
            "perturbation (Gaussian training)",
            "CNN, paper",
            "ODENet, paper",
            "CNN, authors' log (3 runs)",
            "ODENet, authors' log",
            "TisODE, authors' log",
            "TisODE − ODENet, authors' log",
        ],
        lines,
    )


def authors_log_paragraph(table2: YanTable | None = None) -> str:
    """What the authors' log says about the TisODE (:func:`authors_log`), with its source and its
    distance from the paper's Table 2; with ``table2`` (the Gaussian-trained table holding TisODE
    rows) also our TisODE - ODENet difference and verdict in the same columns."""
    log = authors_log()
    lead = ", ".join(f"{r['tisode_minus_odenet']:+.1f} points at {r['column']}" for r in log)
    text = (
        f"Source: {AUTHORS_LOG_SOURCE}. The log's CNN and ODENet means lie within "
        f"{max(r['paper_gap'] for r in log):.1f} points of the paper's Table 2, so, as far as two "
        f"columns can show, it records the paper's experiment. In it the TisODE leads the ODENet "
        f"by {lead}, with a standard deviation over its three runs of up to "
        f"{max(r['tisode'][1] for r in log):.1f} points."
    )
    if table2 is None or "tisode" not in table2.rows:
        return text + " Ours cannot be set beside it yet: no Gaussian-trained TisODE is shipped."
    ours = {r["column"]: r for r in verdict_rows(table2, "tisode", "odenet")}
    at = [
        f"{ours[r['column']]['mean']:+.1f} at {r['column']} ({ours[r['column']]['verdict']})"
        for r in log
    ]
    return text + " Ours (Table 2 above): " + ", ".join(at) + "."


def paper_only_markdown(
    dataset: str, regime: str, reason: str = "not run: data not available here"
) -> str:
    """The paper's table of ``regime`` for ``dataset`` (SVHN, ImgNet10), marked as theirs, our
    cells ``reason``."""
    number = TABLE_NUMBERS.get(regime)
    if (dataset, number) not in PAPER or dataset == "mnist":
        raise ValueError(
            f"dataset must be 'svhn' or 'imgnet10' and regime one of {tuple(TABLE_NUMBERS)}, "
            f"got {dataset!r}, {regime!r}."
        )
    paper = PAPER[(dataset, number)]
    labels = [column_label(k, s, dataset) for k, s in COLUMNS[(dataset, number)]]
    lines = [
        [
            label,
            _pm(*paper["cnn"][j]),
            _pm(*paper["odenet"][j]),
            f"{paper['odenet'][j][0] - paper['cnn'][j][0]:+.1f}",
            reason,
        ]
        for j, label in enumerate(labels)
    ]
    return verdicts.markdown_table(
        [
            "perturbation",
            "CNN, paper (theirs)",
            "ODENet, paper (theirs)",
            "difference, paper (theirs)",
            "ours",
        ],
        lines,
    )


# --------------------------------------------------------------------------- the paragraph


def _claim_sentence(table: YanTable, rows: list[dict]) -> str:
    """How many columns hold, fail and are unresolved, ours beside the paper's."""
    counts = verdicts.count(rows)
    held = [_with_t(r) for r in rows if r["verdict"] == verdicts.HOLDS]
    failed = [r["column"] for r in rows if r["verdict"] == verdicts.FAILS]
    open_ = [r["column"] for r in rows if r["verdict"] == verdicts.UNRESOLVED]
    return (
        f"**Table {table.number} "
        f"({'clean' if table.regime == 'clean' else 'Gaussian'} training).** "
        "Yan et al.'s claim, that the ODENet is more accurate than the CNN under each "
        f"perturbation, holds in our runs in {counts[verdicts.HOLDS]} of {len(rows)} columns"
        + (f" ({', '.join(held)})" if held else "")
        + f", does not hold in {counts[verdicts.FAILS]}"
        + (f" ({', '.join(failed)})" if failed else "")
        + (
            " and is not resolved (the difference lies within the rule's margin of zero) in "
            f"{counts[verdicts.UNRESOLVED]} ({', '.join(open_)})"
            if open_
            else ""
        )
        + "; the paper has the ODENet ahead in "
        f"{sum(r['paper_difference'] > 0 for r in rows)} of {len(rows)}. "
    )


def _training_length(run: int, full: int, compressed: bool) -> str:
    """``"10 of 100 epochs"``, and how the schedule was compressed where it was: a run shorter
    than the paper's that scales its learning-rate milestones is not the paper's first epochs."""
    text = f"{run} of {full} epochs"
    if compressed:
        text += f" (learning-rate milestones scaled by {run / full:.3g})"
    return text


def _numbers_sentence(table: YanTable, rows: list[dict], clean: dict[str, float]) -> str:
    """Seeds, training lengths, clean accuracies, and the rule's margin."""
    n = len(table.seeds)
    images = "paired (image by image)" if rows[0].get("images_se_kind") == "paired" else "binomial"
    epochs = sorted(
        {
            (
                r["epochs_run"],
                r.get("full_recipe_epochs", PAPER_RECIPE.epochs),
                str(r.get("compression", "")).startswith("compressed"),
            )
            for r in table.records.values()
        }
    )
    return (
        f"Our numbers: {_seeds_label(table.seeds)}"
        + f", {' and '.join(_training_length(*e) for e in epochs)} of the paper's recipe, "
        f"clean accuracy CNN {clean['cnn']:.1f} %, ODENet {clean['odenet']:.1f} % "
        f"on {table.data}. "
        + (
            "A column holds when the mean difference exceeds Student's t quantile "
            f"t(0.95, {n - 1}) = {rows[0]['t_quantile']:.2f} standard errors over seeds plus "
            f"1.96 {images} standard errors of the images (t and the one-sided p are given "
            "beside each column that holds)."
            if n > 1
            else f"The margin is 1.96 {images} standard errors of the test images alone: "
            "a second seed could still change a verdict."
        )
    )


def _tisode_sentence(table: YanTable, columns: int) -> str:
    """The TisODE against the ODENet of the same seeds, where the table has one."""
    if "tisode" not in table.rows:
        return ""
    counts = verdicts.count(verdict_rows(table, "tisode", "odenet"))
    seeds = paired_seeds(table, "tisode", "odenet")[0]
    seed_word = "seeds" if len(seeds) > 1 else "seed"
    return (
        f" Yan et al.'s TisODE ({seed_word} {', '.join(map(str, seeds))}) is more "
        f"accurate than the ODENet of the same {seed_word} in "
        f"{counts[verdicts.HOLDS]} of {columns} columns and less accurate in "
        f"{counts[verdicts.FAILS]} (clean accuracy on the same images: TisODE "
        f"{clean_accuracy(table, 'tisode', seeds):.1f} %, ODENet "
        f"{clean_accuracy(table, 'odenet', seeds):.1f} %)."
    )


def _caveats(table: YanTable) -> str:
    """Unequal training budgets, and a run shorter than the paper's, where they apply."""
    text = ""
    budgets = {
        model: sorted({r["epochs_run"] for r in table.records.values() if r["model"] == model})
        for model in PAPER_MODELS
    }
    if budgets["cnn"] != budgets["odenet"]:
        text += (
            " The two networks were trained for different budgets (CNN "
            f"{'/'.join(map(str, budgets['cnn']))} epochs, ODENet "
            f"{'/'.join(map(str, budgets['odenet']))}): this comparison is not like with like, "
            "and a verdict against the shorter-trained network may say more about its budget "
            "than about its architecture."
        )
    if table.epochs < PAPER_RECIPE.epochs:
        # the authors released Gaussian-trained MNIST networks only
        control = (
            "; the control with the authors' own Gaussian-trained networks measures the training "
            "gap of each architecture's longest run, column by column (its rows print their "
            "epochs)"
            if table.dataset == "mnist" and table.regime == "gaussian"
            else ""
        )
        text += (
            f" These networks ran {table.epochs} of the paper's {PAPER_RECIPE.epochs} "
            f"epochs{control}, and the verdicts may change when longer-trained checkpoints are "
            "shipped."
        )
    return text


def verdict_paragraph(table: YanTable) -> str:
    """The verdict of ``table`` (ODENet against CNN, and the TisODE where it has one) in plain
    words, with the numbers: the claim's counts, what was measured, and the caveats."""
    rows = verdict_rows(table)
    clean = {m: float(np.mean(table.rows[m]["clean"])) for m in PAPER_MODELS}
    return (
        _claim_sentence(table, rows)
        + _numbers_sentence(table, rows, clean)
        + _tisode_sentence(table, len(rows))
        + _caveats(table)
    )
