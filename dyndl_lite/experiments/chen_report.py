"""Chen et al.'s Table 1 in words: the verdict table and paragraph of a
:class:`~dyndl_lite.experiments.results.ChenTable` (:func:`dyndl_lite.verdicts.chen` judges it).
"""

from __future__ import annotations

from dyndl_lite import significance, verdicts
from dyndl_lite.experiments.results import ChenTable

#: Where a row's numbers come from.
FROM_RECORD = "evaluation record"
MEASURED_LIVE = "measured live, no evaluation record"


def _judged(table: ChenTable) -> dict:
    """:func:`dyndl_lite.verdicts.chen` of ``table``: the paired comparison judged on its own
    images, and each model's binomial standard error ``100 sqrt(p (1 - p) / n)``
    (:func:`~dyndl_lite.significance.wald_se`) on the ``n`` images its row counts (its
    ``eval_images``; the table's ``images`` for rows without): a live row on other images beside
    records counts other images."""
    images = table.paired["images"] if table.paired else table.images
    result = verdicts.chen(table.rows, images, paired=table.paired)
    counted = {row["model"]: row.get("eval_images", table.images) for row in table.rows}
    for m in result["models"]:
        m["se"] = significance.wald_se(m["error"], counted[m["model"]])
    return result


def verdict_markdown(table: ChenTable) -> str:
    """Per model of ``table``: the paper's error and parameters, ours (with the binomial standard
    error on the images its row counts, marked "live" when measured now rather than read from an
    evaluation record), the epochs run of the paper's, and whether the book's target error
    (:data:`dyndl_lite.verdicts.CHEN_TARGETS`) is met."""
    result = _judged(table)
    by_model = {r["model"]: r for r in table.rows}
    lines = []
    for m in result["models"]:
        record = by_model[m["model"]]["record"]
        if m["target_met"]:
            outcome = "met"
        else:
            outcome = "missed by " + format(m["error"] - m["target"], ".2f") + " points"
        lines.append(
            [
                m["model"],
                f"{m['paper_error']:.2f} %",
                f"{by_model[m['model']]['paper_parameters_m']:.2f} M",
                f"{m['error']:.2f} % ± {m['se']:.2f}"
                + (" (live)" if by_model[m["model"]].get("source") == MEASURED_LIVE else ""),
                f"{m['parameters'] / 1e6:.2f} M",
                f"{record['epochs_run']} of {record.get('full_recipe_epochs', 160)}",
                f"≤ {m['target']:.1f} %: {outcome}",
            ]
        )
    return verdicts.markdown_table(
        [
            "model",
            "error, paper",
            "parameters, paper",
            "error, ours (± binomial s.e.)",
            "parameters, ours",
            "epochs run (of the paper's)",
            "book's target",
        ],
        lines,
    )


def _paired_sentence(p: dict | None) -> str:
    """The paired comparison of the ODE-Net and the ResNet in words, or why it is missing."""
    if p is None:
        return "Without a paired comparison of the two networks the accuracy half is undecided. "
    low, high = p["interval"]
    return (
        f"Paired on the same {p['images']:,} images (McNemar), the ODE-Net minus ResNet error "
        f"is {p['difference']:+.2f} points: {p['a_only']} images are right for the ResNet "
        f"only and {p['b_only']} for the ODE-Net only; the {p['interval_level']:.0%} interval "
        f"of the difference is [{low:+.2f}, {high:+.2f}] points against the fixed margin "
        f"{p['margin']:.2f} (McNemar's p for any difference: {p['p_mcnemar']:.2f}). "
    )


def _unresolved_sentence(v: dict, shortened: bool) -> str:
    """Why an unresolved claim is not reproduced: the interval reaches the margin, a model misses
    its target error, or both (``shortened``: a run was shorter than the paper's recipe)."""
    missed = [m["model"] for m in v["models"] if not m["target_met"]]
    reasons = []
    if v["accuracy_half"] is None and v["paired"] is not None:
        reasons.append(
            "the interval reaches the margin, so the data can show neither a match nor a "
            "shortfall (not finding a difference is not evidence of equality)"
        )
    if missed:
        reasons.append(
            f"{', '.join(missed)} {'misses its' if len(missed) == 1 else 'miss their'} "
            "target error"
            + (
                ": these runs are shorter than the paper's, and the ranking after a shortened "
                "schedule need not survive the full one"
                if shortened
                else ""
            )
        )
    return "Not reproduced because " + "; and ".join(reasons) + "." if reasons else ""


def verdict_paragraph(table: ChenTable) -> str:
    """The verdict on "same performance with fewer parameters" in plain words, from
    :func:`dyndl_lite.verdicts.chen` with the table's paired comparison
    (:func:`paired_comparison`)."""
    v = _judged(table)
    by_model = {m["model"]: m for m in v["models"]}
    ode, res = by_model["odenet"], by_model["resnet"]
    epochs = {r["model"]: r["record"]["epochs_run"] for r in table.rows}
    full = {r["model"]: r["record"].get("full_recipe_epochs", 160) for r in table.rows}
    pair = {"odenet": "ODE-Net", "resnet": "ResNet"}
    shortened = any(epochs[m] < full[m] for m in pair)
    record = {r["model"]: r["record"] for r in table.rows}
    # runs.compression's words: the paper's milestones scaled into fewer epochs
    compressed = [
        label
        for m, label in pair.items()
        if str(record[m].get("compression", "")).startswith("compressed")
    ]
    schedule = (
        f" ({' and '.join(compressed)}: the paper's learning-rate schedule compressed into "
        "those epochs, its milestones scaled)"
        if compressed
        else ""
    )
    word = {
        verdicts.HOLDS: "holds in our runs",
        verdicts.FAILS: "does not hold in our runs",
        verdicts.UNRESOLVED: "is not reproduced",
    }[v["verdict"]]
    text = (
        "**Verdict.** Chen et al.'s claim that the ODE-Net matches the ResNet's error with about a "
        f"third of its parameters {word}: ODE-Net {ode['error']:.2f} % against ResNet "
        f"{res['error']:.2f} % on {table.data} (paper {v['paper_gap']:+.2f} points), "
        f"with {v['ratio']:.1f}x fewer parameters, after {epochs['odenet']} (ODE-Net) and "
        f"{epochs['resnet']} (ResNet) epochs of the paper's {full['odenet']}{schedule}. "
    ) + _paired_sentence(v["paired"])
    if v["verdict"] == verdicts.FAILS:
        text += (
            "The ODE-Net is worse than the ResNet by more than the margin"
            if v["accuracy_half"] is False
            else "The parameter ratio is below the claim's"
        ) + " at this budget."
    elif v["verdict"] == verdicts.UNRESOLVED:
        text += _unresolved_sentence(v, shortened)
    else:
        text += (
            "The ODE-Net is within the margin and both networks meet the book's target error "
            f"after {epochs['odenet']} and {epochs['resnet']} epochs"
            + (
                f"; the paper trained {full['odenet']}, so these runs are shorter than the "
                "full recipe."
                if shortened
                else "."
            )
        )
    met = sum(m["target_met"] for m in v["models"])
    return text + f" Targets met: {met} of {len(v['models'])} models."
