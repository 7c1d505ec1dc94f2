"""\
Command line of dyndl_lite: train the book's networks, walk the reproduction plan, ship checkpoints.

    python -m dyndl_lite list
    python -m dyndl_lite train EXPERIMENT --model M [--seed S] [--epochs N] [--train-subset K]
        [--out DIR]
    python -m dyndl_lite reproduce [--plan FILE] [--budget-minutes M] [--out DIR] [--ship]
        [--overwrite] [--status]
    python -m dyndl_lite ship NAME [--from DIR] [--replace]
    python -m dyndl_lite evaluate NAME | --all-stale [--force] [--threads N]

Training writes to the user folder ($DYNDL_CHECKPOINTS, default <data cache>/checkpoints)
and resumes from the last completed epoch when run again; Ctrl-C loses at most the
current epoch. Bad arguments exit with status 2 and a message naming the argument.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import torch

from dyndl_lite import experiments, plan, pretrained, records, runs
from dyndl_lite.config import set_threads
from dyndl_lite.data import DatasetNotFoundError
from dyndl_lite.state import RunLocked
from dyndl_lite.train import TrainingDiverged, TrainingStopped


def _count(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be at least {minimum}, got {value}")
        return value

    return parse


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the budget must be a number of minutes, got {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"the budget must be a positive number of minutes, got {text!r}"
        )
    return value


def _device(text: str) -> str:
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"device {text!r} is not supported; use cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(
            f"device {text!r} was asked for but CUDA is not available here; use cpu"
        )
    return text


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=None,
        help="checkpoint folder (default: $DYNDL_CHECKPOINTS or <data cache>/checkpoints)",
    )
    parser.add_argument(
        "--device", type=_device, default=None, help="cpu or cuda (default: cuda when available)"
    )
    parser.add_argument(
        "--threads", type=_count(1, "--threads"), default=None, help="torch CPU threads"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _train_parser(commands) -> None:
    """The ``train`` command's arguments."""
    train = commands.add_parser(
        "train", help="train (or resume) one network and write its checkpoint"
    )
    train.add_argument("experiment")
    train.add_argument("--model", required=True)
    train.add_argument("--seed", type=_count(0, "--seed"), default=0)
    train.add_argument(
        "--epochs",
        type=_count(1, "--epochs"),
        default=None,
        help="the paper's recipe compressed to this many epochs (milestones scaled; recorded)",
    )
    train.add_argument(
        "--train-subset",
        type=_count(1, "--train-subset"),
        default=None,
        help="train on this many of the training images (recorded)",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished checkpoint of the same name in --out",
    )
    train.add_argument(
        "--allow-fallback",
        action="store_true",
        help=(
            "train on the offline fallback's 5,000 images when official MNIST is missing (recorded)"
        ),
    )
    _common(train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dyndl_lite", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the experiments and their models")

    _train_parser(commands)

    reproduce = commands.add_parser(
        "reproduce", help="walk a reproduction plan: skip finished runs, resume, continue"
    )
    reproduce.add_argument(
        "--plan", default=str(plan.BOOK_PLAN), help="plan file (default: the book's)"
    )
    reproduce.add_argument(
        "--budget-minutes", type=_minutes, default=None, help="stop cleanly after this long"
    )
    reproduce.add_argument(
        "--ship",
        action="store_true",
        help="move each finished run into the package's shipped checkpoints",
    )
    reproduce.add_argument("--status", action="store_true", help="print the ledger and exit")
    reproduce.add_argument(
        "--overwrite",
        action="store_true",
        help="retrain a run whose checkpoint in --out was made with another recipe",
    )
    _common(reproduce)

    ship = commands.add_parser(
        "ship",
        help="copy a finished checkpoint into the package and measure its evaluation record",
    )
    ship.add_argument("name")
    ship.add_argument(
        "--from", dest="source", default=None, help="folder holding it (default: the user folder)"
    )
    ship.add_argument(
        "--replace",
        action="store_true",
        help="replace a shipped checkpoint trained longer or on more data",
    )
    records.add_evaluate_parser(commands)
    return parser


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_on_signals() -> None:
    """SIGINT and SIGTERM stop training like Ctrl-C (the epoch in progress is lost, every completed
    one is kept).

    A process started in the background by a non-interactive shell (``nohup ... &``) inherits an
    *ignored* SIGINT, and Python then keeps ignoring it: without this, ``kill -INT <pid>`` would do
    nothing.
    """
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _print_now(line: str) -> None:
    """Print ``line`` at once (a long run's progress reaches a log file as it happens)."""
    print(line, flush=True)


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``train``: one run into ``--out``."""
    try:
        experiment = experiments.get(args.experiment)
        runs.resolve(experiment, args.model, args.seed, args.epochs, args.train_subset)
    except ValueError as error:
        parser.error(str(error))
    path = runs.train(
        experiment,
        args.model,
        args.seed,
        epochs=args.epochs,
        train_subset=args.train_subset,
        out=args.out,
        device=args.device,
        allow_fallback=args.allow_fallback,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        report=_print_now,
    )
    print(f"saved {path}")


def _reproduce(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``reproduce``: the ledger (``--status``), or walk the plan."""
    try:
        planned = plan.read(args.plan)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    out = runs.writable_folder(args.out) if args.out else pretrained.user_dir()
    if args.status:
        print(plan.format_ledger(plan.ledger(planned, out)))
        return
    start = time.monotonic()
    rows = plan.walk(
        planned,
        out,
        budget_s=None if args.budget_minutes is None else 60 * args.budget_minutes,
        device=args.device,
        ship=args.ship,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        say=_print_now,
    )
    print(f"after {(time.monotonic() - start) / 60:.1f} min: {plan.summary(rows)}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("train", "reproduce") and not getattr(args, "status", False):
        stop_on_signals()
    if getattr(args, "threads", None):
        set_threads(args.threads)
    try:
        if args.command == "list":
            for name, experiment in sorted(experiments.registry().items()):
                print(
                    f"{name:13s} {experiment.description}\n"
                    f"{'':13s} models: {', '.join(experiment.models)}"
                )
        elif args.command == "train":
            _train(args, parser)
        elif args.command == "reproduce":
            _reproduce(args, parser)
        elif args.command == "ship":
            print(f"shipped {pretrained.ship(args.name, source=args.source, replace=args.replace)}")
            records.evaluate(args.name, pretrained.SHIPPED_DIR)  # the record the chapters read
        elif args.command == "evaluate":
            return records.run_evaluate(args)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every completed epoch is saved; run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    except (
        OSError,  # FileExistsError, FileNotFoundError, CheckpointError, a read-only or full disk
        DatasetNotFoundError,
        TrainingDiverged,
        TrainingStopped,
        RunLocked,
        FloatingPointError,
        ValueError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
