"""Yan et al.'s CNN, ODENet and TisODE: parameter counts, shapes, and the Euler scheme of the ODE
block.

The TisODE's own properties (time invariance, the steady-state penalty) are in test_tisode.py.
"""

from __future__ import annotations

import pytest
import torch

from dyndl_lite.experiments import yan as yan_experiment
from dyndl_lite.experiments import yan_paper
from dyndl_lite.models.blocks import count_parameters
from dyndl_lite.models.yan import PAPER_PARAMETERS, build, yan_cnn, yan_odenet


@pytest.mark.parametrize("name", ["cnn", "odenet"])
def test_mnist_parameter_counts_are_the_papers(name):
    assert count_parameters(build(name)) == PAPER_PARAMETERS[name]


def test_tisode_has_the_cnns_count_and_its_shapes():
    """The TisODE field is the residual branch as a vector field: the same parameters as the CNN
    (141,130)."""
    tis = build("tisode")
    assert count_parameters(tis) == count_parameters(build("cnn")) == 141_130
    x = torch.rand(3, 1, 28, 28)
    assert tis.final_state(x).shape == (3, 64, 13, 13) and tis(x).shape == (3, 10)
    assert build("tisode", in_channels=3)(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_three_channel_variants_keep_the_design_and_the_gap():
    cnn, ode = yan_cnn(in_channels=3), yan_odenet(in_channels=3)
    assert count_parameters(cnn) == 142_282 and count_parameters(ode) == 143_562
    assert (
        count_parameters(ode) - count_parameters(cnn)
        == PAPER_PARAMETERS["odenet"] - PAPER_PARAMETERS["cnn"]
    )
    x = torch.rand(2, 3, 32, 32)
    assert cnn(x).shape == (2, 10) and ode(x).shape == (2, 10)
    assert cnn.features(x).shape == (2, 64, 15, 15)


def test_mnist_shapes_and_ten_euler_steps():
    ode = yan_odenet().eval()
    x = torch.rand(3, 1, 28, 28)
    assert ode.features(x).shape == (3, 64, 13, 13)
    assert ode(x).shape == (3, 10)
    assert ode.block.nfe_forward == 10  # step 0.1 on [0, 1]


def test_ode_block_is_explicit_euler_written_out():
    torch.manual_seed(0)
    ode = yan_odenet().eval()
    z = torch.randn(2, 64, 13, 13)
    expected = z.clone()
    with torch.no_grad():
        for k in range(10):
            expected = expected + 0.1 * ode.block.field.func(torch.tensor(0.1 * k), expected)
        got = ode.block(z)
    assert torch.allclose(got, expected, atol=1e-5)


def test_residual_block_is_identity_plus_branch():
    torch.manual_seed(0)
    cnn = yan_cnn().eval()
    # zero branch weights: GN output is its bias (0), so the block is the identity
    for p in cnn.block.parameters():
        torch.nn.init.zeros_(p)
    z = torch.randn(2, 64, 13, 13)
    assert torch.allclose(cnn.block(z), z)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="in_channels"):
        yan_cnn(in_channels=2)
    with pytest.raises(ValueError, match="unknown Yan model"):
        build("resnet")
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        yan_cnn()(torch.rand(2, 3, 28, 28))


def test_protocol_tables_and_recipes_are_consistent():
    for key, columns in yan_paper.COLUMNS.items():
        assert set(yan_paper.PAPER[key]) == set(yan_paper.PAPER_MODELS)
        assert all(len(yan_paper.PAPER[key][m]) == len(columns) for m in yan_paper.PAPER_MODELS)
    assert (
        yan_paper.column_label("fgsm", 5 / 255, "svhn") == "FGSM-5/255"
        and yan_paper.column_label("gaussian", 50) == "s=50"
    )
    assert yan_experiment.checkpoint_name("odenet", 2, "gaussian") == "yan-odenet-gaussian-seed2"
    full = yan_experiment.recipe("odenet", "gaussian")
    assert (
        full.optimizer,
        full.lr,
        full.weight_decay,
        full.epochs,
        full.milestones,
        full.gamma,
    ) == ("adam", 1e-3, 5e-4, 100, (30, 60, 90), 0.2)
    assert full.noise_prob == 0.5 and full.noise_sigmas == (50.0, 75.0, 100.0)
    quick = yan_experiment.quick_recipe("clean")
    assert (
        quick.noise_prob == 0.0
        and quick.epochs == 1
        and quick.train_subset == yan_experiment.QUICK_TRAIN_IMAGES
    )
    with pytest.raises(ValueError, match="regime"):
        yan_experiment.recipe("cnn", "adversarial")
