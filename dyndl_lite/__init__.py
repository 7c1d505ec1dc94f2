"""dyndl_lite: the helper package of the book "Dynamic View of Deep Learning".

One module per idea; import what a chapter needs, for example
``from dyndl_lite.solvers import odeint``.
"""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("DYNDL_CHECK_FIGURES", "").strip() not in ("", "0"):  # see dyndl_lite.plotting
    from dyndl_lite.plotting import figure_check_requested as _requested
    from dyndl_lite.plotting import install_figure_check as _install

    if _requested():
        _install()
