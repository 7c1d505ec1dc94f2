"""The TisODE mechanism in two dimensions: time invariance, a steady state, and how far nearby
inputs drift.

Three 2-D classifiers ``x -> W z(T) + b`` with ``dz/dt = f(t, z)``, ``z(0) = x``, ``T = 1``,
fixed-step Euler with step 0.1 (the integrator of Yan et al.'s networks), ``f`` a tanh MLP
(:class:`~dyndl_lite.toy.VectorFieldMLP`):

* ``"odenet"``: ``f(t, z)`` reads ``t`` (a plain ODE-Net);
* ``"autonomous"``: ``f(z)`` ignores ``t``, no regulariser (time invariance alone);
* ``"tisode"``: ``f(z)`` plus Yan et al.'s steady-state penalty
  ``w_steady * mean_i int_T^{2T} |f(z(t))_i| dt``
  (:func:`dyndl_lite.models.yan.steady_state_penalty`),
  switched on after 5 % of the epochs as in :mod:`dyndl_lite.models.yan`.

Measurements (all on the Euler states ``z_k`` at ``t_k = k h`` that the networks compute,
:meth:`ToyFlowNet.path`):

* :func:`drift`: ``||z1(t) - z2(t)||`` over ``t`` for pairs ``x2 = x1 + delta``,
  ``||delta|| = eps``;
* :func:`time_shift`: the perturbation that moves an input along its own trajectory,
  ``x~ = z(s; x)``; for an autonomous field the output moves to ``z(T; x~) = z(T + s; x)``, so
  ``||z(T; x~) - z(T; x)|| <= int_T^{T+s} ||f(z(u))|| du`` (returned beside the gap), which the
  steady-state penalty drives towards 0.

The data are :func:`two_moons` (two interleaved half circles), which a flow of the plane can
separate linearly, unlike concentric circles.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dyndl_lite.models.blocks import ODEBlock
from dyndl_lite.models.yan import steady_epoch, steady_state_penalty
from dyndl_lite.toy import VectorFieldMLP, two_moons

KINDS = ("odenet", "autonomous", "tisode")
T_END = 1.0
STEP = 0.1
W_STEADY = 0.01  # Yan et al.'s weight (their MNIST networks); the toy keeps it
TOY_EPOCHS = 40


class ToyFlowNet(nn.Module):
    """``x -> readout(z(T))``, ``dz/dt = f(t, z)`` in the plane, Euler with ``step_size`` on
    ``[0, T]``.

    ``kind``: ``"odenet"`` (``f`` reads ``t``), ``"autonomous"`` (it does not) or ``"tisode"``
    (it does not, and :meth:`extra_loss` adds ``w_steady * L_ss`` from ``epoch_steady`` on; ``L_ss``
    as in :class:`dyndl_lite.models.yan.TisODE`, over ``[T, 2T]``, computed in training mode only).
    """

    def __init__(
        self,
        kind: str = "tisode",
        width: int = 32,
        depth: int = 2,
        w_steady: float = W_STEADY,
        epoch_steady: int = 0,
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
        if not (isinstance(w_steady, (int, float)) and math.isfinite(w_steady) and w_steady >= 0):
            raise ValueError(f"w_steady must be a non-negative finite number, got {w_steady!r}.")
        steady_epoch(epoch_steady=epoch_steady)  # validates it
        self.kind, self.w_steady, self.epoch_steady = kind, float(w_steady), epoch_steady
        self.field = VectorFieldMLP(2, width, depth, time_dependent=kind == "odenet")
        self.block = ODEBlock(self.field, t1=T_END, method="euler", step_size=STEP)
        self.readout = nn.Linear(2, 2)
        self.steady_term: Tensor | None = None

    def path(self, x: Tensor, steps: int) -> Tensor:
        """The Euler states ``z_0 = x, ..., z_steps`` at ``t_k = k h`` (``h`` = :data:`STEP`), shape
        ``(steps + 1, n, 2)``.

        ``z_{k+1} = z_k + h f(t_k, z_k)``: for ``steps = T / h`` the last state is the network's
        ``z(T)``.
        """
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}.")
        states = [x]
        for k in range(steps):
            states.append(states[-1] + STEP * self.field(torch.tensor(k * STEP), states[-1]))
        return torch.stack(states)

    def forward(self, x: Tensor) -> Tensor:
        z = self.block(x)
        self.steady_term = (
            steady_state_penalty(self.field, z, T_END, T_END, STEP)
            if self.training and self.kind == "tisode"
            else None
        )
        return self.readout(z)

    def extra_loss(self, epoch: int) -> Tensor:
        """``w_steady * L_ss`` from ``epoch_steady`` on (TisODE only); zero otherwise."""
        if self.kind != "tisode" or epoch < self.epoch_steady:
            return torch.zeros(())
        if self.steady_term is None:
            raise RuntimeError("extra_loss needs a forward pass in training mode first.")
        return self.w_steady * self.steady_term


def train(
    kind: str, seed: int = 0, n: int = 400, epochs: int = TOY_EPOCHS, w_steady: float = W_STEADY
):
    """Train one :class:`ToyFlowNet` on ``two_moons(n, seed=seed)``; returns ``(net, history)``.

    Adam, learning rate 1e-2, batch 50, ``epochs`` epochs; the TisODE's penalty from
    ``steady_epoch(epochs)`` (5 % of the epochs, at least 1). The same seed gives the three kinds
    the same initial readout and the same batches.
    """
    from dyndl_lite.train import Recipe, fit

    torch.manual_seed(seed)
    net = ToyFlowNet(kind, w_steady=w_steady, epoch_steady=steady_epoch(epochs))
    recipe = Recipe(f"steady-toy-{kind}", epochs=epochs, batch_size=50, optimizer="adam", lr=1e-2)
    history = fit(net, two_moons(n, seed=seed), recipe, seed=seed, progress=False)
    return net.eval(), history


def _check_points(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != 2 or len(x) == 0:
        raise ValueError(
            f"{name} must be a non-empty (n, 2) tensor of points, got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}."
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf.")


@torch.no_grad()
def drift(
    net: ToyFlowNet, x: Tensor, eps: float = 0.05, t_max: float = 2 * T_END, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``(t, d)``: ``d[k, i] = ||z(t_k; x_i + delta_i) - z(t_k; x_i)|| / eps`` on the Euler grid of
    ``[0, t_max]``.

    ``delta_i`` has a uniformly random direction (seeded) and length ``eps``. Beyond ``T`` the
    networks' own field keeps flowing (for the ODE-Net, at times it never saw in training).
    """
    _check_points(x)
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}.")
    if not (isinstance(t_max, (int, float)) and t_max >= STEP):
        raise ValueError(f"t_max must be at least one step ({STEP}), got {t_max!r}.")
    g = torch.Generator().manual_seed(seed)
    direction = torch.randn(x.shape, generator=g)
    delta = eps * direction / direction.norm(dim=1, keepdim=True)
    steps = round(t_max / STEP)
    z1, z2 = net.path(x, steps), net.path(x + delta, steps)
    return STEP * torch.arange(steps + 1), (z2 - z1).norm(dim=-1) / eps


@torch.no_grad()
def time_shift(net: ToyFlowNet, x: Tensor, s: float = 0.5) -> dict[str, Tensor]:
    """Move each input along its own trajectory, ``x~ = z(s; x)``, and measure the output's move.

    Returns per point: ``gap = ||z(T; x~) - z(T; x)||``, ``input_move = ||x~ - x||`` and
    ``bound = sum_k h ||f(z_k)||`` over the Euler steps of ``[T, T + s]`` from ``z(T; x)``.
    For an autonomous field Euler's ``z(T; x~)`` is its ``z(T + s; x)``, so ``gap <= bound``
    (triangle inequality); the steady-state penalty makes the bound small. For the ODE-Net
    (which reads ``t``) the bound does not apply; it is returned for comparison.
    """
    _check_points(x)
    k = round(s / STEP)
    if not (
        isinstance(s, (int, float)) and 1 <= k <= round(T_END / STEP) and abs(k * STEP - s) < 1e-9
    ):
        raise ValueError(
            f"s must be a multiple of the step {STEP} in [{STEP}, {T_END}], got {s!r}."
        )
    n_end = round(T_END / STEP)
    path = net.path(x, n_end + k)  # z_0 = x, ..., z_{n_end + k} = z(T + s; x)
    x_shift = path[k]
    gap = (net.path(x_shift, n_end)[-1] - path[n_end]).norm(dim=-1)
    speeds = torch.stack(
        [net.field(torch.tensor(j * STEP), path[j]).norm(dim=-1) for j in range(n_end, n_end + k)]
    )
    return {"gap": gap, "input_move": (x_shift - x).norm(dim=-1), "bound": STEP * speeds.sum(0)}


@torch.no_grad()
def accuracy_under_noise(
    net: ToyFlowNet, x: Tensor, y: Tensor, sigma: float, seed: int = 0
) -> float:
    """Accuracy on ``x + sigma * N(0, I)`` (one seeded draw)."""
    _check_points(x)
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a non-negative finite number, got {sigma!r}.")
    g = torch.Generator().manual_seed(seed)
    noisy = x + sigma * torch.randn(x.shape, generator=g)
    return (net(noisy).argmax(1) == y).float().mean().item()


def measure(
    net: ToyFlowNet,
    x: Tensor,
    y: Tensor,
    eps: float = 0.05,
    shift: float = 0.5,
    sigmas: tuple[float, ...] = (0.2, 0.4),
    seed: int = 0,
) -> dict:
    """Every number of the chapter's comparison for one network, on the points ``(x, y)``.

    ``accuracy`` and ``noisy`` (``{sigma: accuracy}``) in %; ``L_ss``: the steady-state penalty
    of ``z(T)`` over ``[T, 2T]`` (unweighted); ``drift_T``: mean of
    ``||z(T; x + delta) - z(T; x)|| / eps``
    and ``drift_curve`` its mean over points at every Euler time up to ``2T`` (``t``);
    ``gap``, ``moved``: means of :func:`time_shift`'s gap and input move for ``s = shift``, and
    ``within_bound``: whether every gap is within the bound (which assumes an autonomous field).
    """
    t, d = drift(net, x, eps=eps, t_max=2 * T_END, seed=seed)
    moved = time_shift(net, x, shift)
    with torch.no_grad():
        l_ss = steady_state_penalty(net.field, net.block(x), T_END, T_END, STEP).item()
    return {
        "accuracy": 100 * accuracy_under_noise(net, x, y, 0.0),
        "L_ss": l_ss,
        "drift_T": d[round(T_END / STEP)].mean().item(),
        "t": t.numpy(),
        "drift_curve": d.mean(1).numpy(),
        "gap": moved["gap"].mean().item(),
        "moved": moved["input_move"].mean().item(),
        "within_bound": bool((moved["gap"] <= moved["bound"] + 1e-5).all()),
        "noisy": {sg: 100 * accuracy_under_noise(net, x, y, sg, seed=seed) for sg in sigmas},
    }
