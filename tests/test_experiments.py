"""The experiments package: one shape for every paper, and the command line's registry built from
it."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from dyndl_lite import experiments, runs
from dyndl_lite.experiments import chen, gai, yan
from dyndl_lite.train import Recipe

PROTOCOL = (
    "EXPERIMENTS",
    "MODELS",
    "PAPER",
    "PAPER_SOURCE",
    "recipe",
    "checkpoint_name",
    "train",
    "load",
    "table",
    "verdict_markdown",
    "verdict_paragraph",
)


@pytest.mark.parametrize("module", experiments.MODULES, ids=lambda m: m.__name__)
def test_every_experiment_module_exposes_the_same_names(module):
    missing = [name for name in PROTOCOL if not hasattr(module, name)]
    assert not missing, f"{module.__name__} lacks {missing}"
    assert all(isinstance(e, runs.Experiment) for e in module.EXPERIMENTS) and module.EXPERIMENTS
    assert list(inspect.signature(module.checkpoint_name).parameters)[:2] == ["model", "seed"]
    assert list(inspect.signature(module.load).parameters)[:2] == ["model", "seed"]
    assert list(inspect.signature(module.train).parameters)[:2] == ["model", "seed"]
    for experiment in module.EXPERIMENTS:
        model = experiment.models[0]
        assert isinstance(experiment.recipe(model), Recipe)
        assert experiment.checkpoint_name(model, 3).endswith("-seed3")


def test_the_registry_is_the_modules_experiments_and_names_the_known_ones():
    assert sorted(experiments.registry()) == ["chen", "gai", "yan-clean", "yan-gaussian"]
    assert experiments.get("gai") is gai.EXPERIMENT
    with pytest.raises(ValueError, match="choose one of chen, gai, yan-clean, yan-gaussian"):
        experiments.get("chen2018")


def test_checkpoint_names_and_recipes_follow_the_papers():
    assert chen.checkpoint_name("odenet", 2) == "chen-odenet-seed2"
    assert yan.checkpoint_name("tisode", 1, "gaussian") == "yan-tisode-gaussian-seed1"
    assert gai.checkpoint_name("resnet-wd5e-4") == "gai-resnet-wd5e-4-seed0"
    assert (chen.recipe().epochs, chen.recipe().milestones) == (160, (60, 100, 140))
    assert yan.recipe("cnn", "gaussian") == yan.EXPERIMENTS[1].recipe("odenet")
    assert gai.recipe("plain-wd1e-2").weight_decay == 1e-2 and gai.recipe(
        "plain-wd1e-2"
    ).milestones == (96, 128)
    with pytest.raises(ValueError, match="regime"):
        yan.load("cnn", 0, "adversarial")


def test_pca_2d_fits_one_basis_and_projects_other_tracks_on_it():
    rng = np.random.default_rng(0)
    reference = np.zeros((3, 50, 4))
    reference[..., :2] = rng.normal(size=(3, 50, 2)) * np.array(
        [5.0, 2.0]
    )  # points in a plane of R^4
    projected = gai.pca_2d(reference)
    assert projected.shape == (3, 50, 2)
    assert np.allclose(projected.reshape(-1, 2).mean(0), 0.0)  # centred on its own mean

    def distances(points):
        flat = points.reshape(-1, points.shape[-1])
        return np.linalg.norm(flat[:, None] - flat[None], axis=-1)

    assert np.allclose(distances(projected), distances(reference))  # the plane is kept exactly
    shift = np.array([0.6, 0.8, 0.0, 0.0])
    moved = (
        gai.pca_2d(reference + shift, fit_on=reference) - projected
    )  # projected on the reference's basis
    assert np.allclose(moved, moved[0, 0]) and np.linalg.norm(moved[0, 0]) == pytest.approx(1.0)
    assert np.allclose(gai.pca_2d(torch.tensor(reference)), projected)
    snapshots = gai.fixed_basis_pca({"1": reference + shift, "2": reference}, "2")
    assert np.allclose(snapshots["2"], projected) and np.allclose(snapshots["1"], projected + moved)
