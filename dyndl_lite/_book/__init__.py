"""Maintenance tools of the book's repository: the logic behind ``scripts/`` and ``bench/``.

Not part of the readers' API (hence private, and absent from the API appendix). Each module works on
a checkout of the repository with the package installed from it (``pip install -e .``, as ``make``
does) and needs the ``[book]`` extra (nbformat, PyYAML, BeautifulSoup, Selenium for the PDF):

* :mod:`~dyndl_lite._book.layout`: where the repository is, and what ``_config.yml`` and
  ``_toc.yml`` say (the repository URL, the Colab pin, the chapters in book order);
* :mod:`~dyndl_lite._book.normalize`: a notebook's committed form (Colab setup cell, no outputs);
* :mod:`~dyndl_lite._book.student`: student versions of the notebooks (solutions removed);
* :mod:`~dyndl_lite._book.downloads`: readers' downloads (notebook archives, the book as one PDF);
* :mod:`~dyndl_lite._book.performance`: the Performance appendix, rendered from ``bench/results/``.

The command-line wrappers are in ``scripts/``; the tests import these modules directly.
"""
