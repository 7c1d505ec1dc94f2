"""Maintenance tools of the book's repository: the logic behind ``scripts/``, ``bench/`` and the
tests.

Not part of the package: ``dyndl_lite`` (the wheel) never imports it, and it is not installed. It
works on a checkout of the repository, imported from the repository root (``python -m pytest``,
``python -m bench.X`` and ``scripts/`` put the root on ``sys.path``), and needs the ``[book]``
extra (nbformat, PyYAML, BeautifulSoup, pypdf) and, to print the PDF, the ``[test]`` one (Selenium):

* :mod:`~booktools.layout`: where the repository is, and what ``_config.yml`` and
  ``_toc.yml`` say (the repository URL, the Colab pin, the chapters in book order);
* :mod:`~booktools.normalize`: a notebook's committed form (Colab setup cell, no outputs);
* :mod:`~booktools.student`: student versions of the notebooks (solutions removed);
* :mod:`~booktools.downloads`: readers' downloads (notebook archives, the book as one PDF);
* :mod:`~booktools.performance`: the Performance appendix, rendered from ``bench/results/``;
* :mod:`~booktools.runtimes`: the chapters' "Running time" cells;
* :mod:`~booktools.figure_check`: the figure check as an IPython extension for executing kernels.

The command-line wrappers are in ``scripts/``; the tests import these modules directly.
"""
