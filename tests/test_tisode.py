"""Yan et al.'s TisODE: a field that ignores time, the steady-state penalty, its switch-on, and a
tiny fit."""

from __future__ import annotations

import math

import pytest
import torch

from dyndl_lite.models.blocks import count_parameters
from dyndl_lite.models.yan import (
    AUTHORS_LOG_PARAMETERS,
    EPOCH_STEADY,
    PAPER_PARAMETERS,
    STEADY_SPAN,
    T_END,
    TISODE_STEP,
    W_STEADY,
    TisODE,
    YanODEFunc,
    YanTimeInvariantFunc,
    build,
    steady_epoch,
    steady_state_penalty,
)
from dyndl_lite.train import Recipe, fit


def reads_time(func, z: torch.Tensor, times=(0.0, 0.37, 1.0, 5.0)) -> bool:
    """Whether ``func(t, z)`` changes with ``t`` (bitwise comparison: a field that ignores t gives
    equal tensors)."""
    with torch.no_grad():
        reference = func(torch.tensor(times[0]), z)
        return any(not torch.equal(func(torch.tensor(t), z), reference) for t in times[1:])


@pytest.fixture
def state() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 64, 13, 13)


def test_tisode_field_ignores_time_and_the_check_can_fail(state):
    torch.manual_seed(1)
    assert not reads_time(YanTimeInvariantFunc(), state)
    # the ODENet's ConcatConv2d field reads t: the check detects it
    assert reads_time(YanODEFunc(), state)

    class Mutant(YanTimeInvariantFunc):  # a TisODE field with a tiny dependence on t
        def forward(self, t, z):
            return super().forward(t, z) + 1e-6 * t

    assert reads_time(Mutant(), state)


def test_time_invariance_gives_the_semigroup_property(state):
    """Flowing 0.5 from t = 0, then 0.5 from t = 0 again, equals flowing 1 from t = 0: only for an
    autonomous field."""
    torch.manual_seed(2)
    grid_half, grid_one = torch.tensor([0.0, 0.5]), torch.tensor([0.0, 1.0])

    def restarted_gap(net) -> float:
        with torch.no_grad():
            once = net.block.trajectory(state, grid_one)[-1]
            twice = net.block.trajectory(net.block.trajectory(state, grid_half)[-1], grid_half)[-1]
        return (once - twice).abs().max().item()

    assert restarted_gap(build("tisode")) < 1e-5
    assert restarted_gap(build("odenet")) > 1e-3  # the time-dependent field breaks it


def test_penalty_is_zero_at_a_steady_state_and_positive_elsewhere():
    centre = torch.tensor([[0.3, -1.2]])
    field = lambda t, z: -(z - centre)  # noqa: E731  steady state at `centre`
    assert steady_state_penalty(field, centre.clone(), 1.0, 1.0, 0.1).item() == 0.0
    for offset in (1e-3, 0.5, -2.0):
        assert steady_state_penalty(field, centre + offset, 1.0, 1.0, 0.1).item() > 0.0


def test_penalty_is_eulers_integral_of_the_absolute_field():
    """For dz/dt = -z from z = 1 (value negative: |f| matters), sum_k h |f(z_k)| = 1 - (1 - h)^n."""
    h, n = 0.1, 10
    got = steady_state_penalty(
        lambda t, z: -z, torch.ones(3, 1, dtype=torch.float64), 1.0, n * h, h
    )
    assert got.item() == pytest.approx(1 - (1 - h) ** n, rel=1e-12)
    # a constant field c gives span * mean|c|
    c = torch.tensor([2.0, -4.0], dtype=torch.float64)
    assert steady_state_penalty(
        lambda t, z: c.expand_as(z), torch.zeros(5, 2, dtype=torch.float64), 1.0, 1.0, 0.1
    ).item() == pytest.approx(3.0)


def test_tisode_penalty_vanishes_for_a_zero_field_and_not_otherwise(state):
    """conv2 = 0 and the last GroupNorm's bias b: f = ReLU(b), so every state is steady
    iff b <= 0."""
    net = build("tisode")
    torch.nn.init.zeros_(net.field.conv2.weight)
    torch.nn.init.zeros_(net.field.norm2.bias)
    assert steady_state_penalty(net.field, state).item() == 0.0
    torch.nn.init.constant_(net.field.norm2.bias, 0.25)
    assert steady_state_penalty(net.field, state).item() == pytest.approx(
        STEADY_SPAN * 0.25, rel=1e-6
    )


def test_penalty_has_gradients_for_the_field_and_the_state(state):
    net = build("tisode")
    z = state.clone().requires_grad_(True)
    steady_state_penalty(net.field, z).backward()
    assert z.grad.abs().sum() > 0 and net.field.conv1.weight.grad.abs().sum() > 0


def test_parameter_count_beside_the_authors_log():
    ours = count_parameters(build("tisode"))
    print(
        f"TisODE parameters (MNIST): ours {ours:,}; "
        f"the authors' training log {AUTHORS_LOG_PARAMETERS['tisode']:,}; "
        "the paper's own count: not known to us"
    )
    assert ours == AUTHORS_LOG_PARAMETERS["tisode"] == PAPER_PARAMETERS["cnn"]
    assert count_parameters(build("tisode", in_channels=3)) == count_parameters(
        build("cnn", in_channels=3)
    )


def test_constants_are_the_documented_ones():
    assert (T_END, TISODE_STEP, STEADY_SPAN, W_STEADY, EPOCH_STEADY) == (1.0, 0.1, 1.0, 0.01, 5)
    net = build("tisode")
    assert (
        net.block.t1,
        net.block.step_size,
        net.block.method,
        net.span,
        net.w_steady,
        net.epoch_steady,
    ) == (1.0, 0.1, "euler", 1.0, 0.01, 5)


def test_extra_loss_switches_on_at_epoch_steady_and_eval_skips_the_second_integration():
    torch.manual_seed(0)
    net = build("tisode")
    calls = []
    original = net.block.field.func.forward
    net.block.field.func.forward = lambda t, z: calls.append(1) or original(t, z)
    x = torch.rand(3, 1, 28, 28)
    net.train()
    logits = net(x)
    assert len(calls) == 20  # ten Euler steps on [0, 1] and ten on [1, 2]
    for epoch in range(EPOCH_STEADY):
        assert net.extra_loss(epoch).item() == 0.0
    term = net.steady_term.item()
    assert term > 0
    assert net.extra_loss(EPOCH_STEADY).item() == pytest.approx(W_STEADY * term)
    assert net.extra_loss(EPOCH_STEADY + 40).item() == pytest.approx(W_STEADY * term)
    calls.clear()
    net.eval()
    with torch.no_grad():
        # same prediction (GroupNorm has no running statistics)
        assert torch.allclose(net(x), logits, atol=1e-6)
    assert len(calls) == 10 and net.steady_term is None
    with pytest.raises(RuntimeError, match="training"):
        net.extra_loss(EPOCH_STEADY)


def test_epoch_steady_scales_with_a_compressed_schedule():
    assert (
        steady_epoch(100) == 5
        and steady_epoch(10) == 1
        and steady_epoch(40) == 2
        and steady_epoch(1) == 1
    )
    assert build("tisode", epochs=10).epoch_steady == 1 and build("tisode").epoch_steady == 5
    assert TisODE().schedule(50).epoch_steady == 2  # round(2.5) == 2


def test_bad_arguments_raise_naming_them():
    with pytest.raises(ValueError, match="w_steady"):
        TisODE(w_steady=-0.1)
    with pytest.raises(ValueError, match="step_size"):
        TisODE(step_size=0.0)
    with pytest.raises(ValueError, match="epoch_steady"):
        TisODE(epoch_steady=-1)
    with pytest.raises(ValueError, match="epochs"):
        build("tisode", epochs=0)
    with pytest.raises(ValueError, match="epoch"):
        TisODE().extra_loss(-1)
    with pytest.raises(ValueError, match="NaN"):
        steady_state_penalty(lambda t, z: z, torch.tensor([math.nan]))
    with pytest.raises(ValueError, match="span"):
        steady_state_penalty(lambda t, z: z, torch.ones(2), span=-1.0)
    with pytest.raises(TypeError, match="z"):
        steady_state_penalty(lambda t, z: z, torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        build("tisode")(torch.rand(2, 3, 28, 28))


def test_a_tiny_fit_adds_the_regulariser_to_the_loss():
    """Two fits on the same 64 random images and batches, w_steady = 0 and 1, epoch_steady = 1: the
    step losses agree in epoch 0 and differ by the recorded steady-state term in epoch 1."""
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g))
    recipe = Recipe("tisode-tiny", epochs=2, batch_size=32, optimizer="adam", lr=1e-12)
    histories, terms = [], []
    for w in (0.0, 1.0):
        torch.manual_seed(0)
        net = TisODE(w_steady=w, epoch_steady=1)
        recorded = []
        original = net.extra_loss
        net.extra_loss = lambda epoch, f=original, r=recorded: r.append(f(epoch).item()) or f(epoch)
        histories.append(fit(net, data, recipe, seed=0, progress=False))
        terms.append(recorded)
    plain, regularised = histories
    steps = 2  # per epoch
    assert terms[1][:steps] == [0.0, 0.0] and all(t > 0 for t in terms[1][steps:])
    assert regularised.step_loss[:steps] == pytest.approx(plain.step_loss[:steps], abs=1e-6)
    differences = [r - p for r, p in zip(regularised.step_loss[steps:], plain.step_loss[steps:])]
    assert differences == pytest.approx(terms[1][steps:], rel=1e-4)
