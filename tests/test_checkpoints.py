"""Shipped checkpoints: every record has the fields the chapters read, consistent with itself, and
the Chen et al. weights are trained (far above chance on the official MNIST test set, measured
now)."""

import json
import math

import pytest

from dyndl_lite import pretrained
from dyndl_lite.data import load_mnist
from dyndl_lite.experiments import chen
from dyndl_lite.models.chen import MODELS
from dyndl_lite.train import evaluate

SHIPPED = [m for m in MODELS if pretrained.exists(chen.checkpoint_name(m))]
# checkpoint records only: evaluation records (`<name>.eval.json`, dyndl_lite.records) are not
RECORDS = sorted(
    p for p in pretrained.SHIPPED_DIR.glob("*.json") if not p.name.endswith(".eval.json")
)

# The fields chapters 4, 6 and 10 read from a record (the lead's record contract, issue 13).
FIELDS = (
    "experiment",
    "model",
    "seed",
    "epochs_run",
    "full_recipe_epochs",
    "recipe",
    "history",
    "train_acc",
    "wall_time_s",
    "device",
    "threads",
    "data",
)


@pytest.fixture(scope="module")
def mnist_test():
    test = load_mnist("test", allow_fallback=False)
    assert len(test) == 10_000
    return test


def test_all_four_chen_checkpoints_are_shipped():
    assert SHIPPED == list(MODELS)


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.stem)
def test_record_has_the_fields_the_chapters_read(path):
    record = json.loads(path.read_text())
    missing = [key for key in FIELDS if key not in record]
    assert not missing, f"{path.name} lacks {missing}"
    assert isinstance(record["recipe"], dict) and "train" in record["data"]
    assert 1 <= record["epochs_run"] <= record["full_recipe_epochs"]
    history = record["history"]
    assert len(history["epoch"]) == record["epochs_run"] == len(history["train_acc"])
    assert record["train_acc"] == pytest.approx(history["train_acc"][-1])
    assert 0.0 <= record["train_acc"] <= 1.0 and math.isfinite(record["wall_time_s"])


@pytest.mark.parametrize(
    "path", [p for p in RECORDS if p.stem.startswith("gai-")], ids=lambda p: p.stem
)
def test_gai_records_follow_training_and_picture_it(path):
    record = json.loads(path.read_text())
    dynamics = record["dynamics"]
    assert (
        len(dynamics["epoch"])
        == len(dynamics["lss"])
        == len(dynamics["train_acc"])
        == record["epochs_run"]
    )
    assert all(value >= 1.0 for value in dynamics["lss"])  # LSS >= 1 by the triangle inequality
    snapshots = record["snapshots"]
    assert snapshots["tracks_pca_2d"], "no 2-D track pictures"
    for epoch, picture in snapshots["tracks_pca_2d"].items():
        assert 1 <= int(epoch) <= record["epochs_run"]
        assert len(picture[0]) == len(snapshots["labels"]) and len(picture[0][0]) == 2


@pytest.mark.slow  # trains or evaluates on MNIST: left out of make test-fast
@pytest.mark.parametrize("model", SHIPPED)
def test_chen_checkpoint_is_trained(model, mnist_test):
    net, record = chen.load(model)
    assert record["data"]["train"].startswith("MNIST train (official")
    # live, on the first 1,000 official test images (all 10,000 are the evaluation record's, whose
    # spot check chapter 4 runs): enough to tell trained weights from an initialisation
    first = mnist_test.images[:1000], mnist_test.labels[:1000]
    accuracy = evaluate(net, *first)
    assert accuracy > 0.5, accuracy  # trained weights, not an initialisation (chance is 0.1)
