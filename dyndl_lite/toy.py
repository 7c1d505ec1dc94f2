"""Two-dimensional toy problems and small vector fields for the ODE chapters.

Data sets return ``(x, y)``: points ``x`` of shape ``(n, 2)`` (float32) and
integer labels ``y`` of shape ``(n,)`` (int64), drawn from a seeded
``torch.Generator`` so that a figure is the same on every machine.

* :func:`two_spirals`: two interleaved spirals
  ``r(s) = s, angle(s) = 4 pi s + c pi`` for ``s`` in ``[0.1, 1]``, class ``c`` in ``{0, 1}``.
* :func:`two_moons`: two interleaved half circles (chapters 6 and 7).
* :func:`concentric_circles`: an inner disc (class 0) inside a ring (class 1);
  no homeomorphism of the plane isotopic to the identity can move the disc
  outside the ring, which is what a plain ODE-Net in 2-D would have to do to
  separate them linearly (Dupont et al., 2019).
* :func:`reflection_1d`: the 1-D map ``x -> -x``, which no ODE flow in 1-D represents.

Vector fields are ``nn.Module`` s called as ``f(t, z)``, like torchdiffeq's:

* :class:`VectorFieldMLP`: ``f(t, z) = W_L sigma(... sigma(W_1 [z, t] + b_1) ...) + b_L``.
* :class:`ToyODENet`: ``x -> linear(pad(x) -> z(1))`` where ``z`` solves ``dz/dt = f(t, z)``
  from ``z(0) = [x, 0, ..., 0]`` (``augment`` extra zeros: an augmented neural ODE).

:func:`toy_odenet` trains chapter 5's plain 2-D ODE-Net on :func:`concentric_circles`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dyndl_lite.models.blocks import ODEBlock
from dyndl_lite.train import History, Recipe, fit


def _check_count(n: int, name: str = "n") -> None:
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"{name} must be an integer of at least 2, got {n!r}.")


def _check_noise(noise: float) -> None:
    if not noise >= 0:
        raise ValueError(f"noise must be a non-negative standard deviation, got {noise!r}.")


def _generator(seed: int) -> torch.Generator:
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return torch.Generator().manual_seed(seed)


def two_spirals(n: int = 400, noise: float = 0.02, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two interleaved spirals, ``n // 2`` points each (class 0 and class 1).

    Point ``s`` of class ``c`` is ``s (cos(4 pi s + c pi), sin(4 pi s + c pi)) + noise * N(0, I)``
    with ``s`` uniform in ``[0.1, 1]``: the second spiral is the first rotated by 180 degrees.
    """
    _check_count(n)
    _check_noise(noise)
    g = _generator(seed)
    half = n // 2
    s = 0.1 + 0.9 * torch.rand(2, half, generator=g)
    angle = 4 * math.pi * s + math.pi * torch.tensor([[0.0], [1.0]])
    x = torch.stack([s * torch.cos(angle), s * torch.sin(angle)], dim=-1).reshape(-1, 2)
    x = x + noise * torch.randn(x.shape, generator=g)
    y = torch.arange(2).repeat_interleave(half)
    return x.float(), y.long()


def two_moons(n: int = 400, noise: float = 0.1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two interleaved half circles, ``n // 2`` points each: class 0 ``(cos a, sin a)``, class 1
    ``(1 - cos a, 0.5 - sin a)``, ``a`` uniform in ``[0, pi]``, plus ``noise * N(0, I)``."""
    _check_count(n)
    _check_noise(noise)
    g = _generator(seed)
    half = n // 2
    a = math.pi * torch.rand(2, half, generator=g)
    upper = torch.stack([torch.cos(a[0]), torch.sin(a[0])], dim=-1)
    lower = torch.stack([1 - torch.cos(a[1]), 0.5 - torch.sin(a[1])], dim=-1)
    x = torch.cat([upper, lower]) + noise * torch.randn(2 * half, 2, generator=g)
    return x.float(), torch.arange(2).repeat_interleave(half)


def concentric_circles(
    n: int = 400, inner: float = 0.5, ring: tuple[float, float] = (1.0, 1.5), seed: int = 0
) -> tuple[Tensor, Tensor]:
    """An inner disc of radius ``inner`` (class 0) inside a ring ``ring[0] <= r <= ring[1]``
    (class 1).

    Radii are drawn so that points are uniform in area: ``r = sqrt(U (b^2 - a^2) + a^2)``.
    """
    _check_count(n)
    a, b = ring
    if not 0 < inner < a < b:
        raise ValueError(f"need 0 < inner < ring[0] < ring[1], got inner={inner}, ring={ring}.")
    g = _generator(seed)
    half = n // 2
    r_in = inner * torch.sqrt(torch.rand(half, generator=g))
    r_out = torch.sqrt(torch.rand(half, generator=g) * (b**2 - a**2) + a**2)
    r = torch.cat([r_in, r_out])
    phi = 2 * math.pi * torch.rand(2 * half, generator=g)
    x = torch.stack([r * torch.cos(phi), r * torch.sin(phi)], dim=-1)
    y = torch.arange(2).repeat_interleave(half)
    return x.float(), y.long()


def reflection_1d(n: int = 64, low: float = -1.0, high: float = 1.0) -> tuple[Tensor, Tensor]:
    """Inputs ``x`` evenly spaced on ``[low, high]`` (shape ``(n, 1)``) and targets ``-x``.

    The map ``x -> -x`` reverses order on the line; the flow of an ODE in 1-D preserves it.
    """
    _check_count(n)
    if not low < high:
        raise ValueError(f"need low < high, got low={low}, high={high}.")
    x = torch.linspace(low, high, n).unsqueeze(1)
    return x, -x


class VectorFieldMLP(nn.Module):
    """A time-dependent vector field ``f(t, z)`` on ``R^dim``: an MLP of ``[z, t]``.

    ``f(t, z) = W_L tanh(... tanh(W_1 [z, t] + b_1) ...) + b_L`` with ``depth`` hidden
    layers of ``width`` units. ``time_dependent=False`` drops ``t`` from the input
    (an autonomous field). Called as ``f(t, z)`` with ``z`` of shape ``(..., dim)``.
    """

    def __init__(
        self,
        dim: int = 2,
        width: int = 32,
        depth: int = 2,
        time_dependent: bool = True,
        activation: type[nn.Module] = nn.Tanh,
    ):
        super().__init__()
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}.")
        if not isinstance(width, int) or width < 1 or not isinstance(depth, int) or depth < 1:
            raise ValueError(
                f"width and depth must be positive integers, got width={width!r}, depth={depth!r}."
            )
        self.dim, self.time_dependent = dim, time_dependent
        sizes = [dim + int(time_dependent)] + [width] * depth
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), activation()]
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        if z.shape[-1] != self.dim:
            raise ValueError(
                f"z has last dimension {z.shape[-1]}, but this field lives in R^{self.dim}."
            )
        if self.time_dependent:
            time = torch.as_tensor(t, dtype=z.dtype, device=z.device).expand(*z.shape[:-1], 1)
            z = torch.cat([z, time], dim=-1)
        return self.net(z)


class ToyODENet(nn.Module):
    """ODE-Net for 2-D (or 1-D) toy data: pad with zeros, flow for time ``t1``, read out linearly.

    ``x -> W z(t1) + b`` where ``dz/dt = f(t, z)``, ``z(0) = [x, 0_augment]`` and ``f`` is a
    :class:`VectorFieldMLP` on ``R^(in_dim + augment)``. ``augment=0`` is a plain ODE-Net;
    ``augment>0`` is an augmented neural ODE (Dupont et al., 2019). ``out_dim`` is the number
    of classes (or of regression targets). ``linear_readout=False`` replaces ``W z + b`` by the
    fixed projection ``z(t1)[:out_dim]``, so that the flow alone must produce the output.
    """

    def __init__(
        self,
        in_dim: int = 2,
        out_dim: int = 2,
        augment: int = 0,
        width: int = 32,
        depth: int = 2,
        t1: float = 1.0,
        method: str = "rk4",
        step_size: float | None = 0.1,
        adjoint: bool = False,
        linear_readout: bool = True,
    ):
        super().__init__()
        if not isinstance(augment, int) or augment < 0:
            raise ValueError(f"augment must be a non-negative integer, got {augment!r}.")
        if not linear_readout and out_dim > in_dim + augment:
            raise ValueError(
                "a projection readout needs out_dim <= in_dim + augment, "
                f"got {out_dim} > {in_dim + augment}."
            )
        self.in_dim, self.out_dim, self.augment = in_dim, out_dim, augment
        self.field = VectorFieldMLP(in_dim + augment, width, depth)
        self.block = ODEBlock(
            self.field, t1=t1, method=method, step_size=step_size, adjoint=adjoint
        )
        self.readout = nn.Linear(in_dim + augment, out_dim) if linear_readout else None

    def lift(self, x: Tensor) -> Tensor:
        """``[x, 0, ..., 0]``: the initial state in ``R^(in_dim + augment)``."""
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"x has last dimension {x.shape[-1]}, expected {self.in_dim}.")
        return torch.cat([x, x.new_zeros(*x.shape[:-1], self.augment)], dim=-1)

    def flow(self, x: Tensor, t: Tensor) -> Tensor:
        """Trajectories ``z(t_k)`` of the lifted inputs, shape
        ``(len(t), *x.shape[:-1], in_dim + augment)``."""
        return self.block.trajectory(self.lift(x), t)

    def forward(self, x: Tensor) -> Tensor:
        z1 = self.block(self.lift(x))
        return self.readout(z1) if self.readout is not None else z1[..., : self.out_dim]


#: Chapter 5's recipe for the 2-D ODE-Net: Adam 1e-2, batch 50, 30 epochs.
TOY_ODENET_RECIPE = Recipe(
    "toy-odenet-circles", epochs=30, batch_size=50, optimizer="adam", lr=1e-2
)


def toy_odenet(
    seed: int = 0, n: int = 400
) -> tuple[ToyODENet, tuple[Tensor, Tensor], tuple[Tensor, Tensor], History]:
    """Train a plain (non-augmented) 2-D ODE-Net on concentric circles; return
    ``(net, train, test, history)``.

    ``dz/dt = f(t, z)`` with ``f`` a tanh MLP (2 hidden layers of 32) on ``[z, t]``,
    RK4 with step 0.1 on ``[0, 1]``, linear read-out; training data
    ``concentric_circles(n, seed=seed)``, test data the same law with ``seed + 1``;
    :data:`TOY_ODENET_RECIPE`.
    """
    torch.manual_seed(seed)
    train, test = concentric_circles(n, seed=seed), concentric_circles(n, seed=seed + 1)
    net = ToyODENet(2, 2, augment=0, width=32, depth=2, method="rk4", step_size=0.1)
    history = fit(net, train, TOY_ODENET_RECIPE, test=test, seed=seed, progress=False)
    return net, train, test, history
