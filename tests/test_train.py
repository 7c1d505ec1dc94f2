"""The training loop: it learns, it is seeded, its augmentation is what it claims, recipes are
validated."""

import math

import pytest
import torch
from torch import nn

from dyndl_lite.data import ImageData
from dyndl_lite.experiments import chen as chen_experiment
from dyndl_lite.models.blocks import ODEBlock
from dyndl_lite.train import (
    History,
    Recipe,
    count_correct,
    evaluate,
    fit,
    gaussian_noise,
    random_crop,
)


def blobs(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.5 + (2.0 * y[:, None] - 1.0) * torch.tensor([1.5, 0.0])
    return x, y


class Field(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))

    def forward(self, t, z):
        return self.net(z)


def test_fit_learns_separable_data_and_history_has_one_entry_per_epoch():
    x, y = blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    before = evaluate(model, x, y)
    history = fit(
        model, (x, y), Recipe("t", epochs=3, batch_size=32, lr=0.1), test=(x, y), progress=False
    )
    assert isinstance(history, History)
    for key, values in history.as_dict().items():
        if key != "extra":  # what callbacks keep; none here
            # 400 points, batches of 32: 13 steps
            assert len(values) == (3 * 13 if key.startswith("step_") else 3)
    assert history.extra == {}
    assert before < 0.9 < 0.95 < history.test_acc[-1]
    assert history.loss[-1] < history.loss[0]
    assert not model.training


def test_fit_is_seeded():
    x, y = blobs()
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = nn.Linear(2, 2)
        fit(model, (x, y), Recipe("t", epochs=1, batch_size=50), seed=3, progress=False)
        runs.append(model.weight.detach().clone())
    assert torch.equal(runs[0], runs[1])


def test_learning_rate_schedule_and_compression():
    chen = chen_experiment.PAPER_RECIPE
    assert [chen.lr_at(e) for e in (0, 59, 60, 100, 140)] == pytest.approx(
        [0.1, 0.1, 0.01, 1e-3, 1e-4]
    )
    short = chen.compressed(8)
    assert short.epochs == 8 and short.milestones == (3, 5, 7)
    assert chen.compressed(1).milestones == ()
    x, y = blobs(64)
    history = fit(
        nn.Linear(2, 2),
        (x, y),
        Recipe("t", epochs=3, milestones=(1, 2), lr=1.0, gamma=0.5),
        progress=False,
    )
    assert history.lr == pytest.approx([1.0, 0.5, 0.25])


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(64, 2, 7, 5)
    crops = random_crop(images, 2, g)
    assert crops.shape == images.shape
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for b in range(len(images)):  # every crop equals the padded image at one of the 25 offsets
        matches = [
            (i, j)
            for i in range(5)
            for j in range(5)
            if torch.equal(padded[b, :, i : i + 7, j : j + 5], crops[b])
        ]
        assert matches
    offsets_used = {(torch.equal(crops[b], images[b])) for b in range(len(images))}
    assert offsets_used == {True, False}  # some images shifted, some not (1/25 chance each to stay)
    assert random_crop(images, 0, g) is images


def test_gaussian_noise_probability_and_scale():
    g = torch.Generator().manual_seed(0)
    images = torch.full((2000, 1, 4, 4), 0.5)
    noisy = gaussian_noise(images, 0.5, (10.0,), g)
    changed = (noisy != images).flatten(1).any(dim=1).float().mean().item()
    assert abs(changed - 0.5) < 0.05
    diff = (noisy - images)[(noisy != images).flatten(1).any(dim=1)]
    assert diff.std().item() == pytest.approx(10 / 255, rel=0.05)
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_fit_accepts_image_data_with_crop_and_counts_ode_function_evaluations():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(64, 1, 8, 8, generator=g), torch.randint(0, 2, (64,), generator=g)
    data = ImageData(images, labels, "random images")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encode = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
            self.block = ODEBlock(Field(), method="rk4")

        def forward(self, x):
            return self.block(self.encode(x))

    history = fit(Net(), data, Recipe("t", epochs=1, batch_size=32, crop_padding=1), progress=False)
    assert history.nfe_forward == [4.0]  # one RK4 step: four evaluations per forward pass
    assert history.nfe_backward == [0.0]


def test_mse_regression_reports_nan_accuracy():
    x = torch.linspace(-1, 1, 64)[:, None]
    history = fit(
        nn.Linear(1, 1),
        (x, 3 * x),
        Recipe("t", epochs=20, batch_size=16, lr=0.05),
        loss="mse",
        progress=False,
    )
    assert history.loss[-1] < 0.01 and math.isnan(history.train_acc[-1])


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="optimizer"):
        Recipe("t", epochs=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="noise_sigmas"):
        Recipe("t", epochs=1, noise_prob=0.5)
    with pytest.raises(TypeError, match="ImageData"):
        fit(nn.Linear(2, 2), [1, 2, 3], Recipe("t", epochs=1), progress=False)
    with pytest.raises(ValueError, match="loss"):
        fit(nn.Linear(2, 2), blobs(8), Recipe("t", epochs=1), loss="hinge", progress=False)


def test_a_models_extra_loss_is_added_to_every_step():
    class Penalised(nn.Linear):
        calls: list[int] = []

        def extra_loss(self, epoch: int) -> torch.Tensor:
            self.calls.append(epoch)
            return 100.0 * (self.weight**2).sum() if epoch >= 1 else torch.zeros(())

    x, y = blobs()
    torch.manual_seed(0)
    model = Penalised(2, 2)
    history = fit(model, (x, y), Recipe("t", epochs=2, batch_size=400, lr=0.1), progress=False)
    assert model.calls == [0, 1]
    torch.manual_seed(0)
    plain = nn.Linear(2, 2)
    reference = fit(plain, (x, y), Recipe("t", epochs=2, batch_size=400, lr=0.1), progress=False)
    assert history.loss[0] == pytest.approx(reference.loss[0])  # epoch 0: the term is zero
    assert history.loss[1] > reference.loss[1] + 1.0  # epoch 1: the penalty is in the loss


def test_count_correct_and_evaluate_count_argmax_hits_in_eval_mode_and_restore_the_mode():
    class ModeTeller(nn.Module):
        """Predicts class 0 in eval mode and 1 in train mode: the count tells which mode ran."""

        def forward(self, x):
            assert torch.is_inference_mode_enabled()
            logits = torch.tensor([0.0, 1.0]) if self.training else torch.tensor([1.0, 0.0])
            return logits.expand(len(x), 2)

    x, y = torch.zeros(5, 2), torch.tensor([0, 0, 0, 1, 1])
    model = ModeTeller().train()
    assert count_correct(model, x, y, batch_size=2, device="cpu") == 3
    assert evaluate(model, x, y, batch_size=2, device="cpu") == 3 / 5
    assert model.training
    with pytest.raises(ValueError, match="5 inputs but 4 targets"):
        count_correct(model, x, y[:4], device="cpu")
    with pytest.raises(ValueError, match="at least one example"):
        evaluate(model, x[:0], y[:0], device="cpu")

    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("broken forward")

    broken = Broken().train()
    with pytest.raises(RuntimeError, match="broken forward"):
        evaluate(broken, x, y, device="cpu")
    assert broken.training  # restored although the forward pass raised


def test_step_losses_are_stored_as_short_decimals_of_the_same_float32():
    """The per-step curve keeps every float32 loss exactly, in its shortest decimal."""
    from dyndl_lite.train import float32_decimals

    losses = torch.rand(1000) * 3
    stored = float32_decimals(losses)
    assert torch.equal(torch.tensor(stored, dtype=torch.float32), losses)
    digits = [repr(v).split("e")[0].replace(".", "").lstrip("0") for v in stored]
    assert max(len(d) for d in digits) <= 9  # float32 needs at most 9 significant digits
    assert float32_decimals(torch.tensor([0.1])) == [0.1]
