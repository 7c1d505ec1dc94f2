"""Chapter 6's tables read the networks' evaluation records (issue 27): the numbers are the
records', an edited record stops the table, and a reader's own checkpoint without a record is
measured live and says so."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from dyndl_lite import pretrained, records
from dyndl_lite.experiments import yan
from dyndl_lite.experiments.yan_measure import seed_images
from dyndl_lite.protocols import cell_name
from dyndl_lite.record_format import RecordError, record_path

SEED0_CLEAN = [yan.checkpoint_name(model, 0, "clean") for model in yan.MODELS]


def test_the_table_is_the_records_numbers_on_all_test_images(shipped_seed0):
    result = yan.table("clean", "quick")
    assert result.from_records and "evaluation records" in result.data
    assert result.images == 10_000 and result.pgd_images == 1_000
    assert set(result.images_per_seed.values()) == {10_000}
    assert result.same_images  # every seed's record counts the same 10,000 images
    assert set(result.rows) == set(yan.MODELS)
    for model, row in result.rows.items():
        record = records.load(yan.run_checkpoint(model, 0, "clean", result.epochs))
        expected = [100 * record.cells[cell_name(*c)].value for c in result.column_specs]
        assert row["seeds"] == [pytest.approx(expected)]
        assert row["clean"] == [100 * record.cells["clean"].value]


def copy_checkpoints(names: list[str], folder, with_records: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        for path in pretrained.paths(name, pretrained.SHIPPED_DIR):
            shutil.copy(path, folder / path.name)
        if with_records:
            shutil.copy(record_path(name, pretrained.SHIPPED_DIR), folder)


@pytest.fixture
def shipped_seed0(tmp_path, monkeypatch):
    """Seed 0's clean-trained networks and their records, alone in the shipped folder."""
    shipped = tmp_path / "shipped"
    copy_checkpoints(SEED0_CLEAN, shipped)
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", shipped)
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(tmp_path / "user"))
    return shipped


def test_an_edited_record_stops_the_table_naming_make_evaluate(shipped_seed0):
    path = record_path(SEED0_CLEAN[1], shipped_seed0)
    record = json.loads(path.read_text())
    record["cells"]["fgsm-0.3"]["k"] += 1  # one number changed by hand
    path.write_text(json.dumps(record))
    with pytest.raises(RecordError, match="make evaluate"):
        yan.table("clean", "quick")


def test_a_shipped_network_without_a_record_stops_the_table_naming_make_evaluate(shipped_seed0):
    record_path(SEED0_CLEAN[0], shipped_seed0).unlink()
    with pytest.raises(RecordError, match="make evaluate"):
        yan.table("clean", "quick")


def test_every_shipped_checkpoint_has_a_current_record():
    assert records.stale(records.shipped_names(), pretrained.SHIPPED_DIR) == []


@pytest.mark.slow  # measures three networks live on MNIST
def test_your_own_checkpoint_without_a_record_is_measured_live(tmp_path, monkeypatch):
    user = tmp_path / "user"
    copy_checkpoints(SEED0_CLEAN[:1], user, with_records=False)
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(user))
    monkeypatch.setitem(yan.ATTACK_IMAGES, "quick", 40)
    monkeypatch.setitem(yan.PGD_IMAGES, "quick", 10)
    result = yan.table("clean", "quick", seeds=[0])
    assert not result.from_records
    assert f"measured live (no evaluation record yet: {SEED0_CLEAN[0]})" in result.data
    assert result.images == 40 and result.records[SEED0_CLEAN[0]]["loaded_from"] == str(user)


@pytest.mark.parametrize(
    "shared, same_images", [(True, False), (False, True)], ids=["shared-out", "same"]
)
def test_the_table_says_whether_its_seeds_share_the_same_images(shared, same_images):
    """Quick mode shares the images out (disjoint per seed): the seeds' image errors are
    independent. Records, full mode and SVHN/ImgNet10 give every seed the same images."""
    shares = dict(enumerate(seed_images(100, 20, 2, shared=shared)))
    rows = {m: {"seeds": [[90.0] * 9] * 2} for m in ("cnn", "odenet")}
    table = yan._yan_table("clean", ("test accuracy", False, "d", "quick"), shares, rows,
                           epochs=1, records={})  # fmt: skip
    assert table.same_images is same_images
    # an overlap that is not complete is read as shared: the bound for shared images holds anyway
    overlap = {0: (torch.arange(60), 10), 1: (torch.arange(40, 100), 10)}
    assert yan._yan_table("clean", ("a", False, "d", "quick"), overlap, rows,
                          epochs=1, records={}).same_images  # fmt: skip
