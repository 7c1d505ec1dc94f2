"""Network architectures of the book, one module per family.

* :mod:`dyndl_lite.models.blocks`: shared building blocks (``group_norm``,
  ``ConcatConv2d``, ``ODEBlock``).
* :mod:`dyndl_lite.models.chen`: Chen et al.'s four MNIST models (MLP, ResNet,
  RK-Net, ODE-Net), ``chen_model(name)``.
* :mod:`dyndl_lite.models.yan`, :mod:`dyndl_lite.models.residual`: Yan et al.'s
  robustness models and Part II's residual/plain track networks (import them
  from their modules).
"""

from dyndl_lite.models.blocks import ConcatConv2d, ODEBlock, count_parameters, group_norm
from dyndl_lite.models.chen import chen_model

__all__ = ["ConcatConv2d", "ODEBlock", "chen_model", "count_parameters", "group_norm"]
