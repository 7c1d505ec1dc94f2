"""Chapter 4's table is read from the shipped networks' evaluation records (protocol chen v1, all
10,000 official MNIST test images): its errors, its paired comparison and its tolerance sweep are
the records' numbers, whatever data the chapter loaded; an edited record or a shipped checkpoint
without one stops it with an error naming ``make evaluate``; a checkpoint of the reader's own folder
without a record is measured live on the chapter's data and labelled so."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dyndl_lite import pretrained, records, significance
from dyndl_lite.data import ImageData
from dyndl_lite.experiments import chen
from dyndl_lite.record_format import SUFFIX, RecordError

NAMES = {model: chen.checkpoint_name(model, 0) for model in chen.MODELS}


def shipped(name: str) -> bool:
    return pretrained.exists(name, pretrained.SHIPPED_DIR)


needs_shipped = pytest.mark.skipif(
    not all(shipped(name) for name in NAMES.values()), reason="no shipped chen-* checkpoints"
)


def random_images(n: int, name: str = "random images", fallback: bool = False) -> ImageData:
    """``n`` uniform random images with labels ``i mod 10``: data that are not the records'."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand((n, 1, 28, 28), generator=generator)
    return ImageData(images, torch.arange(n) % 10, name, is_fallback=fallback, split="test")


def no_live_measurement(monkeypatch):
    """Make every live evaluation in chen an error: a table read from records never calls one."""

    def refuse(*args, **kwargs):
        raise AssertionError("the table measured live instead of reading the evaluation record")

    for name in ("correct_per_image", "tolerance_sweep"):
        monkeypatch.setattr(chen, name, refuse)


def copy_checkpoint(name: str, folder, with_record: bool = True) -> None:
    """Copy shipped checkpoint ``name`` (weights, JSON record and, if asked, its evaluation record)
    into ``folder``."""
    for path in pretrained.paths(name, pretrained.SHIPPED_DIR):
        shutil.copy(path, folder / path.name)
    if with_record:
        shutil.copy(pretrained.SHIPPED_DIR / f"{name}{SUFFIX}", folder / f"{name}{SUFFIX}")


@needs_shipped
def test_table_numbers_are_the_records_numbers_whatever_the_data(monkeypatch):
    no_live_measurement(monkeypatch)
    # the offline fallback's held-out images: the table still shows the official test numbers
    held_out = random_images(40, "held-out fallback stand-in", fallback=True)
    table = chen.table(test=held_out)
    loaded = {model: records.load(name) for model, name in NAMES.items()}
    assert [row["model"] for row in table.rows] == list(chen.MODELS)
    assert set(table.evaluation_records) == set(NAMES.values())
    for row in table.rows:
        clean = loaded[row["model"]].cells["clean"]
        assert row["test_error_percent"] == pytest.approx(100 * (1 - clean.value), abs=1e-12)
        assert row["test_error_percent"] == pytest.approx(100 * (clean.n - clean.k) / clean.n)
        assert (
            (row["source"], row["eval_images"])
            == (chen.FROM_RECORD, clean.n)
            == (
                chen.FROM_RECORD,
                10_000,
            )
        )
        assert row["data"] == loaded[row["model"]].key["data"] != held_out.name
    assert (table.images, table.data, table.accuracy_label) == (
        10_000,
        loaded["mlp"].key["data"],
        "test accuracy",
    )
    assert not table.fallback  # the numbers are on official test images, not the fallback's


@needs_shipped
def test_paired_comparison_uses_the_records_per_image_outcomes(monkeypatch):
    no_live_measurement(monkeypatch)
    table = chen.table()
    res = records.load(NAMES["resnet"]).cells["clean"].outcomes
    ode = records.load(NAMES["odenet"]).cells["clean"].outcomes
    paired = table.paired
    assert paired["images"] == len(res) == 10_000
    assert paired["a_only"] == int(np.sum(res & ~ode))  # right for the ResNet only
    assert paired["b_only"] == int(np.sum(~res & ode))
    expected = significance.paired_accuracy_difference(res, ode, paired["margin"])
    assert {k: paired[k] for k in expected} == expected
    assert paired["sources"] == {"resnet": chen.FROM_RECORD, "odenet": chen.FROM_RECORD}
    # the verdict judges the records' numbers on the records' images
    paragraph = chen.verdict_paragraph(table)
    assert "Paired on the same 10,000 images" in paragraph
    # the shipped runs compressed the paper's schedule (their records' "compression"): it says so
    assert "learning-rate schedule compressed" in paragraph and "young" not in paragraph


@needs_shipped
def test_tolerance_sweep_is_the_odenet_records_cells_and_scalars(monkeypatch):
    no_live_measurement(monkeypatch)
    table = chen.table(mode="quick")
    record = records.load(NAMES["odenet"])
    assert [row["tol"] for row in table.sweep] == [1e-1, 1e-2, 1e-3, 1e-4]
    for row in table.sweep:
        tol = f"{row['tol']:.0e}"
        cell = record.cells[f"tol-{tol}"]
        assert row["test_error_percent"] == pytest.approx(100 * (1 - cell.value), abs=1e-12)
        assert row["images"] == cell.n == 10_000
        assert row["solver_error"] == record.scalars[f"solver-error-{tol}"]["value"]
        assert row["reference_images"] == record.scalars[f"solver-error-{tol}"]["n"]
        assert row["nfe_forward"] == record.scalars[f"nfe-forward-{tol}"]["value"]
        assert row["source"] == chen.FROM_RECORD


@needs_shipped
@pytest.mark.parametrize("edit", ["count", "scalar"])
def test_an_edited_record_stops_the_table_naming_make_evaluate(tmp_path, monkeypatch, edit):
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(tmp_path))
    monkeypatch.setattr(chen, "MODELS", ("odenet",))
    name = NAMES["odenet"]
    copy_checkpoint(name, tmp_path)
    # an untouched copy in the user folder is read as the shipped one is
    (row,) = chen.table().rows
    assert row["source"] == chen.FROM_RECORD and row["record"]["loaded_from"] == str(tmp_path)
    path = tmp_path / f"{name}{SUFFIX}"
    content = json.loads(path.read_text())
    if edit == "count":  # one more image right, value and bitmap left as measured
        content["cells"]["clean"]["k"] += 1
    else:  # one number of the tolerance sweep
        content["scalars"]["nfe-forward-1e-03"]["value"] += 1
    path.write_text(json.dumps(content, indent=1))
    with pytest.raises(RecordError, match="make evaluate"):
        chen.table()


@needs_shipped
def test_a_shipped_checkpoint_without_its_record_is_an_error(tmp_path, monkeypatch):
    folder = tmp_path / "shipped"
    folder.mkdir()
    copy_checkpoint(NAMES["mlp"], folder, with_record=False)
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", folder)
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(tmp_path / "empty-user-folder"))
    monkeypatch.setattr(chen, "MODELS", ("mlp",))
    with pytest.raises(RecordError, match="no evaluation record.*make evaluate"):
        chen.table(test=random_images(10))


@needs_shipped
def test_a_user_checkpoint_without_a_record_is_measured_live_and_labelled(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(tmp_path))
    monkeypatch.setattr(chen, "MODELS", ("resnet", "odenet"))
    torch.manual_seed(0)
    own = chen.EXPERIMENT.build("odenet")
    record = {"experiment": "chen", "model": "odenet", "epochs_run": 1, "test_acc": None}
    pretrained.save(own, NAMES["odenet"], record, folder=tmp_path)
    images = random_images(12).images
    shipped_resnet, _ = chen.load("resnet")
    with torch.inference_mode():  # labels the ResNet gets right: an asymmetric pairing
        labels = shipped_resnet.eval()(images).argmax(1)
    test = ImageData(images, labels, "twelve random images", split="test")
    table = chen.table(test=test)
    res_row, ode_row = table.rows
    # the shipped ResNet: its record; the reader's ODE-Net: measured now on the chapter's data
    assert res_row["source"] == chen.FROM_RECORD and res_row["eval_images"] == 10_000
    assert ode_row["source"] == chen.MEASURED_LIVE == "measured live, no evaluation record"
    assert (ode_row["data"], ode_row["eval_images"]) == ("twelve random images", 12)
    net, _ = chen.load("odenet")
    with torch.inference_mode():
        correct = net.eval()(test.images).argmax(1) == test.labels
    assert ode_row["test_error_percent"] == pytest.approx(100 * (1 - correct.double().mean()))
    assert list(table.evaluation_records) == [NAMES["resnet"]]
    # not on the same images: both networks are paired live on the chapter's data
    assert table.paired["images"] == 12 and table.paired["data"] == "twelve random images"
    assert table.paired["sources"] == {"resnet": "measured live", "odenet": "measured live"}
    assert (table.paired["a_only"], table.paired["b_only"]) == (int((~correct).sum()), 0) != (0, 0)
    assert {row["source"] for row in table.sweep} == {chen.MEASURED_LIVE}
    assert {row["images"] for row in table.sweep} == {12}
    markdown = chen.verdict_markdown(table).splitlines()
    assert "(live)" in markdown[3] and "(live)" not in markdown[2]  # odenet row, resnet row
