"""Yan et al.'s matched pair for the robustness study: a one-block CNN and an ODENet.

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
"""

from __future__ import annotations

import torch
from torch import nn

from dyndl_lite.models.blocks import ConcatConv2d, ODEBlock, group_norm

Tensor = torch.Tensor

WIDTH = 64
PAPER_PARAMETERS = {"cnn": 141_130, "odenet": 142_410}  # MNIST, Yan et al. (2020)


def _check_channels(in_channels: int) -> None:
    if in_channels not in (1, 3):
        raise ValueError(
            f"in_channels must be 1 (MNIST) or 3 (SVHN, ImgNet10), got {in_channels!r}."
        )


def yan_features(in_channels: int = 1) -> nn.Sequential:
    """Shared downsampling: ``c x H x W -> 64 x (H-2)/2 x (W-2)/2`` (13x13 for MNIST, 15x15 for 32x32)."""
    _check_channels(in_channels)
    return nn.Sequential(
        nn.Conv2d(in_channels, WIDTH, 3, 1), group_norm(WIDTH), nn.ReLU(inplace=True),
        nn.Conv2d(WIDTH, WIDTH, 4, 2, 1), group_norm(WIDTH), nn.ReLU(inplace=True),
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

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = torch.relu(self.norm2(self.conv2(out)))
        return x + out


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

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.features[0].in_channels:
            raise ValueError(
                f"expected images of shape (N, {self.features[0].in_channels}, H, W), got {tuple(x.shape)}."
            )
        return self.head(self.block(self.features(x)))


def yan_cnn(in_channels: int = 1, classes: int = 10) -> YanNet:
    """Yan et al.'s CNN: one residual block (141,130 parameters on MNIST)."""
    return YanNet(YanResidualBlock(), in_channels, classes)


def yan_odenet(in_channels: int = 1, classes: int = 10, step_size: float = 0.1) -> YanNet:
    """Yan et al.'s ODENet: Euler with ``step_size`` on ``[0, 1]`` (142,410 parameters on MNIST)."""
    block = ODEBlock(YanODEFunc(), t1=1.0, method="euler", step_size=step_size)
    return YanNet(block, in_channels, classes)


YAN_MODELS = {"cnn": yan_cnn, "odenet": yan_odenet}


def build(model: str, in_channels: int = 1, classes: int = 10) -> YanNet:
    """``build("cnn")`` or ``build("odenet")``: the model by name."""
    if model not in YAN_MODELS:
        raise ValueError(f"unknown Yan model {model!r}; use one of {', '.join(YAN_MODELS)}.")
    return YAN_MODELS[model](in_channels=in_channels, classes=classes)
