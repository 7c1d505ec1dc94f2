"""The benchmarks (not part of the tests): run them from the repository root, ``python -m bench.X``.

``python -m bench.run_all`` (``make bench``) runs every one, then regenerates the Performance
appendix; :mod:`bench.common` holds their shared helpers.
"""
