"""Residual and plain networks of the same width and depth, with their tracks (Part II).

How tracks are formed (the one place the book defines it):

* an input ``x`` (an image flattened to 784 numbers, or a 2-D point) is
  mapped to ``x(0) = embed(x)`` in R^d by one linear layer (for 2-D data
  with ``width=2`` the embedding is the identity, so x(0) is the point
  itself);
* ``n`` blocks ``g_k(z) = W_k2 relu(W_k1 z + b_k1) + b_k2`` (hidden size
  ``hidden``) act in R^d: the residual network steps
  ``x(k+1) = x(k) + g_k(x(k))``, the plain one ``x(k+1) = relu(g_k(x(k)))``;
* a linear head maps ``x(n)`` to class scores.

The track of an input is ``x(0), x(1), ..., x(n)``: n+1 points of R^d, one
per block boundary. Pictures in 2-D project the stacked tracks of all shown
samples with one PCA fitted to all their layers together
(:func:`dyndl_lite.geodesic.pca_2d`).

The MNIST pair of chapter 10 uses ``MNIST_WIDTH`` and ``MNIST_DEPTH``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

MNIST_WIDTH = 32  # d: every representation x(k) of the MNIST networks lives in R^32
MNIST_HIDDEN = 64  # hidden size inside each block g_k
MNIST_DEPTH = 8  # n: number of blocks, so a track has n+1 = 9 points


class Block(nn.Module):
    """``g(z) = W2 relu(W1 z + b1) + b2``: R^d -> R^d with ``hidden`` units in between."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.inner = nn.Linear(width, hidden)
        self.outer = nn.Linear(hidden, width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.outer(torch.relu(self.inner(z)))


def he_init(model: nn.Module) -> None:
    """He (Kaiming-normal, relu gain) weights and zero biases for every linear layer, as He et al.
    use for plain nets.

    The plain network needs it: with PyTorch's default initialisation the signal shrinks through
    its 18 linear layers and SGD does not get it off the ground. The residual network keeps
    PyTorch's default, under which its identity path already carries the signal (He init in both
    branch layers would triple the variance per block).
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)


class TrackNet(nn.Module):
    """A fixed-width MLP ``x(0) = embed(x)``, n blocks in R^d, linear head; ``residual`` picks the
    block rule.

    ``residual=True``: ``x(k+1) = x(k) + g_k(x(k))`` (a forward-Euler step of
    ``dx/dt = v(x, t)`` with step 1), PyTorch's default initialisation;
    ``residual=False``: ``x(k+1) = relu(g_k(x(k)))``, the same parameters without
    the skip connection, He initialisation (:func:`he_init`).
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        depth: int,
        hidden: int,
        num_classes: int,
        residual: bool = True,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1 block, got {depth}.")
        self.residual = residual
        self.in_features = in_features
        self.embed = nn.Identity() if in_features == width else nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(Block(width, hidden) for _ in range(depth))
        self.head = nn.Linear(width, num_classes)
        if not residual:
            he_init(self)

    def _step(self, block: Block, z: torch.Tensor) -> torch.Tensor:
        return z + block(z) if self.residual else torch.relu(block(z))

    def track(self, x: torch.Tensor) -> torch.Tensor:
        """Representations ``x(0), ..., x(n)``, shape (n+1, m, d)."""
        z = self.embed(x.flatten(1))
        layers = [z]
        for block in self.blocks:
            z = self._step(block, z)
            layers.append(z)
        return torch.stack(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(x.flatten(1))
        for block in self.blocks:
            z = self._step(block, z)
        return self.head(z)


def mnist_tracknet(residual: bool = True) -> TrackNet:
    """The MNIST network of chapter 10: 784 -> R^32, 8 blocks (hidden 64), 10 classes."""
    return TrackNet(28 * 28, MNIST_WIDTH, MNIST_DEPTH, MNIST_HIDDEN, 10, residual=residual)


def toy_resnet(depth: int = 10, hidden: int = 16, num_classes: int = 2) -> TrackNet:
    """A residual MLP acting in the plane (width 2, x(0) = the point): chapters 7 and 9."""
    return TrackNet(2, 2, depth, hidden, num_classes, residual=True)


def weight_norm_sum(model: TrackNet) -> float:
    """``sum_k (||W_k1||_F^2 + ||W_k2||_F^2)`` over the blocks: the block weights' part of
    ``||theta||^2``, whose ``gamma / 2`` multiple is their share of the weight-decay penalty (SGD's
    ``weight_decay`` gamma penalises ``(gamma / 2) ||theta||^2`` over all parameters, embedding,
    head and biases included)."""
    with torch.no_grad():
        return float(
            sum((b.inner.weight**2).sum() + (b.outer.weight**2).sum() for b in model.blocks)
        )


def block_bounds(model: TrackNet) -> dict[str, np.ndarray]:
    """Constants of each block ``g_k(z) = W_k2 relu(W_k1 z + b_k1) + b_k2``, one entry per block.

    Since relu is 1-Lipschitz and ``relu(0) = 0``,
    ``||g_k(z) - g_k(w)|| <= lip_k ||z - w||`` and ``||g_k(z)|| <= lip_k ||z|| + bias_k`` with

    * ``lip``: ``||W_k2||_2 ||W_k1||_2`` (spectral norms);
    * ``frobenius``: ``(||W_k1||_F^2 + ||W_k2||_F^2) / 2 >= lip_k`` (``ab <= (a^2 + b^2)/2``,
      ``||W||_2 <= ||W||_F``), half the block's weight-decay penalty;
    * ``bias``: ``||W_k2||_2 ||b_k1|| + ||b_k2||``.
    """
    rows = {"lip": [], "frobenius": [], "bias": []}
    with torch.no_grad():
        for block in model.blocks:
            w1, w2 = block.inner.weight.double(), block.outer.weight.double()
            s1, s2 = torch.linalg.matrix_norm(w1, 2).item(), torch.linalg.matrix_norm(w2, 2).item()
            rows["lip"].append(s1 * s2)
            rows["frobenius"].append(0.5 * float((w1**2).sum() + (w2**2).sum()))
            rows["bias"].append(
                s2 * block.inner.bias.double().norm().item()
                + block.outer.bias.double().norm().item()
            )
    return {key: np.array(value) for key, value in rows.items()}
