"""The experiments package: one shape for every paper, and the command line's registry built from
it."""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest
import torch

from dyndl_lite import experiments, runs
from dyndl_lite.experiments import chen, gai, results, yan, yan_measure

#: The data every paper module has, and its protocol functions, each with one signature.
PROTOCOL_DATA = ("EXPERIMENTS", "MODELS", "REGIMES", "PAPER", "PAPER_SOURCE")
PROTOCOL_FUNCTIONS = (
    "recipe",
    "checkpoint_name",
    "train",
    "load",
    "table",
    "verdict_markdown",
    "verdict_paragraph",
)
#: Each module's own table type.
TABLES = {chen: results.ChenTable, yan: results.YanTable, gai: results.GaiTable}


def _signature(function) -> list[tuple]:
    """``function``'s parameters (name, kind, resolved annotation, default) and return annotation,
    with each module's own table type read as the common :class:`results.Table`."""
    hints = typing.get_type_hints(function)

    def common(hint):
        return results.Table if isinstance(hint, type) and issubclass(hint, results.Table) else hint

    parameters = [
        (p.name, p.kind, common(hints.get(p.name)), p.default)
        for p in inspect.signature(function).parameters.values()
    ]
    return parameters + [("return", common(hints["return"]))]


@pytest.mark.parametrize("name", PROTOCOL_FUNCTIONS)
def test_every_protocol_function_has_one_signature_in_every_paper_module(name):
    signatures = {m.__name__: _signature(getattr(m, name)) for m in experiments.MODULES}
    first = signatures["dyndl_lite.experiments.chen"]
    assert all(s == first for s in signatures.values()), signatures
    assert all(annotation is not None for _, _, annotation, _ in first[:-1]), first


def test_tables_are_typed_and_the_verdicts_read_their_modules_table():
    for module, table_type in TABLES.items():
        assert typing.get_type_hints(module.table)["return"] is table_type
        for name in ("verdict_markdown", "verdict_paragraph"):
            assert typing.get_type_hints(getattr(module, name))["table"] is table_type
        assert dataclasses.is_dataclass(table_type) and issubclass(table_type, results.Table)
        assert table_type.__dataclass_params__.frozen
        with pytest.raises(ValueError, match="regime"):
            module.table("adversarial")


@pytest.mark.parametrize("module", experiments.MODULES, ids=lambda m: m.__name__)
def test_models_are_what_the_experiments_train_in_every_regime(module):
    missing = [name for name in PROTOCOL_DATA if not hasattr(module, name)]
    assert not missing, f"{module.__name__} lacks {missing}"
    assert all(isinstance(e, runs.Experiment) for e in module.EXPERIMENTS) and module.EXPERIMENTS
    # MODELS means the same in every module: the networks `python -m dyndl_lite train` takes
    assert all(tuple(e.models) == tuple(module.MODELS) for e in module.EXPERIMENTS)
    names = {module.checkpoint_name(module.MODELS[0], 3, regime) for regime in module.REGIMES}
    assert len(names) == len(module.REGIMES) == len(module.EXPERIMENTS)
    for experiment, regime in zip(module.EXPERIMENTS, module.REGIMES, strict=True):
        model = module.MODELS[-1]
        assert experiment.recipe(model) == module.recipe(model, regime)
        assert experiment.checkpoint_name(model, 3) == module.checkpoint_name(model, 3, regime)
        assert experiment.checkpoint_name(model, 3).endswith("-seed3")
    with pytest.raises(ValueError, match="regime"):
        module.checkpoint_name(module.MODELS[0], 0, "adversarial")


def test_the_registry_is_the_modules_experiments_and_names_the_known_ones():
    assert sorted(experiments.registry()) == ["chen", "gai", "yan-clean", "yan-gaussian"]
    assert experiments.get("gai") is gai.EXPERIMENT
    with pytest.raises(ValueError, match="choose one of chen, gai, yan-clean, yan-gaussian"):
        experiments.get("chen2018")


def test_checkpoint_names_and_recipes_follow_the_papers():
    assert chen.checkpoint_name("odenet", 2) == "chen-odenet-seed2"
    assert yan.checkpoint_name("tisode", 1, "gaussian") == "yan-tisode-gaussian-seed1"
    assert gai.checkpoint_name("resnet-wd5e-4") == "gai-resnet-wd5e-4-seed0"
    assert (chen.recipe("odenet").epochs, chen.recipe("mlp").milestones) == (160, (60, 100, 140))
    assert yan.recipe("cnn", "gaussian") == yan.EXPERIMENTS[1].recipe("odenet")
    assert gai.recipe("plain-wd1e-2").weight_decay == 1e-2 and gai.recipe(
        "plain-wd1e-2"
    ).milestones == (96, 128)
    with pytest.raises(ValueError, match="regime"):
        yan.load("cnn", 0, "adversarial")


@pytest.mark.parametrize("images,pgd,seeds", [(1000, 1000, 3), (10, 4, 3), (7, 7, 1), (9, 0, 2)])
def test_shared_seed_images_cover_each_image_once_with_pgd_images_first(images, pgd, seeds):
    shares = yan_measure.seed_images(images, pgd, seeds, shared=True)
    assert len(shares) == seeds
    used = torch.cat([index for index, _ in shares])
    assert sorted(used.tolist()) == list(range(images))  # every image, none twice
    assert sum(k for _, k in shares) == pgd
    for index, k in shares:
        assert (index[:k] < pgd).all() and (index[k:] >= pgd).all()  # PGD attacks the first k
    sizes = [len(index) for index, _ in shares]
    assert max(sizes) - min(sizes) <= 2  # near-equal parts of the attacked and of the rest


def test_unshared_seed_images_give_every_seed_all_images():
    shares = yan_measure.seed_images(10, 4, 3, shared=False)
    assert all(index.tolist() == list(range(10)) and k == 4 for index, k in shares)


@pytest.mark.parametrize(
    "images,pgd,seeds,shared", [(5, 6, 1, False), (5, 2, 0, True), (2, 2, 3, True), (9, 2, 3, True)]
)
def test_seed_images_refuses_impossible_splits(images, pgd, seeds, shared):
    with pytest.raises(ValueError, match="pgd_images"):
        yan_measure.seed_images(images, pgd, seeds, shared)


class _Recorder(torch.nn.Module):
    """Predicts class 0 and remembers the first pixel of every image it was shown."""

    def __init__(self):
        super().__init__()
        self.seen: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += x[:, 0, 0, 0].tolist()
        return torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 10).float()


def test_measure_evaluates_each_seeds_networks_on_that_seeds_share_only():
    x = torch.arange(6.0).view(6, 1, 1, 1) / 10  # image i has first pixel i / 10
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    shares = dict(zip((3, 7), yan_measure.seed_images(6, 6, 2, shared=True), strict=True))
    nets = {(m, s): _Recorder() for m in ("cnn", "odenet") for s in (3, 7)}
    rows = yan_measure.measure_rows(((m, s, n) for (m, s), n in nets.items()), x, y, [], shares)
    for (_, seed), net in nets.items():
        assert sorted(round(10 * v) for v in net.seen) == shares[seed][0].tolist()
    # seed 3 sees images 0-2 (all class 0), seed 7 images 3-5 (all class 1)
    assert rows["cnn"]["clean"] == [100.0, 0.0] and rows["odenet"]["clean"] == [100.0, 0.0]
