"""Network architectures of the book, one module per family.

* :mod:`dyndl_lite.models.blocks`: shared building blocks (``group_norm``,
  ``ConcatConv2d``, ``ODEBlock``).
"""

from dyndl_lite.models.blocks import ConcatConv2d, ODEBlock, count_parameters, group_norm

__all__ = ["ConcatConv2d", "ODEBlock", "count_parameters", "group_norm"]
