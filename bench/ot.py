"""Time of the exact discrete OT map (an assignment problem) for m = 500 ... 10,000 points.

Usage: ``python bench/ot.py``. Not run in CI. For each m it times
``dyndl_lite.transport.ot_map`` with SciPy's ``linear_sum_assignment``
(cost matrix included) and POT's ``ot.emd`` (up to ``POT_MAX`` points: the
network simplex on m^2 variables is slow beyond that), on two kinds of
clouds in R^32:

* ``random``: two independent Gaussian clouds (the hard case for assignment);
* ``near-identity``: y = x + small noise, the situation of OTS for a network
  whose last layer stays close to its first;

and, when chapter 10's checkpoint ``gai-resnet-wd5e-4-seed0`` is shipped, the
OTS of that network on the full 10,000-image MNIST test set (exact; goal:
under 60 s). Results go to ``bench/results/ot.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import importlib.util

HERE = Path(__file__).resolve().parent
# this file is called ot.py: keep its folder off the path so that ``import ot`` finds POT, not this script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
_spec = importlib.util.spec_from_file_location("bench_common", HERE / "common.py")
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
save = _common.save

from dyndl_lite.transport import ot_map  # noqa: E402

SIZES = (500, 1000, 2000, 5000, 10_000)
POT_MAX = 2000
DIM = 32


def timed(function, *args, **kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    import ot  # noqa: F401  (imported once, outside the timings)

    rng = np.random.default_rng(0)
    rows = []
    for m in SIZES:
        x = rng.normal(size=(m, DIM))
        for kind, y in (("random", rng.normal(size=(m, DIM))), ("near-identity", x + 0.3 * rng.normal(size=(m, DIM)))):
            perm, scipy_s = timed(ot_map, x, y, solver="scipy")
            row = {"m": m, "clouds": kind, "scipy_s": round(scipy_s, 3), "fixed_points": float(np.mean(perm == np.arange(m)))}
            if m <= POT_MAX:
                perm_pot, pot_s = timed(ot_map, x, y, solver="pot")
                row.update(pot_s=round(pot_s, 3), same_permutation=bool(np.array_equal(perm, perm_pot)))
            rows.append(row)
            print(row, flush=True)
    results = {"dimension": DIM, "rows": rows}
    try:
        from dyndl_lite.data import load_mnist
        from dyndl_lite.experiments_geodesic import load_one
        from dyndl_lite.geodesic import ots, tracks

        model, _ = load_one(True, 5e-4)
        test = load_mnist("test")
        track, track_s = timed(tracks, model, test.images)
        score, ots_s = timed(ots, track[0], track[-1])
        results["mnist_ots"] = {"checkpoint": "gai-resnet-wd5e-4-seed0", "data": test.name, "ots": score,
                                "tracks_s": round(track_s, 2), "ots_s": round(ots_s, 2)}
        print(results["mnist_ots"], flush=True)
    except (FileNotFoundError, ImportError) as error:
        print(f"MNIST OTS skipped: {error}")
    print("written", save("ot", results))


if __name__ == "__main__":
    main()
