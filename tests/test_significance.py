"""The statistical tests of dyndl_lite.significance: each assertion fails under a sign-only, a
two-standard-error or an unpaired rule where the book's rule differs."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from dyndl_lite import significance as s

# --------------------------------------------------------------------------- Student's t over seeds


def test_t_quantile_is_students_for_the_seeds_degrees_of_freedom():
    assert s.t_quantile(1) == pytest.approx(6.3138, abs=1e-4)
    assert s.t_quantile(2) == pytest.approx(2.9200, abs=1e-4)
    assert s.t_quantile(10_000) == pytest.approx(1.645, abs=1e-3)  # the normal limit
    with pytest.raises(ValueError, match="df"):
        s.t_quantile(0)


def test_seeds_rule_asks_students_t_where_two_standard_errors_would_say_holds():
    # two seeds, differences +5 and +3: mean 4, standard error 1. A two-SE rule: 4 > 2, "holds";
    # Student's t with one degree of freedom asks for 6.31 standard errors.
    r = s.seeds_rule([5.0, 3.0])
    assert r["mean"] == pytest.approx(4.0) and r["se_seeds"] == pytest.approx(1.0)
    assert r["mean"] > 2 * r["se_seeds"]
    assert r["margin"] == pytest.approx(s.t_quantile(1))
    assert r["mean"] < r["margin"]  # not significant
    assert r["t"] == pytest.approx(4.0)
    assert r["p_one_sided"] == pytest.approx(stats.t.sf(4.0, 1))
    assert r["p_one_sided"] > 0.05
    # three seeds, mean 3 and standard error 1.2: above 2 SE (p ~ 0.065), below 2.92 SE
    three = s.seeds_rule([3 - 1.2 * math.sqrt(3), 3.0, 3 + 1.2 * math.sqrt(3)])
    assert three["se_seeds"] == pytest.approx(1.2)
    assert 2 * 1.2 < three["mean"] < three["margin"]


@pytest.mark.parametrize("same_images", [True, False])
def test_identical_differences_a_few_images_wide_are_not_significant(same_images):
    # every seed: +0.1 points on 1,000 images, one image. se_seeds = 0, so a margin from the seeds
    # alone is 0 and would call it "holds"; the images' binomial error keeps it open.
    images_se = s.images_se_of_mean(
        [90.1, 90.1, 90.1], [90.0, 90.0, 90.0], [1000, 1000, 1000], same_images=same_images
    )
    r = s.seeds_rule([0.1, 0.1, 0.1], images_se)
    assert r["se_seeds"] == 0.0
    assert r["t"] is None and r["p_one_sided"] is None  # undefined, not infinite
    assert r["margin"] == pytest.approx(s.IMAGES_Z * images_se)
    assert r["mean"] < r["margin"]
    one = s.binomial_difference(90.1, 90.0, 1000)["se"]
    # on disjoint images the images' error of a mean over seeds shrinks like 1/sqrt(seeds); on the
    # same images it is common to the seeds and does not shrink
    assert images_se == pytest.approx(one if same_images else one / math.sqrt(3))


def _agresti_caffo(percent: float, n: int) -> float:
    q = (n * percent / 100 + 1) / (n + 2)
    return 100 * math.sqrt(q * (1 - q) / (n + 2))


def test_images_se_of_mean_by_hand_on_disjoint_and_on_the_same_images():
    # seed 0: 90 vs 88 % on 1,000 images; seed 1: 80 vs 80 % on 500
    se0 = math.hypot(_agresti_caffo(90, 1000), _agresti_caffo(88, 1000))  # 1.4015
    se1 = math.hypot(_agresti_caffo(80, 500), _agresti_caffo(80, 500))  # 2.5304
    args = ([90.0, 80.0], [88.0, 80.0], [1000, 500])
    disjoint = s.images_se_of_mean(*args, same_images=False)
    same = s.images_se_of_mean(*args, same_images=True)
    assert disjoint == pytest.approx(math.sqrt(se0**2 + se1**2) / 2) == pytest.approx(1.44631, 1e-5)
    assert same == pytest.approx((se0 + se1) / 2) == pytest.approx(1.96596, abs=1e-5)
    assert same > disjoint
    # one seed: both formulas give that seed's error
    assert s.images_se_of_mean([90.0], [88.0], [1000], same_images=True) == pytest.approx(se0)
    assert s.images_se_of_mean([90.0], [88.0], [1000], same_images=False) == pytest.approx(se0)


def test_images_se_of_mean_asks_whether_the_images_are_the_same():
    with pytest.raises(TypeError, match="same_images"):
        s.images_se_of_mean([90.0], [88.0], [1000])  # no default
    with pytest.raises(ValueError, match="same_images"):
        s.images_se_of_mean([90.0], [88.0], [1000], same_images="yes")


def test_a_verdict_without_an_error_term_is_refused():
    # one seed: without the images' error the sign alone would decide +0.01 points
    with pytest.raises(ValueError, match="images_se is None and one seed"):
        s.seeds_rule([0.01])
    # identical differences: se_seeds = 0, and without the images' error t = inf, p = 0
    with pytest.raises(ValueError, match="images_se is None and the 3 differences are identical"):
        s.seeds_rule([0.01, 0.01, 0.01])
    with pytest.raises(ValueError, match="images_se_of_mean"):
        s.seeds_rule([0.01, 0.01], 0.0)
    # differences that vary over seeds carry their own error
    assert s.seeds_rule([0.01, 0.02])["margin"] > 0


def test_seeds_rule_one_seed_and_bad_input():
    r = s.seeds_rule([0.5], 0.1)
    assert r["t"] is None and r["margin"] == pytest.approx(s.IMAGES_Z * 0.1)
    assert r["p_one_sided"] is None and r["se_seeds"] is None
    with pytest.raises(ValueError, match="NaN"):
        s.seeds_rule([1.0, float("nan")])
    with pytest.raises(ValueError, match="images_se"):
        s.seeds_rule([1.0, 2.0], -1.0)


# --------------------------------------------------------------------------- binomial errors


def test_binomial_difference_and_accuracy_se():
    q = (1000 * 0.5 + 1) / 1002
    assert s.accuracy_se(50.0, 1000) == pytest.approx(100 * math.sqrt(q * (1 - q) / 1002))
    assert s.accuracy_se(100.0, 1000) > 0  # never a zero error at 100 %
    r = s.binomial_difference(98.0, 97.0, 10_000)
    assert r["se"] == pytest.approx(
        math.hypot(s.accuracy_se(98.0, 10_000), s.accuracy_se(97.0, 10_000))
    )
    assert r["z"] == pytest.approx(1.0 / r["se"])
    assert r["p_two_sided"] == pytest.approx(2 * stats.norm.sf(r["z"]))
    assert r["margin"] == pytest.approx(1.96 * r["se"])
    with pytest.raises(ValueError, match="positive integer"):
        s.binomial_difference(98.0, 97.0, 0)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        s.accuracy_se(101.0, 10)


# --------------------------------------------------------------------------- McNemar


def test_paired_difference_counts_discordant_images_and_its_standard_error():
    a = np.array([True] * 90 + [True] * 6 + [False] * 2 + [False] * 2)
    b = np.array([True] * 90 + [False] * 6 + [True] * 2 + [False] * 2)
    r = s.paired_accuracy_difference(a, b, margin=5.0)
    assert (r["a_only"], r["b_only"], r["images"]) == (6, 2, 100)
    assert r["difference"] == pytest.approx(4.0)
    assert r["se"] == pytest.approx(100 * math.sqrt((8 / 100 - 0.04**2) / 100))
    assert r["p_mcnemar"] == pytest.approx(stats.binomtest(6, 8, 0.5).pvalue)
    z = stats.norm.ppf(0.95)
    assert r["interval"] == pytest.approx((4.0 - z * r["se"], 4.0 + z * r["se"]))


def test_paired_error_is_smaller_than_the_unpaired_one_on_shared_mistakes():
    # two classifiers wrong on the same 300 images of 10,000 and on 10 images each besides:
    # unpaired errors treat 3.1 % error as independent; paired, only 20 images disagree
    a = np.ones(10_000, dtype=bool)
    b = np.ones(10_000, dtype=bool)
    a[:300] = b[:300] = False
    a[300:310] = False
    b[310:320] = False
    paired = s.paired_accuracy_difference(a, b, margin=0.2)
    unpaired = s.binomial_difference(100 * a.mean(), 100 * b.mean(), 10_000)
    assert paired["difference"] == pytest.approx(0.0)
    assert paired["se"] < unpaired["se"] / 3
    assert paired["equivalent"]


def test_unpaired_error_is_not_conservative_when_mistakes_avoid_each_other():
    # binomial_difference is conservative only for non-negatively correlated correctness: two
    # classifiers wrong on disjoint images (100 and 128 of 1,000) have a larger paired error
    a = np.ones(1000, dtype=bool)
    b = np.ones(1000, dtype=bool)
    a[:100] = False
    b[100:228] = False
    assert np.corrcoef(a, b)[0, 1] < 0
    paired = s.paired_accuracy_difference(a, b, margin=5.0)
    unpaired = s.binomial_difference(100 * a.mean(), 100 * b.mean(), 1000)
    assert paired["difference"] == pytest.approx(unpaired["difference"]) == pytest.approx(2.8)
    assert paired["se"] > 1.05 * unpaired["se"]


def test_no_significant_difference_is_not_equivalence():
    # 25 against 15 discordant images on 1,000: +1.0 point, McNemar p = 0.15 ("no difference
    # found"), but the 90 % interval reaches beyond a 1-point margin: not equivalent
    a = np.ones(1000, dtype=bool)
    b = np.ones(1000, dtype=bool)
    b[:25] = False
    a[25:40] = False
    r = s.paired_accuracy_difference(a, b, margin=1.0)
    assert r["p_mcnemar"] > 0.05 and not r["equivalent"]


def test_paired_bad_input():
    with pytest.raises(ValueError, match="same length"):
        s.paired_accuracy_difference(np.ones(3, bool), np.ones(4, bool), 1.0)
    with pytest.raises(ValueError, match="boolean"):
        s.paired_accuracy_difference(np.ones(3), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="margin"):
        s.paired_accuracy_difference(np.ones(3, bool), np.ones(3, bool), 0.0)


# --------------------------------------------------------------------------- counts


def test_count_margin_is_the_binomial_tail_of_chance_hits():
    assert s.count_margin(1) == 1  # P(one test at 5 % fires) = 0.05
    assert s.count_margin(5) == 2  # P(>= 1 of 5) = 0.226, P(>= 2 of 5) = 0.023
    for k in (3, 5, 20):
        c = s.count_margin(k)
        assert stats.binom.sf(c - 1, k, 0.05) <= 0.05 < stats.binom.sf(c - 2, k, 0.05)


# --------------------------------------------------------------------------- Spearman


def test_spearman_exact_p_value_matches_a_brute_force_count():
    x = [1, 2, 3, 4, 5]
    y = [5, 4, 3, 1, 2]  # rho = -0.9
    r = s.spearman_permutation(x, y)
    assert r["exact"] and r["rho"] == pytest.approx(-0.9)
    rhos = [stats.spearmanr(x, p).statistic for p in itertools.permutations(y)]
    assert r["p_low"] == pytest.approx(np.mean(np.array(rhos) <= -0.9 + 1e-12)) == 5 / 120
    # a negative rho is not evidence by itself: P(rho < 0) over 5 untied points is 0.475
    assert np.mean(np.array(rhos) < 0) == pytest.approx(0.475)
    assert r["p_high"] == pytest.approx(np.mean(np.array(rhos) >= -0.9 - 1e-12))


def test_spearman_many_points_uses_seeded_random_orderings():
    x = np.arange(12)
    r = s.spearman_permutation(x, -x, draws=5000)
    assert not r["exact"] and r["rho"] == pytest.approx(-1.0)
    assert r["p_low"] == pytest.approx(1 / 5001)  # no random ordering is as low
    assert r["p_high"] == pytest.approx(1.0)
    assert s.spearman_permutation(x, -x, draws=5000) == r  # deterministic


def test_spearman_constant_and_bad_input():
    r = s.spearman_permutation([1, 2, 3], [4, 4, 4])
    assert math.isnan(r["rho"]) and r["p_low"] == r["p_high"] == 1.0
    with pytest.raises(ValueError, match="NaN"):
        s.spearman_permutation([1, 2, float("nan")], [1, 2, 3])
    with pytest.raises(ValueError, match="same length"):
        s.spearman_permutation([1, 2, 3], [1, 2])


def test_the_light_special_functions_agree_with_scipy_stats():
    """The module computes with scipy.special (a fifth of scipy.stats's import time in each
    chapter's kernel); the tests hold it to scipy.stats's distributions and tests."""
    for df in (1, 2, 5, 30):
        assert s.t_quantile(df) == pytest.approx(stats.t.ppf(0.95, df), rel=1e-12)
        d = [0.4, 1.1, 0.9, 2.0, 1.5, 0.7][: df + 1]
        assert s.seeds_rule(d)["p_one_sided"] == pytest.approx(
            stats.ttest_1samp(d, 0, alternative="greater").pvalue, rel=1e-9
        )
    for a_only, discordant in ((0, 5), (3, 7), (10, 20), (2, 40), (39, 40)):
        expected = stats.binomtest(a_only, discordant, 0.5).pvalue
        assert s.mcnemar_p(a_only, discordant) == pytest.approx(expected, rel=1e-9)
    for k in (1, 5, 20, 100):
        c = s.count_margin(k)
        assert stats.binom.sf(c - 1, k, s.LEVEL) <= s.LEVEL < stats.binom.sf(c - 2, k, s.LEVEL)
    values = [3.0, 1.0, 3.0, 2.0, 2.0, 2.0, 7.0]
    np.testing.assert_array_equal(s.ranks(values), stats.rankdata(values))
    z = s.binomial_difference(90.0, 88.0, 1000)["z"]
    assert s.binomial_difference(90.0, 88.0, 1000)["p_two_sided"] == pytest.approx(
        2 * stats.norm.sf(abs(z)), rel=1e-12
    )
    with pytest.raises(ValueError, match="a_only"):
        s.mcnemar_p(6, 5)


def test_paired_images_se_is_the_error_of_the_per_image_mean_difference():
    rng = np.random.default_rng(0)
    a = rng.random((3, 500)) < 0.8
    b = a.copy()
    b[:, :40] = ~b[:, :40]  # the networks disagree on the first 40 images only
    u = (a.astype(float) - b.astype(float)).mean(0)
    expected = 100 * u.std(ddof=1) / np.sqrt(500)
    assert s.paired_images_se(a, b) == pytest.approx(expected)
    # paired: identical networks have no images' error, whatever their accuracy
    assert s.paired_images_se(a, a) == 0.0
    # the same images for every seed count once: three copies of one seed give one seed's error
    one = s.paired_images_se(a[:1], b[:1])
    assert s.paired_images_se(np.repeat(a[:1], 3, 0), np.repeat(b[:1], 3, 0)) == (
        pytest.approx(one)
    )
    with pytest.raises(ValueError, match="boolean"):
        s.paired_images_se(a.astype(int), b)
    with pytest.raises(ValueError, match="seeds, images"):
        s.paired_images_se(a, b[:2])
