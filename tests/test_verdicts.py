"""The verdict rules of dyndl_lite.verdicts: each test would fail under a sign flip or a wrong
threshold."""

import dataclasses
import math

import numpy as np
import pytest

from dyndl_lite import significance
from dyndl_lite import verdicts as v
from dyndl_lite.experiments import chen, gai, gai_paper, gai_report, yan, yan_report
from dyndl_lite.experiments.results import ChenTable, GaiTable, YanTable

# --------------------------------------------------------------------------- Yan


def test_paired_difference_mean_std_se():
    d = significance.seeds_difference([90.0, 92.0, 94.0], [88.0, 88.0, 88.0])  # differences 2, 4, 6
    assert d["mean"] == pytest.approx(4.0)
    assert d["std"] == pytest.approx(2.0)  # sample std, ddof = 1
    assert d["se"] == pytest.approx(2.0 / math.sqrt(3))
    assert d["seeds"] == 3
    single = significance.seeds_difference([91.0], [90.0])
    assert single["std"] is None and single["se"] is None


def test_sign_verdict_direction_and_standard_error():
    assert v.sign_verdict(0.5, None) == v.HOLDS  # one seed: the sign decides
    assert v.sign_verdict(-0.5, None) == v.FAILS
    assert v.sign_verdict(0.0, None) == v.UNRESOLVED
    assert v.sign_verdict(3.0, 1.0) == v.HOLDS
    assert v.sign_verdict(0.5, 1.0) == v.UNRESOLVED  # positive but within the margin
    assert v.sign_verdict(-3.0, 1.0) == v.FAILS
    with pytest.raises(ValueError, match="margin"):
        v.sign_verdict(1.0, -1.0)


def test_yan_rows_follow_the_odenet_minus_cnn_sign():
    columns = ["s=50", "FGSM-0.3"]
    ode = [[95.0, 40.0], [96.0, 41.0]]
    cnn = [[90.0, 50.0], [91.0, 52.0]]
    paper = {"cnn": [(98.1, 0.7), (24.0, 8.9)], "odenet": [(98.7, 0.6), (42.1, 2.4)]}
    # the s=50 differences are identical over seeds: only the images' error gives them a margin
    rows = v.yan(columns, ode, cnn, paper, images=[1000, 1000], same_images=True)
    assert [r["verdict"] for r in rows] == [v.HOLDS, v.FAILS]
    assert rows[0]["mean"] == pytest.approx(5.0) and rows[1]["mean"] == pytest.approx(-10.5)
    assert rows[0]["paper_difference"] == pytest.approx(0.6) and rows[1][
        "paper_difference"
    ] == pytest.approx(18.1)
    assert rows[0]["paper_verdict"] == v.HOLDS
    # swapping the networks flips every verdict
    swapped = v.yan(columns, cnn, ode, images=[1000, 1000], same_images=True)
    assert [r["verdict"] for r in swapped] == [v.FAILS, v.HOLDS]
    assert v.count(rows) == {v.HOLDS: 1, v.FAILS: 1, v.UNRESOLVED: 0}


def test_yan_noisy_seeds_are_unresolved():
    # mean difference +1 with differences +6, -4: the standard error 5 exceeds the mean
    rows = v.yan(["c"], [[96.0], [86.0]], [[90.0], [90.0]])
    assert rows[0]["mean"] == pytest.approx(1.0) and rows[0]["verdict"] == v.UNRESOLVED


def test_yan_margin_over_seeds_is_two_standard_errors():
    # differences +4, +1: mean 2.5, standard error 1.5; one SE would say "holds", two do not
    rows = v.yan(["c"], [[94.0], [91.0]], [[90.0], [90.0]])
    assert rows[0]["se"] == pytest.approx(1.5) and rows[0]["verdict"] == v.UNRESOLVED
    # differences +5, +4: mean 4.5 > 2 x 0.5
    assert v.yan(["c"], [[95.0], [94.0]], [[90.0], [90.0]])[0]["verdict"] == v.HOLDS


def test_yan_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        v.yan(["c"], [[float("nan")]], [[90.0]])
    with pytest.raises(ValueError, match="columns"):
        v.yan(["a", "b"], [[1.0]], [[1.0]])


# --------------------------------------------------------------------------- Chen


def _chen_rows(errors, params=None):
    params = params or {"mlp": 238_510, "resnet": 601_482, "rknet": 208_266, "odenet": 208_266}
    paper = {"mlp": 1.60, "resnet": 0.41, "rknet": 0.47, "odenet": 0.42}
    return [
        {
            "model": m,
            "test_error_percent": e,
            "parameters": params[m],
            "paper_test_error_percent": paper[m],
        }
        for m, e in errors.items()
    ]


def _chen_table(rows, paired=None, images=10_000):
    """A Chen et al. table of ``rows`` measured on ``images`` MNIST test images."""
    return ChenTable(
        regime="clean", mode="quick", seeds=(0,), data="MNIST test", images=images,
        accuracy_label="test accuracy", fallback=False, records={}, rows=tuple(rows),
        paired=paired,
    )  # fmt: skip


def _paired(n, resnet_only, odenet_only, margin=v.CHEN_EQUIVALENCE_MARGIN):
    """A McNemar comparison on n images: ``resnet_only`` right for the ResNet only, ``odenet_only``
    for the ODE-Net only, the rest right for both."""
    res = np.ones(n, dtype=bool)
    ode = np.ones(n, dtype=bool)
    ode[:resnet_only] = False
    res[resnet_only : resnet_only + odenet_only] = False
    return significance.paired_accuracy_difference(res, ode, margin)


def test_chen_matching_models_meeting_their_targets_reproduce_the_claim():
    rows = _chen_rows({"mlp": 1.7, "resnet": 0.45, "rknet": 0.5, "odenet": 0.48})
    result = v.chen(rows, 10_000, paired=_paired(10_000, 10, 7))
    assert result["verdict"] == v.HOLDS and result["accuracy_half"] is True
    assert result["gap"] == pytest.approx(0.03)
    assert result["ratio"] == pytest.approx(601_482 / 208_266)
    assert all(m["target_met"] for m in result["models"])
    assert result["paper_gap"] == pytest.approx(0.01)
    # without the paired comparison, "not significantly different" is no evidence of a match
    unpaired = v.chen(rows, 10_000)
    assert unpaired["verdict"] == v.UNRESOLVED and unpaired["accuracy_half"] is None


def test_chen_equivalence_needs_the_interval_inside_the_margin_not_a_large_p():
    # 60 images right for the ResNet only, 40 for the ODE-Net only: +0.2 points, McNemar p ~ 0.06
    # (no significant difference), but the 90 % interval reaches past the margin of 0.2: undecided
    wide = _paired(10_000, 60, 40)
    assert wide["difference"] == pytest.approx(0.2) and wide["p_mcnemar"] > 0.05
    assert not wide["equivalent"]
    rows = _chen_rows({"mlp": 1.7, "resnet": 0.4, "rknet": 0.5, "odenet": 0.6})
    assert v.chen(rows, 10_000, paired=wide)["accuracy_half"] is None
    # the same +0.2 points on 50,000 images is measured tightly enough to fail the claim
    many = significance.paired_accuracy_difference(
        np.ones(50_000, dtype=bool),
        np.r_[np.zeros(100, dtype=bool), np.ones(49_900, dtype=bool)],
        0.1,
    )
    assert many["interval"][0] > 0.1
    assert v.chen(rows, 50_000, paired=many)["verdict"] == v.FAILS
    with pytest.raises(ValueError, match="same images"):
        v.chen(rows, 10_000, paired=many)


def test_chen_targets_are_upper_bounds_on_error():
    result = v.chen(_chen_rows({"mlp": 1.9, "resnet": 0.6, "rknet": 0.61, "odenet": 0.5}), 10_000)
    met = {m["model"]: m["target_met"] for m in result["models"]}
    assert met == {"mlp": False, "resnet": True, "rknet": False, "odenet": True}


def test_chen_young_networks_are_unresolved_and_a_worse_odenet_fails():
    rows = _chen_rows({"mlp": 2.5, "resnet": 2.76, "rknet": 2.07, "odenet": 1.94})
    young = v.chen(rows, 10_000, paired=_paired(10_000, 20, 102))
    assert young["verdict"] == v.UNRESOLVED and young["accuracy_half"] is True
    assert not young["targets_met"]
    rows = _chen_rows({"mlp": 1.7, "resnet": 0.45, "rknet": 0.5, "odenet": 1.2})
    worse = v.chen(rows, 10_000, paired=_paired(10_000, 80, 5))  # +0.75 points, interval > 0.2
    assert worse["verdict"] == v.FAILS and worse["accuracy_half"] is False
    # equal parameters: the "third of the parameters" half fails even with equal errors
    equal = v.chen(
        _chen_rows(
            {"mlp": 1.7, "resnet": 0.45, "rknet": 0.5, "odenet": 0.45},
            {"mlp": 1, "resnet": 208_266, "rknet": 1, "odenet": 208_266},
        ),
        10_000,
        paired=_paired(10_000, 5, 5),
    )
    assert equal["verdict"] == v.FAILS and not equal["parameter_half"]


def test_binomial_se_and_bad_input():
    assert significance.wald_se(50.0, 100) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="n"):
        significance.wald_se(1.0, 0)
    with pytest.raises(ValueError, match="NaN"):
        v.chen(_chen_rows({"resnet": float("nan"), "odenet": 1.0}), 10_000)
    with pytest.raises(ValueError, match="ResNet"):
        v.chen(_chen_rows({"mlp": 1.0, "odenet": 1.0}), 10_000)


def test_trend_direction():
    assert v.trend([20.0] * 10 + [30.0] * 10, window=5)["direction"] == "rises"
    falling = v.trend([30.0] * 10 + [20.0] * 10, window=5)
    assert falling["direction"] == "falls" and falling["first"] == 30.0 and falling["last"] == 20.0
    dip = v.trend([30.0] * 5 + [10.0] * 5 + [30.5] * 5, window=5)
    assert dip["direction"] == "flat" and dip["lowest"] == 10.0 and dip["lowest_at"] == 5
    assert v.trend([1.0, 2.0], window=50)["window"] == 1  # short curves: half their length
    with pytest.raises(ValueError, match="NaN"):
        v.trend([1.0, float("nan")])


# --------------------------------------------------------------------------- Gai & Zhang


def test_rank_correlation():
    assert significance.rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert significance.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks only, not values
    assert significance.rank_correlation([1, 2, 3], [1, 100, 2]) == pytest.approx(0.5)
    assert np.array_equal(significance.ranks([3, 1, 3]), [2.5, 1.0, 2.5])
    assert math.isnan(significance.rank_correlation([1, 2, 3], [5, 5, 5]))


def test_falls_as_rises_needs_an_exact_permutation_p_value_not_the_sign():
    accuracy = [0.90, 0.93, 0.95, 0.97, 0.99]
    falls = v.falls_as_rises(lss=[1.5, 1.4, 1.3, 1.2, 1.1], accuracy=accuracy)
    assert falls["verdict"] == v.HOLDS and falls["p_low"] == pytest.approx(1 / 120)
    assert v.falls_as_rises(lss=[1.1, 1.2, 1.3, 1.4, 1.5], accuracy=accuracy)["verdict"] == v.FAILS
    # rho = -0.9 over 5 points: 5 of the 120 orderings are as low, p = 0.042 < 0.05
    nine = v.falls_as_rises(lss=[1.5, 1.4, 1.3, 1.1, 1.2], accuracy=accuracy)
    assert nine["rho"] == pytest.approx(-0.9) and nine["p_low"] == pytest.approx(5 / 120)
    assert nine["verdict"] == v.HOLDS
    # rho = -0.8: negative, which a sign-only rule calls "holds"; p = 8/120 = 0.067
    eight = v.falls_as_rises(lss=[1.5, 1.3, 1.4, 1.1, 1.2], accuracy=accuracy)
    assert eight["rho"] == pytest.approx(-0.8) and eight["p_low"] == pytest.approx(8 / 120)
    assert eight["verdict"] == v.UNRESOLVED
    # three points can never reach 5 %: rho = -1 has p = 1/6
    three = v.falls_as_rises(lss=[1.5, 1.3, 1.1], accuracy=[0.90, 0.95, 0.99])
    assert three["p_low"] == pytest.approx(1 / 6) and three["verdict"] == v.UNRESOLVED
    assert (
        v.falls_as_rises(lss=[1.2, 1.2, 1.2], accuracy=[0.90, 0.95, 0.99])["verdict"]
        == v.UNRESOLVED
    )


def test_generalizes_better_judges_test_accuracy_against_its_binomial_margin():
    rows = [
        {"network": "residual", "weight_decay": 0.0, "test_acc": 0.9800, "eval_images": 10_000},
        {"network": "plain", "weight_decay": 0.0, "test_acc": 0.9748, "eval_images": 10_000},
        {"network": "residual", "weight_decay": 0.01, "test_acc": 0.9700, "eval_images": 10_000},
        {"network": "plain", "weight_decay": 0.01, "test_acc": 0.9827, "eval_images": 10_000},
        {"network": "residual", "weight_decay": 0.1, "test_acc": 0.9800, "eval_images": 10_000},
        {"network": "plain", "weight_decay": 0.1, "test_acc": 0.9790, "eval_images": 10_000},
    ]
    out = v.generalizes_better(rows)
    assert [r["verdict"] for r in out] == [v.HOLDS, v.FAILS, v.UNRESOLVED]
    assert out[0]["difference"] == pytest.approx(0.52)
    assert out[0]["margin"] == pytest.approx(
        1.96 * significance.binomial_difference(98.0, 97.48, 10_000)["se"]
    )
    # +0.10 points is about half a standard error: a sign-only rule would call it "holds"
    assert out[2]["difference"] > 0 and out[2]["difference"] < out[2]["margin"]
    rows[1]["eval_images"] = 2000
    with pytest.raises(ValueError, match="same images"):
        v.generalizes_better(rows)


def _pair_rows(n, residual_wrong, plain_wrong):
    """Residual and plain rows at weight decay 0 on ``n`` images, each wrong on the image indices
    given, with ``correct`` and the matching ``test_acc``."""
    rows = []
    for network, wrong in (("residual", residual_wrong), ("plain", plain_wrong)):
        correct = np.ones(n, dtype=bool)
        correct[list(wrong)] = False
        rows.append(
            {
                "network": network,
                "weight_decay": 0.0,
                "test_acc": int(correct.sum()) / n,
                "eval_images": n,
                "correct": correct,
            }
        )
    return rows


def test_generalizes_better_pairs_the_images_when_the_rows_carry_their_outcomes():
    # both wrong on the same 171 images, the plain network on 12 more: +0.12 points, 12 discordant
    rows = _pair_rows(10_000, range(171), range(183))
    (out,) = v.generalizes_better(rows)
    paired = significance.paired_accuracy_difference(
        rows[0]["correct"], rows[1]["correct"], margin=1.0
    )
    assert out["paired"] and (out["residual_only"], out["plain_only"]) == (12, 0)
    assert out["difference"] == pytest.approx(0.12)
    assert out["se"] == pytest.approx(paired["se"])
    assert out["margin"] == pytest.approx(significance.IMAGES_Z * paired["se"])
    assert out["p_mcnemar"] == pytest.approx(significance.mcnemar_p(12, 12))
    # the shared mistakes cancel: paired, +0.12 is resolved; as independent binomials it is not
    assert out["verdict"] == v.HOLDS
    unpaired = v.generalizes_better([{k: r[k] for k in r if k != "correct"} for r in rows])
    assert not unpaired[0]["paired"] and unpaired[0]["verdict"] == v.UNRESOLVED


def test_generalizes_better_independent_margin_is_not_conservative_for_disjoint_mistakes():
    # mistakes on disjoint images (negatively correlated correctness): the paired error is larger
    # than the independent one, and +2.8 points that clear the independent margin do not clear it
    rows = _pair_rows(1000, range(100), range(100, 228))
    (paired,) = v.generalizes_better(rows)
    (unpaired,) = v.generalizes_better([{k: r[k] for k in r if k != "correct"} for r in rows])
    assert paired["difference"] == pytest.approx(unpaired["difference"]) == pytest.approx(2.8)
    assert paired["se"] > unpaired["se"]
    assert (paired["verdict"], unpaired["verdict"]) == (v.UNRESOLVED, v.HOLDS)


def test_generalizes_better_rejects_outcomes_that_do_not_match_the_rows():
    rows = _pair_rows(100, range(5), range(8))
    with pytest.raises(ValueError, match="or neither"):
        v.generalizes_better([rows[0], {k: rows[1][k] for k in rows[1] if k != "correct"}])
    with pytest.raises(ValueError, match="counts 95 correct"):
        v.generalizes_better([{**rows[0], "test_acc": 0.99}, rows[1]])
    with pytest.raises(ValueError, match="boolean array of its 100"):
        v.generalizes_better([{**rows[0], "correct": rows[0]["correct"][:50]}, rows[1]])
    with pytest.raises(ValueError, match="boolean array"):
        v.generalizes_better([{**rows[0], "correct": rows[0]["correct"].astype(int)}, rows[1]])


def test_degradation_counts_only_gaps_beyond_their_margin():
    result = v.degradation(
        {0.0: (0.9990, 0.9960), 1e-3: (0.9950, 0.9948), 1e-2: (0.9700, 0.9800)}, 60_000
    )
    assert [r["verdict"] for r in result["per_weight_decay"]] == [v.HOLDS, v.UNRESOLVED, v.FAILS]
    assert (result["plain_worse"], result["residual_worse"], result["within_margin"]) == (1, 1, 1)
    assert result["count_margin"] == significance.count_margin(3)
    # the 1.96 s.e. rule fires by chance on one side with probability 2.5 %, not 5 %
    assert result["test_level"] == pytest.approx(0.025, abs=1e-4) and result["level"] == 0.05
    with pytest.raises(ValueError, match="NaN"):
        v.degradation({0.0: (float("nan"), 0.9)}, 60_000)


def test_gai_per_weight_decay_and_trend():
    rows = [
        {"network": "residual", "weight_decay": 0.0, "lss": 1.3, "ots": 0.9, "train_acc": 0.97},
        {"network": "plain", "weight_decay": 0.0, "lss": 2.0, "ots": 0.5, "train_acc": 0.96},
        {"network": "residual", "weight_decay": 5e-4, "lss": 1.2, "ots": 0.4, "train_acc": 0.98},
        {"network": "plain", "weight_decay": 5e-4, "lss": 1.1, "ots": 0.6, "train_acc": 0.95},
    ]
    result = v.gai(rows)
    first, second = result["per_weight_decay"]
    assert (first["straighter"], first["more_optimal"]) == (v.HOLDS, v.HOLDS)
    assert (second["straighter"], second["more_optimal"]) == (v.FAILS, v.FAILS)
    trend = result["lss_falls_as_accuracy_rises"]
    # two weight decays: rho = -1 and +1, but each ordering has probability 1/2: no verdict
    assert trend["residual"]["rho"] == pytest.approx(-1) and trend["plain"]["rho"] == pytest.approx(
        1
    )
    assert trend["residual"]["verdict"] == trend["plain"]["verdict"] == v.UNRESOLVED


def _gai_table(rows, ots_points=2000, data="MNIST test"):
    """A Gai & Zhang table of ``rows``, each with a record whose LSS falls for three epochs as its
    training accuracy rises."""
    dynamics = {"epoch": [1, 2, 3], "lss": [2.0, 1.5, 1.2], "train_acc": [0.9, 0.95, 0.99]}
    rows = tuple({"record": {"dynamics": dynamics}, **r} for r in rows)
    return GaiTable(
        regime="clean", mode="quick", seeds=(0,), data=data, images=10_000,
        accuracy_label="test accuracy", fallback=False, records={}, rows=rows,
        ots_points=ots_points, weight_decays=tuple(sorted({r["weight_decay"] for r in rows})),
    )  # fmt: skip


def _gai_pair(lss_res, lss_plain, ots_res, ots_plain, se=None, points=None):
    extra = {} if se is None else {"lss_se": se}
    extra |= {} if points is None else {"ots_points": points}
    return [
        {"network": "residual", "weight_decay": 0.0, "lss": lss_res, "ots": ots_res,
         "train_acc": 0.99, **extra},
        {"network": "plain", "weight_decay": 0.0, "lss": lss_plain, "ots": ots_plain,
         "train_acc": 0.98, **extra},
    ]  # fmt: skip


def test_gai_differences_within_two_standard_errors_are_not_resolved():
    # LSS gap 0.05 against a margin 2 sqrt(2) 0.02 = 0.057; OTS gap 0.01 on 500 points
    # against 2 x 0.0116 = 0.023 (binomial, Agresti-Caffo)
    row = v.gai(_gai_pair(1.20, 1.25, 0.95, 0.94, se=0.02, points=500))["per_weight_decay"][0]
    assert row["lss_margin"] == pytest.approx(2 * math.sqrt(2) * 0.02)
    assert row["ots_margin"] == pytest.approx(
        2 * significance.binomial_difference(95.0, 94.0, 500)["se"] / 100
    )
    assert (row["straighter"], row["more_optimal"]) == (v.UNRESOLVED, v.UNRESOLVED)
    # the same gaps with ten times smaller errors are verdicts, in both directions
    row = v.gai(_gai_pair(1.20, 1.25, 0.95, 0.94, se=0.002, points=50_000))["per_weight_decay"][0]
    assert (row["straighter"], row["more_optimal"]) == (v.HOLDS, v.HOLDS)
    row = v.gai(_gai_pair(1.25, 1.20, 0.94, 0.95, se=0.002, points=50_000))["per_weight_decay"][0]
    assert (row["straighter"], row["more_optimal"]) == (v.FAILS, v.FAILS)
    # without errors (a paper's printed values) the sign decides
    row = v.gai(_gai_pair(1.20, 1.25, 0.95, 0.94))["per_weight_decay"][0]
    assert row["lss_margin"] is None and row["ots_margin"] is None
    assert (row["straighter"], row["more_optimal"]) == (v.HOLDS, v.HOLDS)


def test_gai_margins_refuse_unequal_point_counts_and_nan_errors():
    rows = _gai_pair(1.2, 1.5, 0.9, 0.5, se=0.01, points=500)
    rows[1]["ots_points"] = 400
    with pytest.raises(ValueError, match="ots_points differ"):
        v.gai(rows)
    rows = _gai_pair(1.2, 1.5, 0.9, 0.5, se=float("nan"), points=500)
    with pytest.raises(ValueError, match="lss_se contains NaN"):
        v.gai(rows)


def test_gai_paper_cifar100_numbers_give_the_papers_conclusion():
    rows = gai_paper.paper_cifar100_rows()
    assert len(rows) == 2 * len(gai_paper.PAPER["cifar100"]["weight_decay"])
    result = v.gai(rows)
    assert all(
        r["straighter"] == v.HOLDS and r["more_optimal"] == v.HOLDS
        for r in result["per_weight_decay"]
    )


def test_gai_bad_input():
    with pytest.raises(ValueError, match="network"):
        v.gai([{"network": "dense", "weight_decay": 0.0, "lss": 1.0, "ots": 1.0, "train_acc": 1.0}])
    with pytest.raises(ValueError, match="NaN"):
        v.gai(
            [
                {
                    "network": "plain",
                    "weight_decay": 0.0,
                    "lss": float("nan"),
                    "ots": 1.0,
                    "train_acc": 1.0,
                }
            ]
        )


def test_markdown_table():
    text = v.markdown_table(["a", "b"], [[1, "x"]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |"]
    with pytest.raises(ValueError, match="cells"):
        v.markdown_table(["a", "b"], [[1]])


# ----------------------------------------------------------- the chapters' helpers around the rules


def yan_result(**extra_rows: dict) -> YanTable:
    """A two-column, two-seed Yan table: the ODENet ahead of the CNN in the first column and behind
    in the second, with ``extra_rows`` (e.g. a TisODE) beside them. Every seed was measured on the
    same 1,000 images, so the verdicts add the mean of the seeds' binomial errors to their
    spread."""
    return YanTable(
        regime="clean", mode="quick", seeds=(0, 1), data="MNIST test: first 1,000 images",
        images=1000, accuracy_label="test accuracy", fallback=False, records={}, number=1,
        dataset="mnist", columns=("s=50", "FGSM-0.3"),
        column_specs=(("gaussian", 50.0), ("fgsm", 0.3)),
        rows={
            "cnn": {"seeds": [[90.0, 50.0], [91.0, 52.0]], "mean": [90.5, 51.0], "std": [0.7, 1.4]},
            "odenet": {"seeds": [[95.0, 40.0], [96.0, 41.0]], "mean": [95.5, 40.5],
                       "std": [0.7, 0.7]},
            **extra_rows,
        },
        paper={"cnn": [(98.1, 0.7), (24.0, 8.9)], "odenet": [(98.7, 0.6), (42.1, 2.4)]},
        pgd_images=1000, images_per_seed={0: 1000, 1: 1000}, pgd_images_per_seed={0: 1000, 1: 1000},
        same_images=True, attack="cross-entropy FGSM", epochs=10,
    )  # fmt: skip


def test_yan_markdown_marks_the_papers_numbers_and_our_verdicts():
    result = yan_result()
    lines = yan.verdict_markdown(result).splitlines()
    assert "2 seeds" in lines[0]
    assert lines[2].endswith(f"| {v.HOLDS} |") and lines[3].endswith(f"| {v.FAILS} |")
    paper = yan_report.paper_only_markdown("svhn", "clean")
    assert "theirs" in paper and paper.count("not run: data not available here") == 6
    with pytest.raises(ValueError, match="dataset"):
        yan_report.paper_only_markdown("mnist", "clean")


def test_chen_markdown_reports_targets():
    rows = _chen_rows({"mlp": 1.7, "resnet": 0.45, "rknet": 0.9, "odenet": 0.48})
    for row in rows:
        row["record"] = {"epochs_run": 160, "full_recipe_epochs": 160}
        row["paper_parameters_m"] = 0.2
    table = chen.verdict_markdown(_chen_table(rows))
    assert "missed by 0.30 points" in table and table.count(": met") == 3
    paired = _paired(10_000, 10, 7)
    paragraph = chen.verdict_paragraph(_chen_table(rows, paired))
    # the RK-Net's miss is not the claim's
    assert "holds in our runs" in paragraph and "Targets met: 3 of 4" in paragraph
    assert "10 images are right for the ResNet only and 7 for the ODE-Net only" in paragraph
    assert "converged" not in paragraph
    undecided = chen.verdict_paragraph(_chen_table(rows, _paired(10_000, 60, 40)))
    assert "is not reproduced" in undecided and "not evidence of equality" in undecided
    rows[3]["test_error_percent"] = 1.5  # an ODE-Net 1 point worse than the ResNet: the claim fails
    worse = _paired(10_000, 105, 2)
    assert "does not hold in our runs" in chen.verdict_paragraph(_chen_table(rows, worse))


def test_tolerance_sweep_error_falls_with_tolerance_and_settings_are_restored():
    import torch

    from dyndl_lite.data import ImageData
    from dyndl_lite.models.chen import chen_model

    torch.manual_seed(0)
    net = chen_model("odenet").eval()
    data = ImageData(torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,)), "random images")
    rows = chen.tolerance_sweep(
        net, data, tolerances=(1e-1, 1e-5), reference_tol=1e-8, reference_images=4
    )
    assert (
        rows[1]["solver_error"] < rows[0]["solver_error"]
        and rows[1]["nfe_forward"] >= rows[0]["nfe_forward"]
    )
    assert (net.feature.rtol, net.feature.atol) == (1e-3, 1e-3)
    with pytest.raises(ValueError, match="reference_tol"):
        chen.tolerance_sweep(net, data, tolerances=(1e-3,), reference_tol=1e-2)
    adjoint = chen.adjoint_nfe_sweep(net, data.images, data.labels, tolerances=(1e-2,))
    assert (
        adjoint[0]["nfe_backward"] > 0
        and adjoint[0]["ratio"] == adjoint[0]["nfe_backward"] / adjoint[0]["nfe_forward"]
    )
    assert net.feature.adjoint is False and all(p.grad is None for p in net.parameters())


def test_yan_with_one_seed_uses_the_binomial_error_of_the_images():
    # PGD-0.3 in chapter 6: 0.0 % against 0.2 % on 1,000 images is two images,
    # within the sampling error
    rows = v.yan(
        ["PGD-0.3", "FGSM-0.3", "FGSM-0.5"],
        [[0.2, 19.5, 2.8]],
        [[0.0, 13.7, 4.2]],
        images=[1000] * 3,
        same_images=True,
    )
    # the margin is two s.e.
    assert [r["verdict"] for r in rows] == [
        v.UNRESOLVED,
        v.HOLDS,
        v.UNRESOLVED,
    ]
    # Agresti-Caffo: one success and one failure added
    q = [(1000 * p + 1) / 1002 for p in (0.195, 0.137)]
    assert rows[1]["se"] == pytest.approx(100 * math.sqrt(sum(x * (1 - x) for x in q) / 1002))
    assert significance.binomial_difference(0.0, 0.0, 1000)["se"] > 0  # never a zero error at 0 %
    # without the counts a single seed has no error term: a sign alone is no verdict
    with pytest.raises(ValueError, match="images_se is None and one seed"):
        v.yan(["PGD-0.3"], [[0.2]], [[0.0]])
    with pytest.raises(ValueError, match="one count per column"):
        v.yan(["a", "b"], [[1.0, 2.0]], [[1.0, 2.0]], images=[1000], same_images=True)
    with pytest.raises(ValueError, match="same_images is required"):
        v.yan(["PGD-0.3"], [[0.2]], [[0.0]], images=[1000])


def test_yan_identical_differences_without_image_counts_are_refused():
    # +0.01 points on every seed: se_seeds = 0, and without the images t would be infinite
    with pytest.raises(ValueError, match="3 differences are identical"):
        v.yan(["c"], [[90.01], [90.01], [90.01]], [[90.0], [90.0], [90.0]])
    rows = v.yan(["c"], [[90.1]] * 3, [[90.0]] * 3, images=[1000], same_images=True)
    assert rows[0]["t"] is None and rows[0]["p_one_sided"] is None
    assert rows[0]["verdict"] == v.UNRESOLVED


@pytest.mark.parametrize("same_images", [True, False])
def test_yan_verdict_rows_use_the_images_error_the_table_was_measured_with(same_images):
    """Seeds on the same images (records, full mode): the image-sampling error is common to them,
    so ``se_images`` is the mean of the seeds' errors; on disjoint images (quick mode shares them
    out) it is their root-sum-square over the seeds."""
    result = dataclasses.replace(yan_result(), same_images=same_images)
    rows = yan_report.verdict_rows(result)
    ode, cnn = result.rows["odenet"]["seeds"], result.rows["cnn"]["seeds"]
    for j, row in enumerate(rows):
        ses = [
            math.hypot(significance.accuracy_se(o[j], 1000), significance.accuracy_se(c[j], 1000))
            for o, c in zip(ode, cnn, strict=True)
        ]
        expected = sum(ses) / 2 if same_images else math.sqrt(ses[0] ** 2 + ses[1] ** 2) / 2
        assert row["images_se"] == pytest.approx(expected, rel=1e-12)
        t_term = row["t_quantile"] * row["se"]
        assert row["margin"] == pytest.approx(t_term + significance.IMAGES_Z * expected)
    # s=50: seeds 95 vs 90 and 96 vs 91 % on 1,000 images, by hand: (1.17758 + 1.10259) / 2
    if same_images:
        assert rows[0]["images_se"] == pytest.approx(1.14008, abs=1e-5)


def test_yan_tisode_table_sets_it_against_the_odenet_when_its_rows_exist():
    tisode = {"seeds": [[97.0, 30.0], [98.0, 31.0]], "mean": [97.5, 30.5], "std": [0.7, 0.7]}
    result = yan_result(tisode=tisode)
    assert "TisODE" not in yan.verdict_markdown(result)  # its own table, not more columns
    lines = yan_report.tisode_markdown(result).splitlines()
    assert lines[0].endswith("| TisODE more robust than ODENet? (ours) |")
    # TisODE vs ODENet: +2.0 (holds) and -10.0 (fails)
    assert lines[2] == f"| s=50 | 95.5 ± 0.7 | 97.5 ± 0.7 | +2.0 ± 0.0 | {v.HOLDS} |"
    assert lines[3] == f"| FGSM-0.3 | 40.5 ± 0.7 | 30.5 ± 0.7 | -10.0 ± 0.0 | {v.FAILS} |"
    assert "ODENet, ours (seeds 0, 1)" in lines[0]
    del result.rows["tisode"]
    with pytest.raises(ValueError, match="no TisODE"):
        yan_report.tisode_markdown(result)


def test_yan_tisode_of_one_seed_is_paired_with_the_odenet_of_that_seed_only():
    # the plan trains the TisODE seed by seed: seed 1 only, set against ODENet seed 1 (96.0, 41.0)
    tisode = {"seeds": [[99.0, 40.0]], "seed_ids": [1], "clean": [99.0]}
    result = yan_result(tisode=tisode)
    result = dataclasses.replace(
        result,
        pgd_images=100,
        images_per_seed={0: 500, 1: 500},
        pgd_images_per_seed={0: 50, 1: 50},
    )
    seeds, tis, ode = yan_report.paired_seeds(result, "tisode", "odenet")
    assert seeds == [1] and ode.tolist() == [[96.0, 41.0]]
    rows = yan_report.verdict_rows(result, "tisode", "odenet")
    assert [r["mean"] for r in rows] == pytest.approx([3.0, -1.0])
    # one paired seed: binomial errors on seed 1's 500 images, not on the table's 1,000
    assert rows[0]["se_kind"] == "binomial, 500 images"
    assert rows[0]["verdict"] == v.HOLDS and rows[1]["verdict"] == v.UNRESOLVED
    lines = yan_report.tisode_markdown(result).splitlines()
    assert "ODENet, ours (seed 1)" in lines[0]
    assert lines[2] == f"| s=50 | 96.0 | 99.0 | +3.0 (s.e. {rows[0]['se']:.1f}) | {v.HOLDS} |"
    # the CNN-ODENet verdicts still use both seeds
    assert yan_report.verdict_rows(result)[0]["std"] is not None
    result.rows["tisode"]["seed_ids"] = [2]
    with pytest.raises(ValueError, match="share no seed"):
        yan_report.verdict_rows(result, "tisode", "odenet")


def paragraph_table(**record: str) -> YanTable:
    """:func:`yan_result` with training records (two seeds of 10 of 100 epochs, ``record``'s
    extra fields in each) and clean accuracies, as the verdict paragraph reads them."""
    records = {
        f"yan-{model}-seed{seed}": {
            "model": model,
            "epochs_run": 10,
            "full_recipe_epochs": 100,
            **record,
        }
        for model in ("cnn", "odenet")
        for seed in (0, 1)
    }
    result = dataclasses.replace(yan_result(), records=records)
    result.rows["cnn"]["clean"] = [99.1, 99.2]
    result.rows["odenet"]["clean"] = [99.3, 99.0]
    return result


def test_yan_paragraph_names_identical_differences_over_seeds():
    result = paragraph_table()
    paragraph = yan.verdict_paragraph(result)
    assert "1 of 2 columns (s=50 (identical differences over seeds))" in paragraph


def test_yan_paragraph_states_the_counts_and_flags_unequal_budgets():
    result = paragraph_table()
    paragraph = yan.verdict_paragraph(result)
    assert "holds in our runs in 1 of 2 columns (s=50" in paragraph
    assert "does not hold in 1 (FGSM-0.3)" in paragraph
    assert "Student's t quantile t(0.95, 1) = 6.31 standard errors" in paragraph
    assert "2 seeds, 10 of 100 epochs of the paper's recipe" in paragraph
    assert "not like with like" not in paragraph
    assert "ran 10 of the paper's 100 epochs, and the verdicts may change" in paragraph
    # the authors released Gaussian-trained networks only: no control for a clean table
    assert "control" not in paragraph
    gaussian = dataclasses.replace(result, regime="gaussian", number=2)
    control = "ran 10 of the paper's 100 epochs; the control with the authors' own Gaussian-trained"
    assert control in yan.verdict_paragraph(gaussian)
    assert "TisODE" not in paragraph
    # one seed on 1,000 images: +3.0 (99 against 96 %) holds, -11.0 (30 against 41 %) does not
    result.rows["tisode"] = {"seeds": [[99.0, 30.0]], "seed_ids": [1], "clean": [99.2]}
    assert (
        "TisODE (seed 1) is more accurate than the ODENet of the same seed in 1 of 2 columns "
        "and less accurate in 1 (clean accuracy on the same images: TisODE 99.2 %, ODENet 99.0 %)"
    ) in yan.verdict_paragraph(result)
    assert yan_report.clean_accuracy(result, "odenet") == pytest.approx(99.15)
    with pytest.raises(ValueError, match="not measured on seed"):
        yan_report.clean_accuracy(result, "tisode", [0])
    del result.rows["tisode"]
    # one ODENet trained less
    result.records["yan-odenet-seed1"]["epochs_run"] = 1
    assert "(CNN 10 epochs, ODENet 1/10): this comparison is not like with like" in (
        yan.verdict_paragraph(result)
    )


def test_authors_log_summarises_the_three_runs_and_matches_the_paper():
    rows = {r["column"]: r for r in yan_report.authors_log()}
    assert list(rows) == ["FGSM-0.3", "FGSM-0.5"]
    mean, std = rows["FGSM-0.5"]["tisode"]
    assert mean == pytest.approx((37.5 + 35.9 + 27.8) / 3)
    assert std == pytest.approx(np.std([37.5, 35.9, 27.8], ddof=1))
    assert rows["FGSM-0.3"]["tisode_minus_odenet"] == pytest.approx(77.2 - (72.3 + 70.8 + 70.3) / 3)
    # the log is the paper's experiment: its CNN and ODENet means are Table 2's within half a point
    assert all(r["paper_gap"] < 0.5 for r in rows.values())
    table = yan_report.authors_log_markdown().splitlines()
    assert "authors' log" in table[0] and table[2].startswith(
        "| FGSM-0.3 | 54.2 ± 1.1 | 71.5 ± 1.1"
    )


def test_authors_log_paragraph_sets_our_tisode_beside_the_log_only_when_it_exists():
    assert "no Gaussian-trained TisODE is shipped" in yan_report.authors_log_paragraph(None)
    table2 = dataclasses.replace(yan_result(), columns=("FGSM-0.3", "FGSM-0.5"))
    assert "no Gaussian-trained TisODE" in yan_report.authors_log_paragraph(table2)
    # +2 and +4 over the ODENet
    table2.rows["tisode"] = {"seeds": [[97.0, 45.0], [98.0, 44.0]]}
    text = yan_report.authors_log_paragraph(table2)
    # FGSM-0.5's two differences are not equal: with two seeds Student's t asks for 6.31 standard
    # errors, so the mean +4 is not resolved (a two-SE rule would say "holds")
    assert (
        f"Ours (Table 2 above): +2.0 at FGSM-0.3 ({v.HOLDS}), +4.0 at FGSM-0.5 ({v.UNRESOLVED})."
        in text
    )


def test_gai_paragraph_counts_unresolved_weight_decays_and_names_mixed_budgets():
    rows = _gai_pair(1.20, 1.25, 0.95, 0.50, se=0.02, points=2000)  # LSS gap inside its margin
    rows += [
        {**r, "weight_decay": 5e-4, "lss": r["lss"] + 0.5 * (r["network"] == "plain")} for r in rows
    ]
    with pytest.raises(ValueError, match="epochs_run"):
        gai.verdict_paragraph(_gai_table(rows))

    def trained(*epochs: int) -> list[dict]:
        return [{**r, "epochs_run": e} for r, e in zip(rows, epochs, strict=True)]

    text = gai.verdict_paragraph(_gai_table(trained(5, 5, 20, 20)))
    assert "straighter than the plain one at 1 of 2 weight decays" in text
    assert "more optimal at 2 of 2 (at 1 of 2 a difference lies within its margin" in text
    assert "different numbers of epochs (5-20)" in text
    assert "from γ = 0 to γ = 0.0005 its LSS goes from 1.20 to 1.20 and its training" in text
    same = gai.verdict_paragraph(_gai_table(trained(20, 20, 20, 20)))
    assert "different numbers of epochs" not in same and "20 epochs of training" in same
    table = gai.verdict_markdown(_gai_table(rows))
    assert "not resolved (margin 0.06)" in table and "holds (margin 0.0" in table
    assert "trained" not in table and "mixes architecture" not in text
    rows = trained(20, 5, 20, 20)
    assert gai_report.unequal_budgets(rows) == {0.0: (20, 5)}
    text = gai.verdict_paragraph(_gai_table(rows))
    assert "At γ = 0 the residual and plain networks were trained for different numbers" in text
    assert "| 0 (residual / plain trained 20 / 5 epochs) |" in gai.verdict_markdown(
        _gai_table(rows)
    )


def _gai_generalization_rows():
    accuracies = {0.0: (0.9800, 0.9748), 5e-3: (0.9700, 0.9827)}
    lss = {("residual", 0.0): 1.5, ("residual", 5e-3): 1.2}
    return [
        {
            "network": network,
            "weight_decay": g,
            "test_acc": pair[i],
            "eval_images": 10_000,
            "lss": lss.get((network, g), 3.0),
        }
        for g, pair in accuracies.items()
        for i, network in enumerate(("residual", "plain"))
    ]


def test_gai_generalization_paragraph_counts_and_ranks_the_straightest_network():
    rows = _gai_generalization_rows()
    text = gai_report.generalization_paragraph(_gai_table(rows))
    assert "beyond the margin at 1 of 2 weight decays, lower at 1" in text
    assert "(γ = 0.005, LSS 1.20) is number 2 of 2" in text
    assert "does not hold at every weight decay: at 1 of 2" in text
    table = gai_report.generalization_markdown(_gai_table(rows))
    assert "| 0 | 98.00 / 97.48 | +0.52 |" in table and table.count(v.FAILS) == 1
    assert "margin 1.96 s.e." in table and "10,000 images, independent)" in table
    paired = gai_report.generalization_markdown(
        _gai_table(_pair_rows(10_000, range(171), range(183)))
    )
    assert "10,000 images, paired) | holds |" in paired


def test_gai_degradation_reads_the_records_training_images():
    def record(acc):
        return {
            "train_acc": acc,
            "recipe": {"train_subset": None},
            "data": {"train_images": 60_000},
        }

    records = {
        ("residual", 0.0): record(0.999),
        ("plain", 0.0): record(0.990),
        ("residual", 1e-2): record(0.970),
        ("plain", 1e-2): record(0.971),
    }
    result = gai_report.degradation(records)
    assert [r["verdict"] for r in result["per_weight_decay"]] == [v.HOLDS, v.UNRESOLVED]
    records[("plain", 1e-2)]["recipe"] = {"train_subset": 1000}
    with pytest.raises(ValueError, match="different numbers of images"):
        gai_report.degradation(records)


def test_gai_training_trend_tests_spread_epochs_not_every_drifting_epoch():
    # 160 epochs: accuracy rises; LSS drifts down for 150 epochs, then jumps above its start
    epochs = np.arange(1, 161)
    accuracy = 1 - 0.25 / epochs
    lss = np.where(epochs <= 150, 7.0 - 0.002 * epochs, 7.5)
    record = {"dynamics": {"epoch": list(epochs), "lss": list(lss), "train_acc": list(accuracy)}}
    # over every epoch a permutation test calls the drift significant ...
    assert v.falls_as_rises(lss, accuracy)["verdict"] == v.HOLDS
    # ... although LSS ended higher than it started; five spread epochs do not
    trend = gai_report.training_trends({("plain", 0.0): record})[0]
    assert trend["tested_epochs"] == [1, 41, 81, 120, 160]
    assert trend["lss_last"] > trend["lss_first"] and trend["verdict"] == v.UNRESOLVED
    assert gai_report.trend_epochs(3) == [0, 1, 2]


def test_chen_correct_per_image_sums_to_count_correct():
    from types import SimpleNamespace

    import torch

    from dyndl_lite.train import count_correct

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    data = SimpleNamespace(images=torch.randn(50, 1, 2, 2), labels=torch.randint(0, 3, (50,)))
    correct = chen.correct_per_image(net, data, batch_size=16, device="cpu")
    assert correct.dtype == torch.bool and correct.shape == (50,)
    assert int(correct.sum()) == count_correct(net, data.images, data.labels, device="cpu")
    expected = net(data.images).argmax(1) == data.labels
    assert torch.equal(correct, expected)


def test_gai_paragraph_reads_the_sweep_by_its_permutation_p_value_not_its_sign():
    gammas = [0.0, 5e-4, 1e-3, 5e-3, 1e-2]
    accuracy = [0.999, 0.998, 0.996, 0.98, 0.97]  # falls with gamma
    lss = [1.9, 1.4, 1.6, 1.2, 1.3]  # rho(accuracy, lss) = +0.8: a rise, p = 8/120
    rows = [
        {"network": net, "weight_decay": g, "lss": x + 2 * (net == "plain"), "ots": 0.9,
         "train_acc": a, "epochs_run": 160}
        for g, a, x in zip(gammas, accuracy, lss, strict=True)
        for net in ("residual", "plain")
    ]  # fmt: skip
    text = gai.verdict_paragraph(_gai_table(rows))
    assert "neither falls nor rises measurably" in text  # a sign-only rule would say "rises"
    assert "rho = +0.80 over 5 points, exact permutation p = 0.958 for a fall" in text
    assert "Our weight decays span 0-0.01, Gai & Zhang's CIFAR-10 sweep 0.0001-0.2" in text
    assert "near the ceiling of 1" in text
    low = [{**r, "train_acc": r["train_acc"] - 0.2} for r in rows]
    assert "near the ceiling" not in gai.verdict_paragraph(_gai_table(low))


def test_gai_paragraph_reads_the_training_trends_from_the_tables_records():
    rows = _gai_pair(1.20, 1.25, 0.95, 0.50, se=0.02, points=2000)
    table = _gai_table([{**r, "epochs_run": 20} for r in rows])
    # three epochs cannot show a fall: the exact permutation p is 1/6
    assert "rises in 0 of 1 residual runs" in gai.verdict_paragraph(table)
    falling = {
        "epoch": [1, 2, 3, 4, 5],
        "lss": [2.0, 1.8, 1.6, 1.4, 1.2],
        "train_acc": [0.8, 0.85, 0.9, 0.95, 0.99],
    }
    table.rows[0]["record"] = {"dynamics": falling}  # the residual network's record
    assert "rises in 1 of 1 residual runs" in gai.verdict_paragraph(table)


def test_yan_paragraph_says_a_short_run_compressed_its_schedule():
    compression = (
        "compressed: 10 of the paper's 100 epochs (x0.1), learning-rate milestones [30, 60, 90] "
        "scaled to [3, 6, 9]"
    )
    result = paragraph_table(compression=compression)
    paragraph = yan.verdict_paragraph(result)
    assert "10 of 100 epochs (learning-rate milestones scaled by 0.1) of the paper's" in paragraph
    assert "paper: about" not in paragraph  # no unsourced paper number


def test_yan_verdicts_pair_the_images_when_the_rows_keep_their_outcomes():
    """Seeds on the same 1,000 images with per-image outcomes (as read from records): the images'
    term is std(u)/sqrt(N) of the seed-averaged per-image difference, not the binomial bound."""
    rng = np.random.default_rng(1)
    result = paragraph_table()
    outcomes = {}
    for model in ("cnn", "odenet"):
        per_seed = []
        for accuracies in result.rows[model]["seeds"]:
            per_seed.append([rng.permutation(1000) < round(10 * acc) for acc in accuracies])
        outcomes[model] = per_seed
        result.rows[model]["outcomes"] = per_seed
    rows = yan_report.verdict_rows(result)
    for j, row in enumerate(rows):
        a = np.array([seed[j] for seed in outcomes["odenet"]])
        b = np.array([seed[j] for seed in outcomes["cnn"]])
        assert row["images_se"] == pytest.approx(significance.paired_images_se(a, b))
        assert row["images_se_kind"] == "paired"
    assert "1.96 paired (image by image) standard errors" in yan.verdict_paragraph(result)
    # without the outcomes of both networks: the binomial bound
    del result.rows["cnn"]["outcomes"]
    assert all(r["images_se_kind"] == "binomial" for r in yan_report.verdict_rows(result))
