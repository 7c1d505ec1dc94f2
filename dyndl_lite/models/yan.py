"""Yan et al.'s networks for the robustness study: a one-block CNN, an ODENet, and their TisODE.

Both networks share a feature extractor and a head (Yan, Du, Tan, Feng, ICLR 2020,
public code HanshuYAN/TisODE):

* features: ``Conv2d(c, 64, 3, 1)``, GN, ReLU, ``Conv2d(64, 64, 4, 2, 1)``, GN, ReLU;
* head: ``AdaptiveAvgPool2d(1)``, ``Linear(64, 10)``.

Between them sits the part that differs:

* CNN, one residual block ``x + ReLU(GN(conv(ReLU(GN(conv(x))))))`` (convolutions
  3x3 without bias);
* ODENet, ``z(0) = x``, ``dz/dt = f(t, z) = ReLU(GN(cconv(t, ReLU(GN(cconv(t, z))))))``
  with ``cconv`` a :class:`~dyndl_lite.models.blocks.ConcatConv2d` (3x3, with bias),
  integrated on ``[0, 1]`` by fixed-step Euler with step 0.1 (ten steps).

With one input channel (MNIST, 1x28x28) the CNN has 141,130 parameters and the
ODENet 142,410, Yan et al.'s counts. With three input channels (SVHN, ImgNet10 at
3x32x32) the only change is the first convolution: 142,282 and 143,562 parameters.
Yan et al. do not publish their SVHN / ImgNet10 architectures; this 3-channel
variant is the book's own choice, keeping the same design and the same 1,280
parameter gap.

**TisODE** (``build("tisode")``), the paper's own proposal.

Yan et al.'s *time-invariant steady-state ODE* keeps features and head and changes two things:

1. the vector field ignores time: ``f(z) = ReLU(GN(conv(ReLU(GN(conv(z))))))`` with plain
   ``Conv2d(64, 64, 3, 1, 1, bias=False)`` (:class:`YanTimeInvariantFunc`), so that the flow
   has the semigroup property ``phi_s(phi_t(x)) = phi_{s+t}(x)``;
2. a steady-state regulariser is added to the training loss,

   .. math::  L = \\mathrm{CE} + w_{steady}\\, L_{ss}, \\qquad
              L_{ss} = \\operatorname{mean}_i \\int_T^{2T} |f(z(t))_i|\\, dt,

   the mean running over the batch and every feature (channel, pixel), the integral computed
   by Euler from ``z(T)`` (:func:`steady_state_penalty`). ``L_ss = 0`` exactly when ``z(T)``
   is a steady state, ``f(z(T)) = 0``, and then ``z(T + s) = z(T)`` for every ``s >= 0``.

Every choice, with its source (authors' code: repository HanshuYAN/TisODE, ``mnist/networks.py``,
``mnist/options.py``, ``mnist/main_tisode_gaus.py``, ``torchdiffeq/_impl/solvers.py`` and the
training log ``checkpoints/MNIST_tisode_gaus_1/train_result.txt``):

* prediction from ``z(T)``, ``T = 1``, fixed-step Euler with step 0.1 (:data:`TISODE_STEP`), as
  the ODENet above, so that the two networks differ only in the field and the regulariser.
  **Difference:** the authors' released TisODE log trained with step 0.05;
* regulariser interval ``[T, 2T]`` (:data:`STEADY_SPAN` ``= T``), Euler with the same step
  (ten more evaluations of ``f`` per training step), the interval of the paper's definition of
  the regulariser. **Difference:** the authors' log ran the time grid
  ``(0, 0.9, 1.0, 1.5)``: prediction from ``z(1.0)`` and the integral of ``|f|`` from ``z(0.9)`` to
  ``1.5``, so their term also covers the last tenth of the prediction interval;
* their custom solver ``euler_abs`` steps the state with Euler and accumulates
  ``z(t0) + sum_k h |f(z_k)|``; the L1 loss of that minus ``z(t0)`` is ``mean sum_k h |f(z_k)|``,
  which is what :func:`steady_state_penalty` computes. Because this field ends in a ReLU,
  ``f >= 0`` and ``|f| = f``, so here the term also equals ``mean |z(2T) - z(T)|`` of the Euler
  solution; for a field of either sign (the 2-D toy of :mod:`dyndl_lite.steady`) ``|f|`` is the
  right integrand: it vanishes only at a steady state, ``|z(2T) - z(T)|`` also on a cycle;
* weight ``w_steady = 0.01`` (:data:`W_STEADY`), switched on from 0-based epoch
  ``epoch_steady = 5`` (:data:`EPOCH_STEADY`) of the paper's 100 (``options.py``); before that
  :meth:`TisODE.extra_loss` is zero (the term is still computed, as in the authors' code).
  **Compressed runs** (the reproduction plan trains 10 instead of 100 epochs): the switch-on
  epoch is scaled like the learning-rate milestones (:meth:`~dyndl_lite.recipe.Recipe.compressed`),
  ``max(1, round(5 * epochs / 100))`` (:func:`steady_epoch`; 1 for 10 epochs). Reason: the
  authors' regulariser is on from 5 % of training, before the first learning-rate drop (epoch 30),
  so it trains at the full rate for 25 epochs; kept at 5 in a 10-epoch run (milestones 3, 6, 9)
  it would start after two drops, at 1/25 of the rate, and could hardly shape the flow. At least
  one epoch of warm-up stays, as in theirs (so a one-epoch run never switches it on). Build with
  ``epochs=`` (or call :meth:`TisODE.schedule`) to apply it; the default is the paper's 100 epochs;
* in eval mode the second integration is skipped (the authors compute it and discard it): the
  prediction is the same, at half the cost;
* optimiser, schedule and the Gaussian-trained variant's noise are the ODENet's (the recipe does
  not depend on the model);
* parameters: 141,130 on MNIST, the CNN's count, because the field has the residual block's two
  bias-free convolutions and two GroupNorms. The authors' training log prints the same
  ("Number of parameters: 141130", :data:`AUTHORS_LOG_PARAMETERS`); a count printed in the paper
  itself is not known to us.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dyndl_lite.models.blocks import ConcatConv2d, ODEBlock, group_norm
from dyndl_lite.solvers import FLOAT64_STEP_SLACK, VectorField, step_count

WIDTH = 64
PAPER_PARAMETERS = {"cnn": 141_130, "odenet": 142_410}  # MNIST, Yan et al. (2020)
#: TisODE on MNIST as printed by the authors' training log (HanshuYAN/TisODE,
#: checkpoints/MNIST_tisode_gaus_1/train_result.txt); the paper's own count is not known to us.
AUTHORS_LOG_PARAMETERS = {"tisode": 141_130}

# TisODE: every constant in one place (sources and differences in the module docstring).
T_END = 1.0  # prediction from z(T)
TISODE_STEP = 0.1  # Euler step of both integrations (the authors' log: 0.05)
STEADY_SPAN = T_END  # regulariser on [T, T + span] = [T, 2T]
W_STEADY = 0.01  # weight of L_ss (options.py)
EPOCH_STEADY = 5  # 0-based epoch from which L_ss is in the loss (options.py) ...
PAPER_EPOCHS = 100  # ... of the paper's 100 epochs


def _check_channels(in_channels: int) -> None:
    if in_channels not in (1, 3):
        raise ValueError(
            f"in_channels must be 1 (MNIST) or 3 (SVHN, ImgNet10), got {in_channels!r}."
        )


def yan_features(in_channels: int = 1) -> nn.Sequential:
    """Shared downsampling: ``c x H x W -> 64 x (H-2)/2 x (W-2)/2`` (13x13 for MNIST, 15x15 for
    32x32)."""
    _check_channels(in_channels)
    return nn.Sequential(
        nn.Conv2d(in_channels, WIDTH, 3, 1),
        group_norm(WIDTH),
        nn.ReLU(inplace=True),
        nn.Conv2d(WIDTH, WIDTH, 4, 2, 1),
        group_norm(WIDTH),
        nn.ReLU(inplace=True),
    )


def yan_head(classes: int = 10) -> nn.Sequential:
    """Shared head: global average pooling then ``Linear(64, classes)``."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, classes))


class YanResidualBlock(nn.Module):
    """``x + ReLU(GN(conv3x3(ReLU(GN(conv3x3(x))))))``, convolutions without bias."""

    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.norm1 = group_norm(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.norm2 = group_norm(width)

    def branch(self, x: Tensor) -> Tensor:
        """The residual branch ``ReLU(GN(conv3x3(ReLU(GN(conv3x3(x))))))``."""
        return torch.relu(self.norm2(self.conv2(torch.relu(self.norm1(self.conv1(x))))))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


class YanODEFunc(nn.Module):
    """The vector field ``f(t, z) = ReLU(GN(cconv(t, ReLU(GN(cconv(t, z))))))``."""

    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.conv1 = ConcatConv2d(width, width, 3, 1, 1)
        self.norm1 = group_norm(width)
        self.conv2 = ConcatConv2d(width, width, 3, 1, 1)
        self.norm2 = group_norm(width)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        out = torch.relu(self.norm1(self.conv1(t, z)))
        return torch.relu(self.norm2(self.conv2(t, out)))


class YanNet(nn.Module):
    """features -> feature block (residual block or ODE block) -> head."""

    def __init__(self, block: nn.Module, in_channels: int = 1, classes: int = 10):
        super().__init__()
        self.features = yan_features(in_channels)
        self.block = block
        self.head = yan_head(classes)

    def final_state(self, x: Tensor) -> Tensor:
        """The feature block's output (for an ODE block ``z(T)``), shape ``(N, 64, h, w)``."""
        if x.ndim != 4 or x.shape[1] != self.features[0].in_channels:
            raise ValueError(
                f"expected images of shape (N, {self.features[0].in_channels}, H, W), "
                f"got {tuple(x.shape)}."
            )
        return self.block(self.features(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.final_state(x))


def yan_cnn(in_channels: int = 1, classes: int = 10) -> YanNet:
    """Yan et al.'s CNN: one residual block (141,130 parameters on MNIST)."""
    return YanNet(YanResidualBlock(), in_channels, classes)


def yan_odenet(in_channels: int = 1, classes: int = 10, step_size: float = 0.1) -> YanNet:
    """Yan et al.'s ODENet: Euler with ``step_size`` on ``[0, 1]`` (142,410 parameters on MNIST)."""
    block = ODEBlock(YanODEFunc(), t1=1.0, method="euler", step_size=step_size)
    return YanNet(block, in_channels, classes)


# --------------------------------------------------------------------------- TisODE


class YanTimeInvariantFunc(YanResidualBlock):
    """The TisODE field ``f(t, z) = ReLU(GN(conv(ReLU(GN(conv(z))))))``: it never reads ``t``.

    ``conv`` is ``Conv2d(64, 64, 3, 1, 1, bias=False)``: the field is exactly the residual branch
    of the CNN's block (:class:`YanResidualBlock`), so the CNN is one Euler step of size 1 of it.
    The signature keeps ``t`` so that solvers can call it like any other field.
    """

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.branch(z)


def _positive(value: float, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return float(value)


def steady_state_penalty(
    func: VectorField,
    z: Tensor,
    t0: float = T_END,
    span: float = STEADY_SPAN,
    step_size: float = TISODE_STEP,
) -> Tensor:
    """``L_ss = mean_i sum_k h |f(s_k, z_k)_i|``, Euler's value of
    ``mean_i int_{t0}^{t0+span} |f(z(s))_i| ds``.

    From ``z_0 = z`` (the state at ``t0``), ``z_{k+1} = z_k + h f(s_k, z_k)`` with
    ``s_k = t0 + k h`` and ``n = ceil(span / step_size)`` equal steps ``h = span / n`` (up to a
    relative slack of 1e-9 for rounding: :func:`dyndl_lite.solvers.step_count`); the mean
    runs over every entry (batch and features), as ``nn.L1Loss`` does. The value is ``0``
    exactly when ``f(t0, z) = 0`` entrywise (then every ``z_k = z``) and positive otherwise
    (the first term alone is). Differentiable in ``z`` and in the field's parameters.
    """
    if not isinstance(z, Tensor) or not z.is_floating_point():
        raise TypeError(f"z must be a floating torch tensor, got {type(z).__name__}.")
    if z.numel() == 0:
        raise ValueError("z is empty; the penalty needs at least one state.")
    if not torch.isfinite(z).all():
        raise ValueError(
            "z contains NaN or Inf; the steady-state penalty of a non-finite state is undefined."
        )
    t0 = float(t0)
    if not math.isfinite(t0):
        raise ValueError(f"t0 must be finite, got {t0!r}.")
    span, step_size = _positive(span, "span"), _positive(step_size, "step_size")
    n = step_count(span, step_size, FLOAT64_STEP_SLACK)
    h = span / n
    total = torch.zeros_like(z)
    for k in range(n):
        v = func(torch.tensor(t0 + k * h, dtype=z.dtype, device=z.device), z)
        total = total + v.abs()
        z = z + h * v
    return h * total.mean()


def steady_epoch(
    epochs: int = PAPER_EPOCHS, full_epochs: int = PAPER_EPOCHS, epoch_steady: int = EPOCH_STEADY
) -> int:
    """The 0-based epoch from which a run of ``epochs`` epochs adds ``L_ss``.

    ``epoch_steady`` of the paper's ``full_epochs`` scaled like the learning-rate milestones:
    ``max(1, round(epoch_steady * epochs / full_epochs))`` (5 for 100 epochs, 1 for 10).
    """
    for value, name in ((epochs, "epochs"), (full_epochs, "full_epochs")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if isinstance(epoch_steady, bool) or not isinstance(epoch_steady, int) or epoch_steady < 0:
        raise ValueError(f"epoch_steady must be a non-negative integer, got {epoch_steady!r}.")
    if epochs == full_epochs:
        return epoch_steady
    return max(1, round(epoch_steady * epochs / full_epochs))


class TisODE(YanNet):
    """Yan et al.'s TisODE: features, ``z(T)`` of the time-invariant field by Euler, head;
    ``L_ss`` in training.

    In training mode the forward pass also computes :func:`steady_state_penalty` from ``z(T)``
    over ``[T, T + span]`` and keeps it in ``steady_term``; :meth:`extra_loss` (called by
    :func:`dyndl_lite.train.fit` after each forward pass) returns ``w_steady * steady_term`` from
    epoch ``epoch_steady`` on and zero before. In eval mode the second integration is skipped and
    ``steady_term`` is ``None``. See the module docstring for every choice.
    """

    def __init__(
        self,
        in_channels: int = 1,
        classes: int = 10,
        t1: float = T_END,
        step_size: float = TISODE_STEP,
        span: float = STEADY_SPAN,
        w_steady: float = W_STEADY,
        epoch_steady: int = EPOCH_STEADY,
    ):
        step_size, span, t1 = (
            _positive(step_size, "step_size"),
            _positive(span, "span"),
            _positive(t1, "t1"),
        )
        if (
            isinstance(w_steady, bool)
            or not isinstance(w_steady, (int, float))
            or not math.isfinite(w_steady)
            or w_steady < 0
        ):
            raise ValueError(f"w_steady must be a non-negative finite number, got {w_steady!r}.")
        steady_epoch(epoch_steady=epoch_steady)  # validates it
        super().__init__(
            ODEBlock(YanTimeInvariantFunc(), t1=t1, method="euler", step_size=step_size),
            in_channels,
            classes,
        )
        self.span, self.w_steady, self.epoch_steady = span, float(w_steady), epoch_steady
        self.steady_term: Tensor | None = None

    def extra_repr(self) -> str:
        return (
            f"steady interval=[{self.block.t1:g}, {self.block.t1 + self.span:g}], "
            f"w_steady={self.w_steady:g}, "
            f"epoch_steady={self.epoch_steady}"
        )

    def schedule(self, epochs: int, full_epochs: int = PAPER_EPOCHS) -> TisODE:
        """Set ``epoch_steady`` for a run of ``epochs`` epochs (:func:`steady_epoch`); returns
        ``self``."""
        self.epoch_steady = steady_epoch(epochs, full_epochs)
        return self

    @property
    def field(self) -> YanTimeInvariantFunc:
        """The vector field ``f`` (without the evaluation counter)."""
        return self.block.field.func

    def forward(self, x: Tensor) -> Tensor:
        z = self.final_state(x)
        self.steady_term = (
            steady_state_penalty(self.field, z, self.block.t1, self.span, self.block.step_size)
            if self.training
            else None
        )
        return self.head(z)

    def extra_loss(self, epoch: int) -> Tensor:
        """``w_steady * L_ss`` of the last training forward pass when ``epoch >= epoch_steady``,
        else ``0``."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer (0-based), got {epoch!r}.")
        if epoch < self.epoch_steady:
            return torch.zeros((), device=self.head[-1].weight.device)
        if self.steady_term is None:
            raise RuntimeError(
                "extra_loss needs the steady-state term of a forward pass in training mode; "
                "call model.train() and model(x) first."
            )
        return self.w_steady * self.steady_term


def yan_tisode(in_channels: int = 1, classes: int = 10, epochs: int | None = None) -> TisODE:
    """Yan et al.'s TisODE (141,130 parameters on MNIST); ``epochs``: the run's length, for
    :func:`steady_epoch`."""
    net = TisODE(in_channels, classes)
    return net.schedule(epochs) if epochs is not None else net


YAN_MODELS = {"cnn": yan_cnn, "odenet": yan_odenet, "tisode": yan_tisode}


def build(model: str, in_channels: int = 1, classes: int = 10, epochs: int | None = None) -> YanNet:
    """``build("cnn")``, ``build("odenet")`` or ``build("tisode")``: the model by name.

    ``epochs`` (the length of the run the network is built for) matters to the TisODE only, whose
    regulariser switches on at :func:`steady_epoch` ``(epochs)``; ``None`` means the paper's 100.
    """
    if model not in YAN_MODELS:
        raise ValueError(f"unknown Yan model {model!r}; use one of {', '.join(YAN_MODELS)}.")
    if model == "tisode":
        return yan_tisode(in_channels=in_channels, classes=classes, epochs=epochs)
    if epochs is not None:
        steady_epoch(epochs)  # validates it; the CNN and ODENet do not depend on it
    return YAN_MODELS[model](in_channels=in_channels, classes=classes)
