"""Drop from the shipped chapter-10 (``gai-*``) records what no chapter or package function reads.

Usage::

    python scripts/slim_gai_records.py            # rewrite dyndl_lite/checkpoints/gai-*.json
    python scripts/slim_gai_records.py --check    # exit 1 if a record would change

Dropped (each with the reader search that justified it, issue 29):

* ``history.extra``: the per-epoch measurements of the training callback. ``snapshot_tracks``
  holds the raw tracks that ``snapshots.tracks_pca_2d`` already projects (the chapter reads the
  projection); ``dynamics`` is a copy of the record's top-level ``dynamics``. Both are checked
  before they go: the projection of the raw tracks on the record's basis must equal
  ``tracks_pca_2d`` (to its rounding), and the two ``dynamics`` must agree.
* ``history.step_loss``, ``history.step_nfe_forward``, ``history.step_nfe_backward``: per-step
  curves that only chapter 4 reads, from the Chen et al. records; in these records the NFE arrays
  are all zeros (the networks have no ODE solver).

Weights are untouched, so every record's ``weights_sha256`` stays valid; no hash covers a record.
The rewrite is deterministic (the same input gives the same bytes) and atomic (a temporary file
renamed over the record), written by ``dump_record`` (lists of numbers on one line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import repo_root  # noqa: F401  (this checkout's root first on sys.path)

from dyndl_lite import atomic, pretrained
from dyndl_lite.geodesic import fixed_basis_pca
from dyndl_lite.pretrained import SHIPPED_DIR, STEP_CURVES, dump_record

DROPPED_HISTORY = ("extra", *STEP_CURVES)


def check_droppable(record: dict, name: str) -> None:
    """Raise ``ValueError`` unless what :func:`slim` drops is derived from what it keeps."""
    extra = record["history"].get("extra", {})
    if "dynamics" in extra:
        kept = {k: v for k, v in record["dynamics"].items() if k in extra["dynamics"]}
        if kept != extra["dynamics"]:
            raise ValueError(f"{name}: history.extra.dynamics differs from dynamics")
    if "snapshot_tracks" in extra:
        raw = {e: np.asarray(t, np.float64) for e, t in extra["snapshot_tracks"].items()}
        reference = max(raw, key=int)
        projected = fixed_basis_pca(raw, reference)
        shipped = record["snapshots"]["tracks_pca_2d"]
        if set(projected) != set(shipped):
            raise ValueError(f"{name}: snapshot epochs differ from tracks_pca_2d's")
        for epoch, picture in projected.items():
            if not np.allclose(picture, shipped[epoch], atol=1e-4 * 0.5 + 1e-9):
                raise ValueError(f"{name}: raw tracks of epoch {epoch} project elsewhere")


def slim(record: dict) -> dict:
    """A copy of ``record`` without the history entries of :data:`DROPPED_HISTORY`."""
    history = {k: v for k, v in record["history"].items() if k not in DROPPED_HISTORY}
    return {**record, "history": history}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=SHIPPED_DIR, help="checkpoint folder")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args()
    # the training record beside each gai checkpoint (not its evaluation record)
    paths = [
        pretrained.paths(w.stem, args.folder)[1]
        for w in sorted(args.folder.glob("gai-*.safetensors"))
    ]
    if not paths:
        parser.error(f"no gai-*.json records in {args.folder}")
    stale = []
    for path in paths:
        before = path.read_text()
        record = json.loads(before)
        check_droppable(record, path.name)
        after = dump_record(slim(record))
        if after == before:
            continue
        stale.append(path.name)
        if not args.check:
            atomic.write_text(path, after)
            print(f"{path.name}: {len(before):,} -> {len(after):,} bytes")
    if args.check and stale:
        print("records to slim (run scripts/slim_gai_records.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
