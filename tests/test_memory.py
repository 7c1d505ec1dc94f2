"""dyndl_lite.memory: exact tensor accounting on the CPU, and the adjoint's flat memory."""

import pytest
import torch

from dyndl_lite.memory import GRADIENT_METHODS, TensorBytes, gradient_cost, peak_memory
from dyndl_lite.toy import VectorFieldMLP


def test_counts_new_storages_once_and_releases_them():
    before = torch.ones(1000)  # exists at entry: the baseline, never counted
    with TensorBytes() as counter:
        a = torch.empty(1000, 250)  # 1,000,000 bytes of float32
        view = a[:10]  # a view adds nothing
        a.add_(1.0)  # nor does an in-place operation
        before.mul_(2.0)
        assert counter.live == 1_000_000
        del a
        assert counter.live == 1_000_000  # the view keeps the storage alive
        del view
        assert counter.live == 0
        b = torch.zeros(10)
        assert counter.live == 40
    assert counter.peak == 1_000_000
    del b


def test_peak_memory_on_cpu_counts_tensor_bytes():
    with peak_memory("cpu") as peak:
        x = torch.zeros(256, 1024)
        y = x + 1.0  # a second 1 MiB storage
        del x, y
    assert peak.bytes == 2 * 2**20
    with pytest.raises(ValueError, match="count"):
        with peak_memory("cpu", count="rss"):
            pass


def test_adjoint_memory_is_flat_and_backprop_memory_grows_linearly():
    torch.manual_seed(0)
    func = VectorFieldMLP(8, 32)
    y0 = torch.randn(64, 8)
    peak = {
        how: [gradient_cost(how, func, y0, n)["peak_mib"] for n in (5, 10, 20)]
        for how in GRADIENT_METHODS
    }
    # the from-scratch adjoint stores nothing per step: the count is identical, not merely close
    assert peak["adjoint"][0] == peak["adjoint"][1] == peak["adjoint"][2]
    backprop = peak["backprop through solver"]
    # backprop keeps every step's activations: doubling the steps (nearly) doubles the memory
    assert 1.8 < backprop[2] / backprop[1] < 2.2 and 1.7 < backprop[1] / backprop[0] < 2.2
    assert backprop[2] > 5 * peak["adjoint"][2]


def test_gradient_cost_counts_evaluations():
    func = VectorFieldMLP(4, 8)
    cost = gradient_cost("adjoint", func, torch.randn(3, 4), 5)
    assert cost["nfe_forward"] == 4 * 5  # RK4: four evaluations a step
    assert cost["nfe_backward"] == 4 * 5
    assert cost["seconds"] > 0
