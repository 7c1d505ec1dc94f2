"""Every shipped Chen et al. checkpoint reproduces its recorded test accuracy on the full MNIST test set."""

import pytest

from dyndl_lite import pretrained
from dyndl_lite.data import load_mnist
from dyndl_lite.experiments import chen_checkpoint_name, load_chen
from dyndl_lite.models.chen import MODELS
from dyndl_lite.train import evaluate

SHIPPED = [m for m in MODELS if pretrained.exists(chen_checkpoint_name(m))]


@pytest.fixture(scope="module")
def mnist_test():
    test = load_mnist("test", allow_fallback=False)
    assert len(test) == 10_000
    return test


def test_all_four_chen_checkpoints_are_shipped():
    assert SHIPPED == list(MODELS)


@pytest.mark.parametrize("model", SHIPPED)
def test_recorded_test_accuracy_is_reproduced(model, mnist_test):
    net, record = load_chen(model)
    assert record["data"]["test"] == mnist_test.name and record["data"]["train"].startswith("MNIST train (official")
    for key in ("recipe", "seed", "epochs_run", "mode", "device", "wall_time_s", "package_version", "git_commit",
                "train_acc", "test_acc"):
        assert key in record, key
    accuracy = evaluate(net, mnist_test.images, mnist_test.labels)
    # same weights, same data: identical up to a few images whose logits tie within float rounding
    # (thread count and BLAS kernels may differ from the training machine)
    assert abs(accuracy - record["test_acc"]) <= 3e-4, (accuracy, record["test_acc"])


@pytest.mark.parametrize("model", SHIPPED)
def test_recorded_accuracy_is_far_above_chance(model):
    _, record = load_chen(model)
    assert record["test_acc"] > 0.5, record["test_acc"]  # trained weights, not an initialisation
