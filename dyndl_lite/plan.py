"""A reproduction as a plan: an ordered list of runs that any number of interrupted sittings
completes.

A plan is a TOML file with one ``[[run]]`` table per training run::

    [[run]]
    experiment = "chen"      # an experiment of dyndl_lite.experiments (python -m dyndl_lite list)
    model = "resnet"
    seed = 0
    epochs = 15              # the paper's recipe compressed to this many epochs (optional)
    train_subset = 2000      # optional: train on this many of the 60,000 images

:func:`walk` goes through the runs in order: a finished run is skipped, a
partial one resumed, the next one started, until the plan is done, the time
budget is spent or the reader presses Ctrl-C; each completed epoch is saved, so
at most the current epoch is lost. :func:`ledger` says where each run stands.
The book's plan is :data:`BOOK_PLAN`; the papers' full recipes are ``plans/paper.toml``.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dyndl_lite import experiments, pretrained, records, runs
from dyndl_lite.train import TrainingStopped

PLANS = Path(__file__).resolve().parent / "plans"
#: The book's plan (the papers' recipes compressed to what a CPU finishes); ``PLANS / "paper.toml"``
#: runs the papers' full recipes.
BOOK_PLAN = PLANS / "book.toml"
KEYS = {"experiment", "model", "seed", "epochs", "train_subset"}
#: the note on epochs of a state saved before per-epoch data were recorded (see :func:`walk`)
MIGRATED = "at migration: reproduce refuses the fallback"


@dataclass(frozen=True)
class PlannedRun:
    """One line of a plan."""

    experiment: str
    model: str
    seed: int = 0
    epochs: int | None = None
    train_subset: int | None = None

    def resolve(self) -> runs.Run:
        return runs.resolve(
            experiments.get(self.experiment), self.model, self.seed, self.epochs, self.train_subset
        )


def read(path: str | Path | None = None) -> list[PlannedRun]:
    """The runs of the plan file ``path`` (default :data:`BOOK_PLAN`), each checked against the
    registry (a ``ValueError`` names a bad one)."""
    path = BOOK_PLAN if path is None else Path(path)
    if path.is_dir():
        raise ValueError(f"plan file {path} is a folder; name a .toml file such as {BOOK_PLAN}.")
    try:
        tables = tomllib.loads(path.read_text()).get("run", [])
    except FileNotFoundError:
        raise FileNotFoundError(
            f"plan file {path} does not exist; the book's plan is {BOOK_PLAN}."
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"plan file {path} is not valid TOML: {error}") from error
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ValueError(
            f"plan file {path}: 'run' must be a list of tables, each written [[run]] "
            f"(double brackets), got {type(tables).__name__} {tables!r:.60}."
        )
    if not tables:
        raise ValueError(f"plan file {path} has no [[run]] tables.")
    planned = []
    for number, table in enumerate(tables, start=1):
        unknown = set(table) - KEYS
        if unknown or not {"experiment", "model"} <= set(table):
            raise ValueError(
                f"plan file {path}, run {number}: needs 'experiment' and 'model' and may have "
                f"{sorted(KEYS)}; got {sorted(table)}."
            )
        run = PlannedRun(**table)
        try:
            for key in ("experiment", "model"):
                if not isinstance(table[key], str):
                    raise ValueError(f"{key} must be a name in quotes, got {table[key]!r}.")
            run.resolve()
        except (ValueError, TypeError) as error:
            raise ValueError(f"plan file {path}, run {number}: {error}") from error
        planned.append(run)
    names = [p.resolve().name for p in planned]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"plan file {path} lists {', '.join(duplicates)} more than once.")
    return planned


def ledger(planned: list[PlannedRun], out: str | Path) -> list[dict]:
    """Where each run stands: name, status (finished / partial / new), epochs done of planned,
    seconds per epoch.

    A run without a measured epoch time is estimated from another run of the same
    experiment and model in the plan that has one, else from the shipped checkpoint of
    that network (``estimated`` says so).
    """
    rows = []
    for item in planned:
        run = item.resolve()
        rows.append(
            {
                "name": run.name,
                "epochs": run.recipe.epochs,
                "key": (run.experiment.name, item.model),
                **runs.progress_of(run, out),
            }
        )
    measured = {r["key"]: r["seconds_per_epoch"] for r in rows if r["seconds_per_epoch"]}
    for row in rows:  # else the shipped checkpoint of the same network (an earlier, shorter run)
        if row["key"] not in measured and pretrained.exists(row["name"], pretrained.SHIPPED_DIR):
            seconds = pretrained.load_record(row["name"], pretrained.SHIPPED_DIR).get(
                "seconds_per_epoch"
            )
            if seconds:
                measured[row["key"]] = seconds
    for row in rows:
        row["estimated"] = not row["seconds_per_epoch"] and row["key"] in measured
        row["seconds_per_epoch"] = row["seconds_per_epoch"] or measured.get(row["key"])
        left = row["epochs"] - row["epochs_done"]
        row["seconds_left"] = (
            0.0
            if left == 0
            else (left * row["seconds_per_epoch"] if row["seconds_per_epoch"] else None)
        )
    return rows


def summary(rows: list[dict]) -> str:
    """``"3 of 18 runs done, 1 partial, 14 new; about 5.2 h left (2 runs not yet timed)"``."""
    done = sum(r["status"] == "finished" for r in rows)
    partial = sum(r["status"] == "partial" for r in rows)
    known = [r["seconds_left"] for r in rows if r["seconds_left"] is not None]
    untimed = sum(r["seconds_left"] is None for r in rows)
    text = f"{done} of {len(rows)} runs done, {partial} partial, {len(rows) - done - partial} new"
    text += f"; about {sum(known) / 3600:.1f} h left at the measured epoch times"
    return text + (
        f" ({untimed} run{'s' if untimed != 1 else ''} not yet timed)" if untimed else ""
    )


def format_ledger(rows: list[dict]) -> str:
    """The ledger as a fixed-width table for the terminal."""
    lines = [f"{'run':34s} {'status':9s} {'epochs':>9s} {'s/epoch':>9s} {'left':>8s}"]
    for r in rows:
        per = (
            "-"
            if not r["seconds_per_epoch"]
            else f"{r['seconds_per_epoch']:.0f}{'~' if r['estimated'] else ''}"
        )
        left = "?" if r["seconds_left"] is None else f"{r['seconds_left'] / 60:.0f} min"
        lines.append(
            f"{r['name']:34s} {r['status']:9s} {r['epochs_done']:>4d}/{r['epochs']:<4d} "
            f"{per:>9s} {left:>8s}"
        )
    lines.append(summary(rows))
    lines.append("(~: estimated from another run of the same model)")
    return "\n".join(lines)


def walk(
    planned: list[PlannedRun],
    out: str | Path,
    *,
    budget_s: float | None = None,
    device=None,
    ship: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> list[dict]:
    """Work through ``planned`` in order until it is done or ``budget_s`` seconds have passed;
    return the ledger.

    Finished runs are skipped, a partial one resumed. Every call trains at least one epoch;
    after that no epoch is started that the last one's duration says would end past the
    budget. With ``ship`` each run finished in ``out`` is moved into the package
    (:func:`dyndl_lite.pretrained.ship`) and its evaluation record measured there. A stopped
    run keeps its last completed epoch in ``out``; Ctrl-C propagates (losing only the epoch in
    progress). ``overwrite`` retrains a run whose checkpoint in ``out`` has another recipe (else
    ``FileExistsError`` says so). ``out`` must be a writable folder outside the package's own
    (:func:`dyndl_lite.runs.writable_folder`).

    A plan never trains on the offline fallback, so the epochs of a state saved before per-epoch
    data were recorded are recorded as official, with the note :data:`MIGRATED`, when their
    step count fits the official data.
    """
    out = runs.writable_folder(out)
    deadline = None if budget_s is None else time.monotonic() + budget_s
    trained = False
    for index, item in enumerate(planned):
        run = item.resolve()
        status = runs.progress_of(run, out)
        if status["status"] == "finished":
            if ship and status["where"] == str(out):
                _ship(run, out, say)
            continue
        if trained and deadline is not None and time.monotonic() > deadline:
            say(f"time budget reached before {run.name}")
            return ledger(planned, out)
        say(f"[run {index + 1}/{len(planned)}] {run.name}: {_starting(status, run)}; "
            f"{summary(ledger(planned, out))}")  # fmt: skip
        try:
            runs.train(
                run.experiment, item.model, item.seed, epochs=item.epochs,
                train_subset=item.train_subset, out=out, device=device, progress=progress,
                deadline=deadline, report=say, overwrite=overwrite, unrecorded=MIGRATED,
            )  # fmt: skip
        except TrainingStopped as stop:
            say(f"stopped: {stop}; the last completed epoch is saved in {out}")
            return ledger(planned, out)
        trained = True
        say(f"finished {run.name}")
        if ship:
            _ship(run, out, say)
    return ledger(planned, out)


def _starting(status: dict, run: runs.Run) -> str:
    """``"resuming after epoch 3 of 10"`` or ``"starting of 10"``."""
    if status["status"] == "partial":
        return f"resuming after epoch {status['epochs_done']} of {run.recipe.epochs}"
    return f"starting of {run.recipe.epochs}"


def _ship(run: runs.Run, out: Path, say: Callable[[str], None]) -> None:
    """Move ``run``'s finished checkpoint from ``out`` into the package, holding the run's lock,
    and measure its evaluation record there (:func:`dyndl_lite.records.evaluate`), which the
    chapters read."""
    with runs.run_lock(run, out):
        pretrained.ship(run.name, source=out, move=True)
    say(f"shipped {run.name}")
    records.evaluate(run.name, pretrained.SHIPPED_DIR, say=say)
