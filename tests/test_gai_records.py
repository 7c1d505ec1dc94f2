"""Chapter 10's table reads the shipped networks' evaluation records (protocol gai: test accuracy,
mean LSS and exact OTS on all 10,000 MNIST test images) in every mode; a reader's own checkpoint
without a record is measured live and says so; an edited or stale record, or a shipped checkpoint
without one, is an error naming ``make evaluate``; the live re-checks of LSS and OTS fail on a
number that is not the record's."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from dyndl_lite import data, pretrained, records, verdicts
from dyndl_lite.experiments import gai, gai_report
from dyndl_lite.record_format import SUFFIX, RecordError

GAMMA = 5e-4  # the weight decay whose residual network the tests copy into the user folder
RESIDUAL = gai.checkpoint_name(gai.model_name(True, GAMMA))
PLAIN = gai.checkpoint_name(gai.model_name(False, GAMMA))
needs_mnist = pytest.mark.skipif(
    not (data.data_root() / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").exists(),
    reason="no official MNIST copy in $DYNDL_DATA (CI points it at ../shared/data)",
)


def stand_in(n: int = 60) -> data.ImageData:
    """Random images flagged as the offline fallback's held-out split: not the records' data."""
    images = torch.rand((n, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    return data.ImageData(images, torch.arange(n) % 10, "stand-in", is_fallback=True, split="test")


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """An empty user folder, where the chapters look before the shipped checkpoints."""
    folder = tmp_path / "user"
    folder.mkdir()
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(folder))
    return folder


def copy_checkpoint(name: str, folder, with_record: bool) -> None:
    """Checkpoint ``name``'s weights and training record (and its evaluation record) into
    ``folder``."""
    for path in pretrained.paths(name, pretrained.SHIPPED_DIR):
        shutil.copy(path, folder / path.name)
    if with_record:
        shutil.copy(pretrained.SHIPPED_DIR / f"{name}{SUFFIX}", folder / f"{name}{SUFFIX}")


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_table_numbers_are_the_records_in_every_mode_whatever_the_data(mode):
    table = gai.table(mode=mode, test=stand_in())
    assert len(table.rows) == 2 * len(table.weight_decays) > 0
    for row in table.rows:
        record = records.load(row["checkpoint"])
        clean = record.cells["clean"]
        lss, ots = record.scalars["lss-10000"], record.scalars["ots-10000"]
        assert row["source"] == gai_report.FROM_RECORD
        assert row["test_acc"] == clean.value == clean.k / 10_000
        # the per-image outcomes the paired accuracy difference uses are the record's own
        assert row["correct"].dtype == bool and (row["correct"] == clean.outcomes).all()
        assert (row["lss"], row["lss_se"], row["lss_left_out"]) == (
            lss["value"],
            lss["se"],
            lss["left_out"],
        )
        assert row["ots"] == ots["value"]
        assert (row["eval_images"], row["ots_points"]) == (clean.n, 10_000) == (10_000, 10_000)
        assert row["record"]["weights_sha256"] == record.key["weights_sha256"]
    assert (table.images, table.ots_points, table.fallback) == (10_000, 10_000, False)
    assert table.accuracy_label == "test accuracy"
    assert table.data.startswith("MNIST test (official, 10,000 images), from the networks' eval")
    lines = gai.table_lines(table)
    assert not any("†" in line for line in lines)
    # test accuracies are compared image by image, on the records' outcomes
    assert all(r["paired"] for r in verdicts.generalizes_better(table.rows))


def test_an_edited_record_is_an_error_naming_make_evaluate(user_folder):
    copy_checkpoint(RESIDUAL, user_folder, with_record=True)
    path = user_folder / f"{RESIDUAL}{SUFFIX}"
    content = json.loads(path.read_text())
    content["scalars"]["lss-10000"]["value"] = 1.0  # straighter than measured
    path.write_text(json.dumps(content))
    with pytest.raises(RecordError, match="make evaluate"):
        gai.table(test=stand_in())


def test_a_record_of_other_weights_is_stale_and_names_make_evaluate(user_folder):
    copy_checkpoint(RESIDUAL, user_folder, with_record=True)
    # the reader retrained the network: new weights, their training record, the old evaluation
    weights, training = pretrained.paths(RESIDUAL, user_folder)
    other = gai.checkpoint_name(gai.model_name(True, 0.0))
    shutil.copy(pretrained.paths(other, pretrained.SHIPPED_DIR)[0], weights)
    content = json.loads(training.read_text())
    training.write_text(json.dumps({**content, "weights_sha256": pretrained.sha256(weights)}))
    with pytest.raises(records.StaleRecordError, match="other weights.*make evaluate"):
        gai.table(test=stand_in())


def test_a_shipped_checkpoint_without_a_record_is_an_error(tmp_path, monkeypatch):
    shipped = tmp_path / "package"
    shipped.mkdir()
    for name in (RESIDUAL, PLAIN):
        copy_checkpoint(name, shipped, with_record=name == PLAIN)
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", shipped)
    with pytest.raises(RecordError, match=f"{RESIDUAL} has no evaluation record.*make evaluate"):
        gai.table(test=stand_in())


def test_a_user_checkpoint_without_a_record_is_measured_live_with_its_twin(user_folder):
    copy_checkpoint(RESIDUAL, user_folder, with_record=False)
    test = stand_in()
    table = gai.table(mode="quick", test=test)
    rows = {(r["network"], r["weight_decay"]): r for r in table.rows}
    residual, plain = rows["residual", GAMMA], rows["plain", GAMMA]
    assert residual["source"] == gai_report.LIVE_NO_RECORD == "measured live, no evaluation record"
    assert plain["source"] == gai_report.LIVE_TWIN
    for row, name in ((residual, "resnet-wd5e-4"), (plain, "plain-wd5e-4")):
        model, _ = gai.load(name)
        live = gai.evaluate_row(model, test, gai.OTS_POINTS_BY_MODE["quick"])
        correct = live.pop("correct")
        assert {k: row[k] for k in live} == live
        assert (row["correct"] == correct).all() and correct.sum() == round(
            live["test_acc"] * len(test)
        )
        assert (row["eval_images"], row["ots_points"]) == (len(test), len(test))
    assert residual["record"]["loaded_from"] == str(user_folder)
    others = [r for key, r in rows.items() if key[1] != GAMMA]
    assert others and all(r["source"] == gai_report.FROM_RECORD for r in others)
    assert table.fallback and "γ = 0.0005 measured live on stand-in" in table.data
    lines = gai.table_lines(table)
    assert sum("† measured live, no evaluation record" in line for line in lines) == 1
    assert sum(f"† {gai_report.LIVE_TWIN}" in line for line in lines) == 1
    assert "measured live" in gai.verdict_paragraph(table)
    # both networks of the live pair were scored on the same images: their difference is paired
    paired = {r["weight_decay"]: r for r in verdicts.generalizes_better(table.rows)}
    assert paired[GAMMA]["paired"] and paired[GAMMA]["images"] == len(test)


def test_scalar_checks_are_skipped_on_other_data_and_say_why():
    loaded = {RESIDUAL: records.load(RESIDUAL)}
    lines = gai_report.recheck_scalars(loaded, stand_in(), "quick")
    assert len(lines) == 1 and lines[0].startswith("Live re-check of LSS and OTS skipped")
    lines = gai_report.ots_against_record(
        loaded[RESIDUAL], [{"points": 60, "ots": 1.0}], stand_in()
    )
    assert len(lines) == 1 and lines[0].startswith("Not compared")
    with pytest.raises(ValueError, match="mode"):
        gai_report.recheck_scalars(loaded, stand_in(), "slow")


def test_compare_scalar_passes_the_record_and_fails_outside_its_tolerance():
    record = records.load(RESIDUAL)
    lss = record.scalars["lss-10000"]
    assert "0 vs 0 tracks left out" in gai_report.compare_scalar(
        record, "lss-10000", lss["value"], lss["left_out"]
    )
    off = lss["value"] + 2 * gai_report.LSS_TOLERANCE_SE * lss["se"]
    with pytest.raises(records.SpotCheckError, match="evaluate gai-resnet-wd5e-4-seed0 --force"):
        gai_report.compare_scalar(record, "lss-10000", off, lss["left_out"])
    ots = record.scalars["ots-2000"]["value"]
    assert "matched live" in gai_report.compare_scalar(record, "ots-2000", ots)
    with pytest.raises(records.SpotCheckError, match="ots-2000"):
        gai_report.compare_scalar(record, "ots-2000", ots - 0.1)
    with pytest.raises(ValueError, match="not in the record"):
        gai_report.compare_scalar(record, "ots-7", 1.0)


@needs_mnist
def test_live_scalar_checks_reproduce_the_records_and_catch_an_edited_one():
    test = data.load_mnist("test", allow_fallback=False)
    loaded = {RESIDUAL: records.load(RESIDUAL)}
    (line,) = gai_report.recheck_scalars(loaded, test, "quick", seed=0)
    assert line.startswith(f"scalar re-check of {RESIDUAL} (seed 0, 1 of 4 scalars")
    by_m = gai.ots_against_points(gai.load("resnet-wd5e-4")[0], test, (250, 2000))
    (compared,) = gai_report.ots_against_record(loaded[RESIDUAL], by_m, test)
    assert "ots-2000" in compared
    lss = loaded[RESIDUAL].scalars["lss-10000"]
    edited = {**loaded[RESIDUAL].scalars, "lss-10000": {**lss, "value": lss["value"] + 0.01}}
    wrong = {RESIDUAL: dataclasses.replace(loaded[RESIDUAL], scalars=edited)}
    with pytest.raises(records.SpotCheckError, match="lss-10000"):
        gai_report.recheck_scalars(wrong, test, "quick", seed=0)
