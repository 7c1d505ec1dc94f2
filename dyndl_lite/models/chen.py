"""Chen et al.'s four MNIST models (Neural ODEs, NeurIPS 2018, Table 1).

All but the MLP share one layout, from torchdiffeq's ``examples/odenet_mnist.py``:

    downsampling (28x28 -> 6x6, 64 channels) -> feature block -> head

* downsampling ``"conv"``: ``Conv(1,64,3)``, GN, ReLU, ``Conv(64,64,4,2,1)``, GN, ReLU,
  ``Conv(64,64,4,2,1)``;
  ``"res"``: ``Conv(1,64,3)`` and two residual blocks of stride 2 with 1x1-conv shortcuts;
* feature block: ResNet: six residual blocks ``x + conv(relu(GN(conv(relu(GN(x))))))``;
  ODE-Net: ``z(1) = z(0) + int_0^1 f(t, z) dt`` with
  ``f = GN o ConcatConv o ReLU o GN o ConcatConv o ReLU o GN`` (dopri5, rtol = atol = 1e-3);
  RK-Net: the same ``f``, integrated by fixed-step RK4 and backpropagated through;
* head: GN, ReLU, global average pooling, ``Linear(64, 10)``.

The 1-layer MLP is ``784 -> 300 -> 10`` with ReLU; Chen et al. cite LeCun et al.
(1998) for it without giving the width. 300 hidden units give 238,510
parameters, consistent with their 0.24 M (our inference).
"""

from __future__ import annotations

from torch import nn

from dyndl_lite.models.blocks import ConcatConv2d, ODEBlock, count_parameters, group_norm

MODELS = ("mlp", "resnet", "rknet", "odenet")
#: Chen et al. (2018), Table 1: parameters (millions) and MNIST test error (%), as printed in the
#: paper.
PAPER_PARAMETERS_M = {"mlp": 0.24, "resnet": 0.60, "rknet": 0.22, "odenet": 0.22}
PAPER_TEST_ERROR_PERCENT = {"mlp": 1.60, "resnet": 0.41, "rknet": 0.47, "odenet": 0.42}
#: Our choice for the RK-Net (the paper does not state its step): classical RK4 with step 1/2,
#: i.e. two steps and 8 function evaluations over [0, 1].
RKNET_METHOD, RKNET_STEP = "rk4", 0.5
WIDTH = 64


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)


class ResBlock(nn.Module):
    """Pre-activation residual block ``x -> shortcut(x) + conv(relu(GN(conv(relu(GN(x))))))``."""

    def __init__(self, channels: int = WIDTH, stride: int = 1):
        super().__init__()
        self.norm1, self.norm2 = group_norm(channels), group_norm(channels)
        self.conv1, self.conv2 = conv3x3(channels, channels, stride), conv3x3(channels, channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Conv2d(channels, channels, 1, stride, bias=False) if stride != 1 else None
        )

    def forward(self, x):
        out = self.relu(self.norm1(x))
        shortcut = self.downsample(out) if self.downsample is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu(self.norm2(out)))
        return out + shortcut


class ChenField(nn.Module):
    """The ODE-Net's vector field
    ``f(t, z) = GN(ConcatConv(t, relu(GN(ConcatConv(t, relu(GN(z)))))))``."""

    def __init__(self, channels: int = WIDTH):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (
            group_norm(channels),
            group_norm(channels),
            group_norm(channels),
        )
        self.conv1, self.conv2 = ConcatConv2d(channels, channels), ConcatConv2d(channels, channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, t, z):
        out = self.conv1(t, self.relu(self.norm1(z)))
        out = self.conv2(t, self.relu(self.norm2(out)))
        return self.norm3(out)


def downsampling(kind: str) -> nn.Sequential:
    """28x28x1 -> 6x6x64, by strided convolutions (``"conv"``) or residual blocks (``"res"``)."""
    if kind == "conv":
        return nn.Sequential(
            nn.Conv2d(1, WIDTH, 3, 1),
            group_norm(WIDTH),
            nn.ReLU(inplace=True),
            nn.Conv2d(WIDTH, WIDTH, 4, 2, 1),
            group_norm(WIDTH),
            nn.ReLU(inplace=True),
            nn.Conv2d(WIDTH, WIDTH, 4, 2, 1),
        )
    if kind == "res":
        return nn.Sequential(
            nn.Conv2d(1, WIDTH, 3, 1), ResBlock(WIDTH, stride=2), ResBlock(WIDTH, stride=2)
        )
    raise ValueError(f"downsampling must be 'conv' or 'res', got {kind!r}.")


def head() -> nn.Sequential:
    return nn.Sequential(
        group_norm(WIDTH),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(WIDTH, 10),
    )


class ChenNet(nn.Sequential):
    """``head(feature(downsampling(x)))``; ``self.feature`` is the residual stack or the ODE
    block."""

    def __init__(self, feature: nn.Module, downsampling_kind: str):
        super().__init__()
        self.downsampling = downsampling(downsampling_kind)
        self.feature = feature
        self.head = head()


def mlp(hidden: int = 300) -> nn.Sequential:
    """The 1-layer MLP ``784 -> hidden -> 10`` (ReLU)."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 10)
    )


def resnet(downsampling_kind: str = "res", blocks: int = 6) -> ChenNet:
    """Chen et al.'s ResNet: six residual blocks; residual downsampling gives 601,482 parameters
    (0.60 M)."""
    return ChenNet(nn.Sequential(*[ResBlock() for _ in range(blocks)]), downsampling_kind)


def odenet(
    downsampling_kind: str = "conv",
    method: str = "dopri5",
    rtol: float = 1e-3,
    atol: float = 1e-3,
    adjoint: bool = False,
    step_size: float | None = None,
) -> ChenNet:
    """Chen et al.'s ODE-Net: one ODE block over ``[0, 1]`` (dopri5, rtol = atol = 1e-3);
    208,266 parameters."""
    return ChenNet(
        ODEBlock(
            ChenField(),
            t1=1.0,
            method=method,
            rtol=rtol,
            atol=atol,
            step_size=step_size,
            adjoint=adjoint,
        ),
        downsampling_kind,
    )


def rknet(
    downsampling_kind: str = "conv", method: str = RKNET_METHOD, step_size: float = RKNET_STEP
) -> ChenNet:
    """The RK-Net: the ODE-Net's field integrated by a fixed-step Runge-Kutta method,
    backpropagated through."""
    from dyndl_lite.models.blocks import FIXED_STEP

    if method not in FIXED_STEP:
        raise ValueError(
            f"The RK-Net uses a fixed-step method, one of {FIXED_STEP}; "
            f"got {method!r} (use odenet for adaptive)."
        )
    return odenet(downsampling_kind, method=method, step_size=step_size)


def chen_model(name: str, **options) -> nn.Module:
    """One of Chen et al.'s models by name: ``"mlp"``, ``"resnet"``, ``"rknet"`` or ``"odenet"``."""
    builders = {"mlp": mlp, "resnet": resnet, "rknet": rknet, "odenet": odenet}
    if name not in builders:
        raise ValueError(f"Unknown Chen et al. model {name!r}; choose one of {MODELS}.")
    return builders[name](**options)


def parameter_table() -> list[tuple[str, int, float]]:
    """``(model, our parameter count, paper's count in millions)`` for the four models."""
    return [(name, count_parameters(chen_model(name)), PAPER_PARAMETERS_M[name]) for name in MODELS]
