"""The 2-D TisODE mechanism (dyndl_lite.steady): data, Euler paths, drift, the time-shift bound, the
regulariser hook."""

from __future__ import annotations

import math

import pytest
import torch

from dyndl_lite import steady
from dyndl_lite.toy import two_moons


def zero_field(net: steady.ToyFlowNet) -> steady.ToyFlowNet:
    """Make f = 0: the last layer's weights and bias zero, so every point is a steady state."""
    last = net.field.net[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return net


@pytest.mark.parametrize("kind", steady.KINDS)
def test_path_ends_at_the_networks_state(kind):
    torch.manual_seed(0)
    net = steady.ToyFlowNet(kind)
    x, _ = two_moons(20)
    with torch.no_grad():
        assert torch.allclose(
            net.path(x, round(steady.T_END / steady.STEP))[-1], net.block(x), atol=1e-6
        )


@pytest.mark.parametrize("kind", ["autonomous", "tisode"])
def test_time_shift_gap_is_bounded_by_the_integrated_speed(kind):
    torch.manual_seed(1)
    net = steady.ToyFlowNet(kind)
    x, _ = two_moons(50)
    for s in (0.1, 0.5, 1.0):
        out = steady.time_shift(net, x, s)
        assert (out["gap"] <= out["bound"] + 1e-5).all()
        assert out["gap"].max() > 0 and out["input_move"].max() > 0


def test_time_shift_of_an_autonomous_field_is_the_later_state_but_not_for_the_odenet():
    x, _ = two_moons(30)
    for kind, same in (("autonomous", True), ("odenet", False)):
        torch.manual_seed(2)
        net = steady.ToyFlowNet(kind)
        with torch.no_grad():
            path = net.path(x, 15)
            restarted = net.path(path[5], 10)[-1]
        assert torch.allclose(restarted, path[15], atol=1e-5) == same


def test_zero_field_drifts_by_exactly_one_and_does_not_move():
    x, _ = two_moons(40)
    net = zero_field(steady.ToyFlowNet("tisode"))
    t, d = steady.drift(net, x, eps=0.05)
    assert t.shape == (21,) and d.shape == (21, 40)
    assert torch.allclose(d, torch.ones_like(d), atol=1e-4)
    out = steady.time_shift(net, x, 0.5)
    assert out["gap"].max() == 0 and out["bound"].max() == 0


def test_drift_starts_at_one_and_is_seeded():
    torch.manual_seed(0)
    net = steady.ToyFlowNet("odenet")
    x, _ = two_moons(40)
    t, d = steady.drift(net, x, eps=0.01, t_max=1.0, seed=4)
    assert (
        t[0] == 0
        and t[-1] == pytest.approx(1.0)
        and torch.allclose(d[0], torch.ones(40), atol=1e-3)
    )
    assert torch.equal(d, steady.drift(net, x, eps=0.01, t_max=1.0, seed=4)[1])


def test_extra_loss_is_the_weighted_penalty_for_the_tisode_only():
    x, _ = two_moons(40)
    torch.manual_seed(0)
    tis = steady.ToyFlowNet("tisode", w_steady=0.5, epoch_steady=2).train()
    tis(x)
    assert tis.extra_loss(1).item() == 0.0 and tis.extra_loss(2).item() == pytest.approx(
        0.5 * tis.steady_term.item()
    )
    assert tis.steady_term.item() > 0
    tis.eval()
    tis(x)
    assert tis.steady_term is None
    plain = steady.ToyFlowNet("autonomous").train()
    plain(x)
    assert plain.steady_term is None and plain.extra_loss(10).item() == 0.0


def test_training_runs_and_noise_free_accuracy_is_plain_accuracy():
    net, history = steady.train("tisode", seed=0, n=100, epochs=2)
    assert (
        not net.training and len(history.loss) == 2 and all(math.isfinite(v) for v in history.loss)
    )
    x, y = two_moons(100, seed=5)
    with torch.no_grad():
        plain = (net(x).argmax(1) == y).float().mean().item()
    assert steady.accuracy_under_noise(net, x, y, 0.0) == plain


def test_bad_arguments_raise_naming_them():
    net = steady.ToyFlowNet("odenet")
    x, y = two_moons(10)
    with pytest.raises(ValueError, match="kind"):
        steady.ToyFlowNet("resnet")
    with pytest.raises(ValueError, match="w_steady"):
        steady.ToyFlowNet(w_steady=math.nan)
    with pytest.raises(ValueError, match="eps"):
        steady.drift(net, x, eps=0.0)
    with pytest.raises(ValueError, match="s must be"):
        steady.time_shift(net, x, 0.25)
    with pytest.raises(ValueError, match="x contains NaN"):
        steady.drift(net, torch.full((3, 2), math.nan))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        steady.time_shift(net, torch.ones(3, 3))
    with pytest.raises(ValueError, match="sigma"):
        steady.accuracy_under_noise(net, x, y, -1.0)


def test_measure_collects_the_same_numbers_as_the_parts():
    torch.manual_seed(0)
    net = steady.ToyFlowNet("tisode").eval()
    x, y = two_moons(60, seed=7)
    got = steady.measure(net, x, y, eps=0.05, shift=0.5, sigmas=(0.3,), seed=2)
    t, d = steady.drift(net, x, eps=0.05, seed=2)
    assert got["drift_T"] == pytest.approx(d[10].mean().item()) and got["drift_curve"].shape == (
        21,
    )
    assert got["gap"] == pytest.approx(steady.time_shift(net, x, 0.5)["gap"].mean().item())
    assert got["noisy"][0.3] == pytest.approx(
        100 * steady.accuracy_under_noise(net, x, y, 0.3, seed=2)
    )
    assert got["L_ss"] > 0 and got["within_bound"]
    assert steady.measure(zero_field(net), x, y)["L_ss"] == 0.0
