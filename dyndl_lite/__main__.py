"""Command line: ``python -m dyndl_lite train <experiment> --model <name> --mode full --seed S``.

``python -m dyndl_lite list`` shows the registered experiments and their models
(see :mod:`dyndl_lite.experiments` for the registry).
"""

from __future__ import annotations

import argparse
import sys

from dyndl_lite.experiments import load_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dyndl_lite", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the experiments and their models")
    train = commands.add_parser("train", help="train one model of an experiment and save its checkpoint")
    train.add_argument("experiment")
    train.add_argument("--model", required=True)
    train.add_argument("--mode", choices=("quick", "full"), default="full")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    train.add_argument("--epochs", type=int, default=None,
                       help="compress the full recipe to this many epochs (a short budget; recorded)")
    train.add_argument("--train-subset", type=int, default=None,
                       help="train on this many of the training images (a short budget; recorded)")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    train.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    experiments = load_all()
    if args.command == "list":
        for name, experiment in sorted(experiments.items()):
            print(f"{name:12s} models: {', '.join(experiment.models):30s} {experiment.description}")
        return 0
    if args.experiment not in experiments:
        parser.error(f"unknown experiment {args.experiment!r}; registered: {', '.join(sorted(experiments))}")
    experiment = experiments[args.experiment]
    if args.model not in experiment.models:
        parser.error(f"experiment {args.experiment!r} has no model {args.model!r}; choose one of {experiment.models}")
    path = experiment.train(args.model, mode=args.mode, seed=args.seed, device=args.device,
                            progress=not args.no_progress, epochs=args.epochs,
                            **({"train_subset": args.train_subset} if args.train_subset else {}))
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
