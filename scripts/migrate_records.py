"""One-off migration (2026-11-30) of the shipped checkpoint records to the one record shape of dyndl_lite.runs.

Weights are untouched (their SHA-256 stays valid). Per record: the overloaded ``"mode"`` and the
hand-written machine text in ``"device"`` are replaced by ``device`` / ``threads`` (what the old text
said; ``None`` where it said nothing); ``full_recipe``, ``full_recipe_epochs``, ``compression`` and
``data.train_images`` / ``data.fallback`` are added; the experiment-specific accuracy fields become
``train_acc`` / ``test_acc`` (official test set, all 10,000 images). Yan et al.'s records held a test
accuracy on the first 1,000 images only: their ``test_acc`` is measured here, on all 10,000, and
``test_acc_note`` says so. Idempotent: a record that already has ``full_recipe`` is left alone.

    python scripts/migrate_records.py
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re

from dyndl_lite import atomic, pretrained, runs
from dyndl_lite.data import load_mnist
from dyndl_lite.train import evaluate


def machine_from_text(text: str) -> dict:
    threads = re.search(r"(\d+) thread", text or "")
    return {"device": "cpu" if str(text).startswith("cpu") else text, "device_name": None,
            "threads": int(threads.group(1)) if threads else None}


def experiment_and_model(name: str, record: dict) -> tuple[str, str, int]:
    seed = int(name.rsplit("-seed", 1)[1])
    if name.startswith("gai-"):
        return "gai", name[len("gai-"):].rsplit("-seed", 1)[0], seed
    return record["experiment"], record["model"], seed


def migrate(name: str, test) -> bool:
    record = pretrained.load_record(name, pretrained.SHIPPED_DIR)
    if "full_recipe" in record:
        return False
    experiment, model, seed = experiment_and_model(name, record)
    run = runs.resolve(experiment, model, seed)
    net, _ = runs.load(experiment, model, seed, folder=pretrained.SHIPPED_DIR) if experiment != "gai" else (None, None)
    record.pop("mode", None)
    record.update(experiment=experiment, model=model, seed=seed, **machine_from_text(record.get("device", "")))
    record["full_recipe"] = dataclasses.asdict(run.full_recipe)
    record["full_recipe_epochs"] = run.full_recipe.epochs
    from dyndl_lite.train import Recipe

    as_run = Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in record["recipe"].items()})
    record["compression"] = runs.compression(run.full_recipe, as_run)
    data = record.setdefault("data", {})
    data.update(train_images=as_run.train_subset or 60_000, fallback=False, test_images=len(test))
    seconds = record.get("history", {}).get("seconds") or []
    record["seconds_per_epoch"] = round(sum(seconds) / len(seconds), 1) if seconds else None
    if experiment == "gai":
        record["train_acc"] = record.pop("final_train_acc")
        record["test_acc"] = record.pop("final_test_acc")
        record["snapshots"]["basis"] = "PCA refitted at each epoch (older record)"
        record["dynamics"].setdefault("lss_points", "MNIST test (official, 10,000 images), fixed subset of 1,000 (seed 0)")
    elif experiment.startswith("yan"):
        record["train_acc"] = record.pop("final_train_acc_running")
        record.pop("final_test_acc_first_1000", None)
        record.pop("paper_recipe", None)
        record["test_acc"] = evaluate(net, test.images, test.labels)
        record["test_acc_note"] = (f"measured on all {len(test):,} official test images when the record was migrated "
                                   f"({datetime.date.today().isoformat()}), same weights")
    record["heldout_fallback_acc"] = None
    record.pop("loaded_from", None)
    atomic.write_text(pretrained.paths(name, pretrained.SHIPPED_DIR)[1], pretrained.dump_record(record))
    return True


if __name__ == "__main__":
    test = load_mnist("test", allow_fallback=False)
    for path in sorted(pretrained.SHIPPED_DIR.glob("*.json")):
        print(path.stem, "migrated" if migrate(path.stem, test) else "already migrated")
    for path in sorted(pretrained.SHIPPED_DIR.glob("*.json")):
        json.loads(path.read_text())  # strict JSON
