"""Attacks on a real (small, trained) MNIST model: invariants the definitions guarantee."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dyndl_lite import attacks
from dyndl_lite.data import load_mnist


@pytest.fixture(scope="module")
def mnist_batch():
    data = load_mnist("test")
    return data.images[:512], data.labels[:512]


@pytest.fixture(scope="module")
def softmax_regression(mnist_batch):
    """Multinomial logistic regression trained for 100 full-batch Adam steps on real MNIST
    digits."""
    torch.manual_seed(0)
    x, y = load_mnist("train").images[:2000], load_mnist("train").labels[:2000]
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    assert attacks.accuracy(model, *mnist_batch) > 0.8  # it really learned something
    return model


@pytest.fixture(scope="module")
def small_cnn(mnist_batch):
    """A small non-linear convnet trained for 60 Adam steps on real MNIST digits."""
    torch.manual_seed(0)
    train = load_mnist("train")
    model = nn.Sequential(
        nn.Conv2d(1, 8, 5, 2),
        nn.ReLU(),
        nn.Conv2d(8, 16, 5, 2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for i in range(60):
        # wraps around the 4,000-image offline fallback: never an empty batch
        start = i * 128 % (len(train) - 127)
        xb, yb = train.images[start : start + 128], train.labels[start : start + 128]
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    assert attacks.accuracy(model, *mnist_batch) > 0.8
    return model


def ce(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_perturbations_stay_in_ball_and_in_unit_box(small_cnn, mnist_batch, eps):
    x, y = mnist_batch
    g = torch.Generator().manual_seed(1)
    for adv in (
        attacks.fgsm(small_cnn, x, y, eps),
        attacks.pgd(small_cnn, x, y, eps, steps=5, random_start=True, generator=g),
    ):
        assert adv.shape == x.shape
        assert (adv - x).abs().max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    noisy = attacks.gaussian(x, 100, generator=g)
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_fgsm_is_the_closed_form_for_softmax_regression(softmax_regression, mnist_batch):
    # For logits W x + b, grad_x CE = W^T (softmax(Wx + b) - onehot(y)).
    x, y = mnist_batch
    linear = softmax_regression[1]
    with torch.no_grad():
        p = torch.softmax(linear(x.flatten(1)), 1)
        grad = (p - F.one_hot(y, 10).float()) @ linear.weight
    expected = (x + 0.1 * grad.sign().view_as(x)).clamp(0, 1)
    got = attacks.fgsm(softmax_regression, x, y, 0.1)
    assert torch.equal(got, expected) or (got - expected).abs().max() < 1e-6


def test_fgsm_is_one_pgd_step_from_the_centre(small_cnn, mnist_batch):
    x, y = mnist_batch
    assert torch.allclose(
        attacks.fgsm(small_cnn, x, y, 0.2), attacks.pgd(small_cnn, x, y, 0.2, step=0.2, steps=1)
    )


def test_attacks_raise_the_loss_and_pgd_at_least_as_much_as_fgsm(small_cnn, mnist_batch):
    x, y = mnist_batch
    eps = 0.15
    clean, fast = ce(small_cnn, x, y), ce(small_cnn, attacks.fgsm(small_cnn, x, y, eps), y)
    iterated = ce(small_cnn, attacks.pgd(small_cnn, x, y, eps, step=eps / 4, steps=10), y)
    assert clean < fast <= iterated
    assert attacks.accuracy(
        small_cnn, attacks.pgd(small_cnn, x, y, eps, steps=10), y
    ) < attacks.accuracy(small_cnn, x, y)


def test_margin_loss_attack_lowers_accuracy(small_cnn, mnist_batch):
    x, y = mnist_batch
    adv = attacks.pgd(small_cnn, x, y, 0.15, steps=5, loss="margin")
    assert attacks.accuracy(small_cnn, adv, y) < attacks.accuracy(small_cnn, x, y) - 0.2


def test_same_seed_same_result_and_different_seed_differs(small_cnn, mnist_batch):
    x, y = mnist_batch[0][:64], mnist_batch[1][:64]

    def run(s):
        return attacks.pgd(
            small_cnn,
            x,
            y,
            0.1,
            steps=2,
            random_start=True,
            generator=torch.Generator().manual_seed(s),
        )

    assert torch.equal(run(3), run(3)) and not torch.equal(run(3), run(4))

    def noise(s):
        return attacks.gaussian(x, 50, generator=torch.Generator().manual_seed(s))

    assert torch.equal(noise(3), noise(3)) and not torch.equal(noise(3), noise(4))


def test_gaussian_noise_has_the_stated_scale():
    x = torch.full((20000,), 0.5)
    # sigma / 255 = 0.1, no clipping
    noisy = attacks.gaussian(x, 25.5, generator=torch.Generator().manual_seed(0))
    assert abs((noisy - x).std().item() - 0.1) < 0.003


def test_mode_restored_and_no_gradient_leaks(small_cnn, mnist_batch):
    x, y = mnist_batch[0][:32], mnist_batch[1][:32]
    small_cnn.train()
    attacks.pgd(small_cnn, x, y, 0.1, steps=2)
    attacks.fgsm(small_cnn, x, y, 0.1)
    assert small_cnn.training
    assert all(p.grad is None and p.requires_grad for p in small_cnn.parameters())
    small_cnn.eval()
    attacks.fgsm(small_cnn, x, y, 0.1)
    assert not small_cnn.training


def test_bad_arguments_raise_clear_errors(small_cnn, mnist_batch):
    x, y = mnist_batch[0][:8], mnist_batch[1][:8]
    with pytest.raises(ValueError, match="non-negative"):
        attacks.fgsm(small_cnn, x, y, -0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attacks.fgsm(small_cnn, x * 255, y, 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attacks.gaussian(x - 0.5, 50)
    with pytest.raises(ValueError, match="non-negative"):
        attacks.gaussian(x, -1)
    with pytest.raises(ValueError, match="steps"):
        attacks.pgd(small_cnn, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="labels"):
        attacks.fgsm(small_cnn, x, y[:4], 0.1)
    with pytest.raises(ValueError, match="unknown attack loss"):
        attacks.fgsm(small_cnn, x, y, 0.1, loss="hinge")


def test_fgsm_sweep_is_fgsm_at_every_radius(small_cnn, mnist_batch):
    x, y = mnist_batch[0][:64], mnist_batch[1][:64]
    for eps, adv in zip([0.0, 0.1, 0.3], attacks.fgsm_sweep(small_cnn, x, y, [0.0, 0.1, 0.3])):
        assert torch.equal(adv, attacks.fgsm(small_cnn, x, y, eps))


# ---------------------------------------------------------------- issue 15: no silent wrong answers


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return (
        nn.Sequential(nn.Flatten(), nn.Linear(4, 3)),
        torch.rand(5, 1, 2, 2),
        torch.tensor([0, 1, 2, 0, 1]),
    )


def test_nan_images_and_bad_labels_are_refused(tiny):
    model, x, y = tiny
    bad = x.clone()
    bad[1, 0, 0, 0] = float("nan")
    for attack in (
        lambda im: attacks.fgsm(model, im, y, 0.1),
        lambda im: attacks.pgd(model, im, y, 0.1, steps=1),
        lambda im: attacks.gaussian(im, 10),
        lambda im: attacks.fgsm_sweep(model, im, y, [0.1]),
    ):
        with pytest.raises(ValueError, match="images contain NaN or Inf"):
            attack(bad)
    with pytest.raises(ValueError, match="non-empty batch"):
        attacks.fgsm(model, x[:0], y[:0], 0.1)
    with pytest.raises(TypeError, match="labels must be an integer torch tensor"):
        attacks.fgsm(model, x, y.float(), 0.1)
    with pytest.raises(TypeError, match="images must be a floating torch tensor"):
        attacks.fgsm(model, (x * 255).to(torch.uint8), y, 0.1)


def test_eps_of_any_numeric_kind_is_accepted_and_nan_is_refused(tiny):
    model, x, y = tiny
    reference = attacks.fgsm(model, x, y, 0.1)
    for eps in (np.float32(0.1), np.float64(0.1), torch.tensor(0.1)):
        assert torch.allclose(attacks.fgsm(model, x, y, eps), reference)
    assert torch.allclose(
        attacks.pgd(model, x, y, torch.tensor(0.1), steps=2), attacks.pgd(model, x, y, 0.1, steps=2)
    )
    for eps in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="eps must be a finite non-negative number"):
            attacks.fgsm(model, x, y, eps)
    with pytest.raises(TypeError, match="eps must be a non-negative number"):
        attacks.fgsm(model, x, y, "0.1")
    with pytest.raises(ValueError, match="step must be a finite"):
        attacks.pgd(model, x, y, 0.1, step=float("nan"))


def test_sigma_error_names_the_0_255_scale(tiny):
    _, x, _ = tiny
    with pytest.raises(
        ValueError, match="sigma must be a finite non-negative number on the 0-255 pixel scale"
    ):
        attacks.gaussian(x, -5)


def test_overflowing_model_is_an_error_not_nan_images(tiny):
    _, x, y = tiny

    class Overflow(nn.Module):
        def forward(self, images):
            return images.flatten(1)[:, :3] * float("inf")

    with pytest.raises(FloatingPointError, match="NaN or Inf"):
        attacks.fgsm(Overflow(), x, y, 0.1)
