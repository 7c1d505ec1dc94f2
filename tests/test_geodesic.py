"""Known answers for dyndl_lite.geodesic: LSS, OTS, track distance and its lower bound, tracks of
the Part II nets."""

import math

import numpy as np
import pytest
import torch

from dyndl_lite.experiments.gai import checkpoint_name, lss_summary, pca_2d, wd_tag
from dyndl_lite.geodesic import lss, ots, track_distance, track_lower_bound, tracks
from dyndl_lite.models.residual import TrackNet, toy_resnet


def test_straight_track_has_lss_one():
    t = np.linspace(0, 1, 6) ** 2  # uneven steps along one line: still straight
    track = np.array([1.0, 2.0, -1.0]) + t[:, None] * np.array([3.0, 0.0, 4.0])
    assert lss(track) == pytest.approx(1.0)


def test_zigzag_lss_by_hand():
    # steps (1,1), (1,-1), (1,1), (1,-1): unit steps sum to (4/sqrt2, 0)
    # -> LSS = 4 / (2 sqrt2) = sqrt2
    track = np.array([[0, 0], [1, 1], [2, 0], [3, 1], [4, 0]], dtype=float)
    assert lss(track) == pytest.approx(np.sqrt(2))
    # a right angle: steps (1,0), (0,1) -> |sum| = sqrt2, LSS = 2 / sqrt2
    assert lss(np.array([[0, 0], [1, 0], [1, 1]], dtype=float)) == pytest.approx(np.sqrt(2))


def test_lss_batch_and_errors():
    batch = torch.stack([torch.zeros(3, 2), torch.ones(3, 2)], dim=1)
    batch[1, :, 0] += 1.0
    batch[2, :, 0] += 2.0
    np.testing.assert_allclose(lss(batch), [1.0, 1.0])
    with pytest.raises(ValueError, match="zero-length step"):
        lss(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="at least two layers"):
        lss(np.zeros((1, 2)))


def test_ots_identity_is_one_and_a_swap_is_not_optimal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 4))
    assert ots(x, x) == 1.0
    assert ots(x, 2 * x + 1) == 1.0  # gradient of a convex function: optimal
    fx = x.copy()
    i, j = np.argsort(x[:, 0])[[0, -1]]  # swap the images of two far-apart points
    fx[[i, j]] = fx[[j, i]]
    assert ots(x, fx) == pytest.approx(0.98)
    assert ots(x, -x) < 1.0  # a reflection is not monotone


def test_ots_shape_errors():
    with pytest.raises(ValueError, match="same space"):
        ots(np.zeros((5, 2)), np.zeros((5, 3)))


def test_lower_bound_holds_for_straight_tracks_of_monotone_pairs():
    rng = np.random.default_rng(1)
    times = np.linspace(0, 1, 9)[:, None]
    a = rng.normal(size=(500, 3))
    matrix = rng.normal(size=(3, 3))
    fa = (
        a @ (matrix @ matrix.T + 0.1 * np.eye(3)) + 1.0
    )  # gradient of a convex quadratic: an OT map
    b = a[rng.permutation(500)]
    fb = b @ (matrix @ matrix.T + 0.1 * np.eye(3)) + 1.0
    track_a = (1 - times)[:, None] * a[None] + times[:, None] * fa[None]
    track_b = (1 - times)[:, None] * b[None] + times[:, None] * fb[None]
    distance = track_distance(track_a, track_b)
    bound = track_lower_bound(a, b, fa, fb)
    assert np.all(distance >= bound - 1e-12)
    # two points whose images swap sides (not monotone) can have crossing tracks: the bound fails
    x1, x2 = np.array([0.0, 0.0]), np.array([1.0, 0.0])
    line = np.linspace(0, 1, 3)[:, None]
    d = track_distance((1 - line) * x1 + line * x2, (1 - line) * x2 + line * x1)
    assert d == 0.0 < track_lower_bound(x1, x2, x2, x1)


def test_tracks_of_residual_and_plain_nets():
    torch.manual_seed(0)
    net = TrackNet(6, 4, depth=3, hidden=8, num_classes=2, residual=True)
    x = torch.randn(5, 6)
    t = tracks(net, x, batch_size=2)
    assert t.shape == (4, 5, 4)
    with torch.no_grad():
        step = t[0] + net.blocks[0](t[0])
        torch.testing.assert_close(t[1], step)
        torch.testing.assert_close(net.head(t[-1]), net(x))
    plain = TrackNet(6, 4, depth=3, hidden=8, num_classes=2, residual=False)
    assert (tracks(plain, x)[1:] >= 0).all()  # plain layers end in a relu
    assert toy_resnet().track(torch.randn(3, 2)).shape == (11, 3, 2)
    assert pca_2d(t).shape == (4, 5, 2)
    with pytest.raises(TypeError, match="track"):
        tracks(torch.nn.Linear(2, 2), x)


def test_ots_counts_coinciding_images_as_matched():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    fx = np.zeros((3, 2))  # a collapsed layer: every image is the same point
    assert ots(x, fx) == 1.0


def test_lss_summary_and_checkpoint_names():
    track = np.zeros((3, 2, 2))
    track[1:, 0, 0] = [1.0, 2.0]  # sample 0 straight, sample 1 never moves
    assert lss_summary(track) == (1.0, None, 1)  # one kept track: no standard error
    assert [wd_tag(g) for g in (0.0, 5e-4, 1e-2)] == ["0", "5e-4", "1e-2"]
    assert checkpoint_name("plain-wd5e-3", 2) == "gai-plain-wd5e-3-seed2"
    with pytest.raises(ValueError, match="unknown chapter-10 model"):
        checkpoint_name("plain-wd7")


# ---------------------------------------------------------------- issue 15: no silent wrong answers


def test_non_finite_tracks_are_errors_not_scores():
    track = np.cumsum(np.ones((4, 3, 2)), axis=0)
    track[2, 1, 0] = np.nan
    for call in (
        lambda: lss(track),
        lambda: lss_summary(track),
        lambda: track_distance(track, track),
    ):
        with pytest.raises(
            ValueError, match=r"track contains NaN or Inf \(first at index \(2, 1, 0\)\)"
        ):
            call()
    with pytest.raises(ValueError, match="track is empty"):
        lss_summary(np.zeros((4, 0, 2)))
    points = np.zeros((3, 2))
    nan_points = points.copy()
    nan_points[0, 0] = np.nan
    with pytest.raises(ValueError, match="fx2 contains NaN"):
        track_lower_bound(points, points + 1, points, nan_points)
    with pytest.raises(ValueError, match="fx contains NaN"):
        ots(points, nan_points)


def test_lss_summary_leaves_out_only_zero_length_steps():
    straight = np.linspace(0, 1, 5)[:, None, None] * np.ones((1, 3, 2))
    straight[2:, 2] = straight[2, 2]  # sample 2 stops moving: zero-length steps
    mean, se, left_out = lss_summary(straight)
    assert left_out == 1 and mean == pytest.approx(1.0) and se == pytest.approx(0.0, abs=1e-12)


def test_lss_summary_standard_error_is_the_sample_std_over_root_k():
    # two kept tracks with LSS 1 (straight) and 2/sqrt(2) (a right-angle turn), one left out
    track = np.zeros((3, 3, 2))
    track[1:, 0, 0] = [1.0, 2.0]
    track[1, 1] = [1.0, 0.0]
    track[2, 1] = [1.0, 1.0]
    scores = np.array([1.0, math.sqrt(2)])
    summary = lss_summary(track)
    assert summary.left_out == 1
    assert summary.mean == pytest.approx(scores.mean())
    assert summary.se == pytest.approx(scores.std(ddof=1) / math.sqrt(2))


def test_tracks_of_empty_or_nan_input_is_a_clear_error():
    model = toy_resnet(depth=2)
    with pytest.raises(ValueError, match="x holds no inputs"):
        tracks(model, torch.zeros(0, 2))
    with pytest.raises(ValueError, match="x contains NaN"):
        tracks(model, torch.full((3, 2), float("nan")))


def test_chapters_evaluate_the_weight_decays_with_both_networks(monkeypatch):
    from dyndl_lite.experiments import gai

    have = {
        "gai-resnet-wd0-seed0",
        "gai-plain-wd0-seed0",
        "gai-resnet-wd1e-3-seed0",  # its plain twin is missing: not evaluated
        "gai-resnet-wd1e-2-seed0",
        "gai-plain-wd1e-2-seed0",
        "gai-plain-wd5e-4-seed1",  # another seed
        "gai-resnet-wd5e-4-seed1",
    }
    monkeypatch.setattr(gai.pretrained, "exists", lambda name, folder=None: name in have)
    assert gai.available_weight_decays() == [0.0, 1e-2]
    assert gai.available_weight_decays(seed=1) == [5e-4]
    with pytest.raises(FileNotFoundError, match="no weight decay has both"):
        gai.table(None, seed=2)
