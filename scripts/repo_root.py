"""Imported first by every script: puts this checkout's root first on ``sys.path``.

``python scripts/x.py`` puts only ``scripts/`` on the path; with the root first, the script
imports this checkout's ``booktools`` (the tooling, not installed) and ``dyndl_lite`` (not another
installed copy, whose shipped files a script could otherwise rewrite).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))
