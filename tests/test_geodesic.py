"""Known answers for dyndl_lite.geodesic: LSS, OTS, track distance and its lower bound, tracks of
the Part II nets."""

import math

import numpy as np
import pytest
import torch

from dyndl_lite.experiments.gai import checkpoint_name, wd_tag
from dyndl_lite.geodesic import (
    align_2d,
    bound_check,
    fixed_basis_pca,
    lss,
    lss_summary,
    ots,
    pca_2d,
    segment_distance,
    track_distance,
    track_lower_bound,
    tracks,
)
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
    # gradient of a convex quadratic: an OT map
    fa = a @ (matrix @ matrix.T + 0.1 * np.eye(3)) + 1.0
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
        gai.table(seeds=[2])


# ---------------------------------------------------- pictures and checks of many tracks


def test_pca_2d_fits_one_basis_and_projects_other_tracks_on_it():
    rng = np.random.default_rng(0)
    reference = np.zeros((3, 50, 4))
    # points in a plane of R^4
    reference[..., :2] = rng.normal(size=(3, 50, 2)) * np.array([5.0, 2.0])
    projected = pca_2d(reference)
    assert projected.shape == (3, 50, 2)
    assert np.allclose(projected.reshape(-1, 2).mean(0), 0.0)  # centred on its own mean

    def distances(points):
        flat = points.reshape(-1, points.shape[-1])
        return np.linalg.norm(flat[:, None] - flat[None], axis=-1)

    assert np.allclose(distances(projected), distances(reference))  # the plane is kept exactly
    shift = np.array([0.6, 0.8, 0.0, 0.0])
    # projected on the reference's basis
    moved = pca_2d(reference + shift, fit_on=reference) - projected
    assert np.allclose(moved, moved[0, 0]) and np.linalg.norm(moved[0, 0]) == pytest.approx(1.0)
    assert np.allclose(pca_2d(torch.tensor(reference)), projected)
    snapshots = fixed_basis_pca({"1": reference + shift, "2": reference}, "2")
    assert np.allclose(snapshots["2"], projected) and np.allclose(snapshots["1"], projected + moved)


def test_bound_check_passes_straight_monotone_tracks_and_its_control_fails():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    # gradient of a convex function: an optimal (monotone) map
    end = x @ np.diag([1.0, 2.0, 3.0, 4.0])
    tracks = np.stack([(1 - t) * x + t * end for t in np.linspace(0, 1, 9)])
    check = bound_check(tracks[:, :200], tracks[:, 200:], seed=0)
    assert check["network"] == check["monotone"] == check["straight"] == 1.0
    # a map that ignores its input breaks the bound for many pairs
    assert 0.3 < check["shuffled"] < 0.7
    # a map that swaps two points (anti-monotone) makes straight tracks cross: the bound fails
    crossing = np.stack(
        [[[0.0, 0.0], [1.0, 0.0]], [[0.5, 0.0], [0.5, 0.0]], [[1.0, 0.0], [0.0, 0.0]]]
    )
    swapped = bound_check(crossing[:, :1], crossing[:, 1:], seed=0)
    assert swapped["network"] == 0.0 and swapped["monotone"] == 0.0 and swapped["straight"] == 0.0


def test_align_2d_undoes_a_rotation_and_a_flip():
    points = np.random.default_rng(1).normal(size=(9, 30, 2))
    rotated = points @ np.array([[0.0, -1.0], [1.0, 0.0]]) @ np.diag([1.0, -1.0])
    assert np.allclose(align_2d(rotated, points), points)
    with pytest.raises(ValueError, match="shape"):
        align_2d(points, points[:, :, :1])


def test_align_2d_is_the_best_orthogonal_map_and_keeps_distances():
    rng = np.random.default_rng(2)
    points, reference = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    aligned = align_2d(points, reference)
    # orthogonal: every distance between points is kept
    assert np.allclose(
        np.linalg.norm(aligned[:, None] - aligned[None], axis=-1),
        np.linalg.norm(points[:, None] - points[None], axis=-1),
    )

    def misfit(x):
        return np.linalg.norm((x - x.mean(0)) - (reference - reference.mean(0)))

    # no rotation or reflection of the points comes closer to the reference
    for angle in np.linspace(0, 2 * np.pi, 36, endpoint=False):
        c, s = np.cos(angle), np.sin(angle)
        for flip in (np.eye(2), np.diag([1.0, -1.0])):
            assert misfit(aligned) <= misfit(points @ flip @ np.array([[c, -s], [s, c]])) + 1e-9


def test_fixed_basis_pca_projects_every_snapshot_on_the_reference_basis_only():
    rng = np.random.default_rng(3)
    reference, other = rng.normal(size=(3, 20, 5)), rng.normal(size=(3, 20, 5))
    pictures = fixed_basis_pca({"1": other.tolist(), "9": reference}, "9")
    assert np.allclose(pictures["9"], pca_2d(reference))
    assert np.allclose(pictures["1"], pca_2d(other, fit_on=reference))
    assert not np.allclose(pictures["1"], pca_2d(other))  # not refitted to its own points
    with pytest.raises(ValueError, match="reference '5' is not a snapshot"):
        fixed_basis_pca({"1": other}, "5")


def test_segment_distance_is_the_minimum_over_the_segment():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    sampled = np.stack(
        [np.linalg.norm((1 - t) * a + t * b, axis=-1) for t in np.linspace(0, 1, 2001)]
    )
    found = segment_distance(a, b)
    assert (found <= sampled.min(0) + 1e-12).all() and np.allclose(found, sampled.min(0), atol=2e-3)
