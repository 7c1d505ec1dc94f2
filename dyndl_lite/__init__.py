"""dyndl_lite: the helper package of the book "Dynamic View of Deep Learning".

One module per idea; import what a chapter needs, for example
``from dyndl_lite.solvers import odeint``.
"""

__version__ = "0.1.0"  # the one place it is written: pyproject.toml reads it (dynamic version)
