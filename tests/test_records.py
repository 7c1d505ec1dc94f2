"""Evaluation records: round trip, tamper and staleness checks, the spot check's allowance of
flipped images, and the evaluate command on a new checkpoint (tiny networks, synthetic images)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from scipy import stats

from dyndl_lite import pretrained, protocols, recorded, records
from dyndl_lite.__main__ import main
from dyndl_lite.data import ImageData
from dyndl_lite.experiments import chen, gai, yan

NAME = "yan-cnn-seed0"
IMAGES = 24


def quiet(line: str) -> None:
    pass


def network(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return yan.build("cnn").eval()


def synthetic(net: torch.nn.Module, n: int = IMAGES) -> ImageData:
    """Uniform random images labelled with ``net``'s own predictions (``net`` scores 100 %)."""
    images = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        labels = net(images).argmax(1)
    return ImageData(images, labels, "synthetic test images", split="test")


def save_checkpoint(net: torch.nn.Module, folder, overwrite: bool = False) -> None:
    record = {"experiment": "yan-clean", "model": "cnn", "seed": 0, "epochs_run": 1}
    pretrained.save(net, NAME, record, folder, overwrite=overwrite)


def rolled(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with its classes renamed ``c -> c + 1 (mod 10)``: it agrees with no label of
    :func:`synthetic`."""
    other = network(0)
    other.load_state_dict(net.state_dict())
    last = [m for m in other.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.copy_(last.weight.roll(1, 0))
        last.bias.copy_(last.bias.roll(1, 0))
    return other


@pytest.fixture(autouse=True)
def one_thread():
    """One thread (the networks are tiny); the previous count is restored for the next test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A folder holding a tiny checkpoint and its record, measured once for the module."""
    folder = tmp_path_factory.mktemp("evaluated")
    net = network(0)
    save_checkpoint(net, folder)
    data = synthetic(net)
    path = records.evaluate(NAME, folder, data, say=quiet)
    return folder, path, data, net


@pytest.fixture
def copy(evaluated, tmp_path):
    folder, path, data, net = evaluated
    target = tmp_path / "checkpoints"
    shutil.copytree(folder, target)
    return target, records.record_path(NAME, target), data, net


def test_record_round_trip(copy):
    folder, path, data, net = copy
    record = records.load(NAME, folder)
    assert path.is_file() and path.name == f"{NAME}.eval.json"
    expected = ["clean"] + [f"{k}-{s:g}" for k, s in protocols.yan_columns()]
    assert list(record.cells) == expected
    assert {"gaussian-50", "fgsm-0.15", "pgd-0.3"} <= set(record.cells)
    # the labels are the network's own predictions, so the clean cell is complete
    assert record.cells["clean"].k == record.cells["clean"].n == IMAGES
    text = json.loads(path.read_text())
    for name, cell in record.cells.items():
        assert text["cells"][name]["k"] == cell.k == int(cell.outcomes.sum())
        assert text["cells"][name]["value"] == cell.k / cell.n
    key = record.key
    assert key["weights_sha256"] == pretrained.load_record(NAME, folder)["weights_sha256"]
    assert (key["protocol"], key["protocol_version"]) == ("yan", protocols.YAN.version)
    assert record.meta["command"] == records.command_for(NAME)
    assert record.meta["cpu"] and record.meta["threads"] >= 1 and record.meta["seconds"] >= 0
    assert "protocol yan" in records.describe(record)


def test_records_are_reproducible_per_image(copy):
    """Any subset of images re-measures to the record's bits (the noise is drawn per image)."""
    folder, _, data, net = copy
    record = records.load(NAME, folder)
    index = np.array([3, 7, 19])
    found = protocols.YAN.measure(
        net, data.images[index], data.labels[index], index, ["gaussian-100", "fgsm-0.3"]
    )
    for cell, bits in found.items():
        assert (bits == record.cells[cell].outcomes[index]).all(), cell


def test_a_changed_number_fails_to_load(copy):
    folder, path, *_ = copy
    text = json.loads(path.read_text())
    cell = text["cells"]["fgsm-0.3"]
    cell["value"] = cell["value"] + 0.01
    path.write_text(json.dumps(text))
    with pytest.raises(records.RecordError, match="make evaluate") as error:
        records.load(NAME, folder)
    assert "digest" in str(error.value)


def test_a_bitmap_that_disagrees_with_its_count_fails(copy):
    folder, path, *_ = copy
    text = json.loads(path.read_text())
    cell = text["cells"]["clean"]
    cell["k"] -= 1
    cell["value"] = cell["k"] / cell["n"]
    text["digest"] = records.content_digest({k: v for k, v in text.items() if k != "digest"})
    path.write_text(json.dumps(text))
    with pytest.raises(records.RecordError, match="bitmap counts 24 correct images, k says 23"):
        records.load(NAME, folder)


def test_a_record_of_other_weights_is_stale(copy):
    folder, *_ = copy
    save_checkpoint(network(1), folder, overwrite=True)
    with pytest.raises(records.StaleRecordError, match="other weights") as error:
        records.load(NAME, folder)
    assert "make evaluate" in str(error.value)
    assert f"python -m dyndl_lite evaluate {NAME}" in str(error.value)
    assert records.status(NAME, folder) == "stale"


def test_a_record_of_an_older_protocol_is_stale(copy, monkeypatch):
    folder, *_ = copy
    newer = dataclasses.replace(protocols.YAN, version=protocols.YAN.version + 1)
    monkeypatch.setitem(protocols.PROTOCOLS, "yan", newer)
    with pytest.raises(records.StaleRecordError, match="make evaluate") as error:
        records.load(NAME, folder)
    assert f"v{newer.version}" in str(error.value)


def test_evaluate_rewrites_only_stale_records_unless_forced(copy):
    folder, path, data, _ = copy
    before = path.read_text()
    assert records.evaluate(NAME, folder, data, say=quiet) is None
    assert path.read_text() == before
    save_checkpoint(network(1), folder, overwrite=True)
    assert records.evaluate(NAME, folder, data, say=quiet) == path
    assert records.status(NAME, folder) == "current"
    assert records.evaluate(NAME, folder, data, force=True, say=quiet) == path
    assert not list(folder.glob(".*.tmp"))


def test_spot_check_passes_for_the_recorded_network(copy):
    folder, _, data, net = copy
    record = records.load(NAME, folder)
    line = records.spot_check(record, net, data, cells=3, images=12, pgd_images=6, seed=5)
    assert line.startswith(f"spot check of {NAME} (seed 5, 3 of 9 cells)")
    assert line.endswith(
        "flips within the allowance (assumed flip rate 1% per image, level 0.001 over 3 cells)"
    )
    assert line == records.spot_check(record, net, data, cells=3, images=12, pgd_images=6, seed=5)


def test_spot_check_fails_for_another_network(copy):
    folder, _, data, net = copy
    record = records.load(NAME, folder)
    with pytest.raises(records.SpotCheckError, match=r"clean: 12 flips of 12 images, allowance 2"):
        records.spot_check(record, rolled(net), data, cells=["clean"], images=12)


def test_spot_check_refuses_other_data(copy):
    folder, _, data, net = copy
    record = records.load(NAME, folder)
    other = ImageData(data.images.flip(0), data.labels.flip(0), "shuffled", split="test")
    with pytest.raises(records.RecordError, match="not on these"):
        records.spot_check(record, net, other, cells=["clean"])


@pytest.mark.parametrize("n", [1, 12, 25, 50, 200, 300, 1000, 10_000])
@pytest.mark.parametrize("cells", [1, 3, 9])
def test_the_allowance_is_the_binomial_quantile_of_the_flip_rate(n, cells):
    """``a`` is the smallest count with ``P(Binomial(n, FLIP_RATE) > a) <= SPOT_LEVEL / cells``:
    the tail beyond ``a`` is within the level, the tail beyond ``a - 1`` is not."""
    a = records.flip_allowance(n, cells)
    alpha = records.SPOT_LEVEL / cells
    assert stats.binom.sf(a, n, records.FLIP_RATE) <= alpha
    if a > 0:
        assert stats.binom.sf(a - 1, n, records.FLIP_RATE) > alpha


def test_the_allowance_grows_with_the_images_and_the_cells_checked():
    # exact values (scipy.stats.binom): 3 of 25 (P(X > 3) = 1.3e-4 <= 0.001 < P(X > 2) = 1.9e-3),
    # 10 of 300, 132 of 10,000; a 4-sigma count band at 90 % on 300 images would allow 20.8
    assert [records.flip_allowance(n) for n in (25, 300, 10_000)] == [3, 10, 132]
    sizes = [1, 10, 25, 50, 100, 300, 1000, 3000, 10_000]
    allowances = [records.flip_allowance(n) for n in sizes]
    assert allowances == sorted(allowances)
    assert allowances[-1] > allowances[0]
    # Bonferroni: more cells in one call, a smaller level per cell, a larger allowance
    by_cells = [records.flip_allowance(10_000, m) for m in (1, 3, 9, 27)]
    assert by_cells == sorted(by_cells) and by_cells[-1] > by_cells[0]
    assert records.flip_allowance(300, 9) == 11 > records.flip_allowance(300, 1)


@pytest.mark.parametrize(
    "arguments, name",
    [
        ((0,), "n"),
        ((2.5,), "n"),
        ((10, 0), "cells"),
        ((10, 1, 0.0), "rate"),
        ((10, 1, 1.0), "rate"),
        ((10, 1, 0.01, 0.0), "level"),
        ((10, 1, 0.01, 1.0), "level"),
    ],
)
def test_the_allowance_names_a_bad_argument(arguments, name):
    with pytest.raises(ValueError, match=f"^{name} "):
        records.flip_allowance(*arguments)


def _mixed(n: int = 300):
    """A network, ``n`` images it classifies correctly at odd indices only, and its outcomes."""
    net = network(0)
    data = synthetic(net, n)
    labels = data.labels.clone()
    labels[::2] = (labels[::2] + 1) % 10
    data = ImageData(data.images, labels, data.name, split="test")
    live = np.arange(n) % 2 == 1
    return net, data, live


def _record_of(bits: np.ndarray, data: ImageData) -> records.Record:
    key = {"protocol": "yan", "protocol_version": 1, **records.data_key(data)}
    return records.Record(NAME, key, {"clean": records.Cell(bits)}, {}, {})


@pytest.mark.parametrize("each_way, passes", [(5, True), (6, False), (20, False)])
def test_flips_each_way_fail_even_when_the_count_matches(each_way, passes):
    """The record flips ``each_way`` correct images to wrong and as many wrong ones to right: its
    count equals the live count (150 of 300), so a rule on counts passes them all; on 300 images
    in one cell the allowance is 10 flips, so 10 pass and 12 (or 40) fail."""
    net, data, live = _mixed(300)
    bits = live.copy()
    right, wrong = np.flatnonzero(live), np.flatnonzero(~live)
    bits[right[:each_way]] = False
    bits[wrong[:each_way]] = True
    assert bits.sum() == live.sum() == 150
    record = _record_of(bits, data)
    assert records.flip_allowance(300) == 10
    if passes:
        line = records.spot_check(record, net, data, cells=None, images=None)
        assert "clean 150/300 live vs 150 recorded (290 agree)" in line
        assert "flips within the allowance" in line
    else:
        with pytest.raises(records.SpotCheckError) as error:
            records.spot_check(record, net, data, cells=None, images=None)
        message = str(error.value)
        assert f"clean: {2 * each_way} flips of 300 images, allowance 10 (150 vs 150 correct)" in (
            message
        )
        assert f"{records.command_for(NAME)} --force" in message


def test_a_count_off_by_a_few_images_passes_and_a_lost_six_points_fails():
    """The same images, one way: 4 flips pass, 18 (6 points of 300) fail."""
    net, data, live = _mixed(300)
    for lost, passes in ((4, True), (18, False)):
        bits = live.copy()
        bits[np.flatnonzero(~live)[:lost]] = True  # the record had `lost` more right
        record = _record_of(bits, data)
        if passes:
            assert "(296 agree)" in records.spot_check(record, net, data, cells=None, images=None)
        else:
            with pytest.raises(records.SpotCheckError, match="clean: 18 flips of 300 images"):
                records.spot_check(record, net, data, cells=None, images=None)


def test_evaluate_command_writes_a_record_for_a_new_checkpoint(tmp_path, monkeypatch, capsys):
    net = network(0)
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(tmp_path))
    monkeypatch.setattr(records, "official_test_data", lambda: synthetic(net))
    save_checkpoint(net, tmp_path)
    assert main(["evaluate", NAME, "--threads", "1"]) == 0
    record = records.load(NAME, tmp_path)
    assert record.cells["clean"].k == IMAGES
    assert main(["evaluate", NAME]) == 0
    assert "record current" in capsys.readouterr().out


def test_evaluate_all_stale_measures_only_stale_shipped_records(tmp_path, monkeypatch, capsys):
    net = network(0)
    # saved before tmp_path stands for the shipped folder, where save refuses to write
    save_checkpoint(net, tmp_path)
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path)
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(tmp_path / "user"))
    monkeypatch.setattr(records, "official_test_data", lambda: synthetic(net))
    assert main(["evaluate", "--all-stale"]) == 0
    assert "1 of 1 shipped records" in capsys.readouterr().out
    assert records.status(NAME, tmp_path) == "current"
    assert main(["evaluate", "--all-stale"]) == 0
    assert "0 of 1 shipped records" in capsys.readouterr().out


def test_evaluate_command_names_a_missing_record(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(tmp_path))
    save_checkpoint(network(0), tmp_path)
    with pytest.raises(records.RecordError, match=f"evaluate {NAME}"):
        records.load(NAME, tmp_path)


def test_gai_protocol_records_accuracy_lss_and_ots():
    torch.manual_seed(0)
    net = gai.EXPERIMENT.build("resnet-wd0").eval()
    data = synthetic(net, 32)
    record = records.measure(protocols.GAI, net, data, "gai-resnet-wd0-seed0", "0" * 64)
    assert list(record.cells) == ["clean"] and record.cells["clean"].k == len(data)
    assert {"lss-32", "ots-32"} == set(record.scalars)
    assert record.scalars["lss-32"]["value"] >= 1 and 0 <= record.scalars["ots-32"]["value"] <= 1


def test_chen_protocol_records_the_tolerance_sweep():
    torch.manual_seed(0)
    net = chen.EXPERIMENT.build("odenet").eval()
    data = synthetic(net, 8)
    record = records.measure(protocols.CHEN, net, data, "chen-odenet-seed0", "0" * 64)
    assert list(record.cells) == ["clean", "tol-1e-01", "tol-1e-02", "tol-1e-03", "tol-1e-04"]
    # the labels are the network's predictions at its own tolerance, 1e-3
    assert record.cells["tol-1e-03"].k == len(data)
    assert (
        record.scalars["nfe-forward-1e-01"]["value"] <= record.scalars["nfe-forward-1e-04"]["value"]
    )


def test_record_names_cannot_leave_their_folder(tmp_path):
    assert records.record_path("yan-authors-odenet-gaussian-run1", tmp_path).parent == tmp_path
    for bad in ("../escape", "a/b", "Upper", ""):
        with pytest.raises(ValueError, match="record name"):
            records.record_path(bad, tmp_path)


def test_ship_writes_the_record_the_chapters_read(tmp_path, monkeypatch):
    net = network(0)
    recipe = {"epochs": 1}
    data = {"train_images": 64, "fallback": False}
    history = {"epoch_data": [{"train": "MNIST train", "test": "MNIST test", "fallback": False}]}
    record = {"experiment": "yan-clean", "model": "cnn", "seed": 0, "epochs_run": 1}
    pretrained.save(
        net, NAME, {**record, "recipe": recipe, "data": data, "history": history}, tmp_path / "user"
    )
    shipped = tmp_path / "package"
    shipped.mkdir()
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", shipped)
    monkeypatch.setattr(records, "official_test_data", lambda: synthetic(net))
    assert main(["ship", NAME, "--from", str(tmp_path / "user")]) == 0
    assert records.status(NAME, shipped) == "current"
    assert records.load(NAME, shipped).cells["clean"].k == IMAGES


# --------------------------------------------------------------------------- recorded.show


@pytest.fixture
def in_user_folder(copy, monkeypatch):
    """The fixture's checkpoint and record stand in the user folder, where chapters look first."""
    folder, _, data, net = copy
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(folder))
    return data, net


def test_show_reads_the_record_and_rechecks_a_seeded_sample(in_user_folder):
    data, _ = in_user_folder
    shown = recorded.show([NAME], data, "quick", seed=3, cells=2, images=10, pgd_images=5)
    assert shown.records[NAME].cells["clean"].k == IMAGES
    assert shown.lines[0].startswith("Numbers from 1 evaluation record(s)")
    assert "(seed 3, 2 of" in shown.lines[1]
    assert shown.lines[1].endswith(
        "flips within the allowance (assumed flip rate 1% per image, level 0.001 over 2 cells)"
    )
    full = recorded.show([NAME], data, "full")
    cells = len(full.records[NAME].cells)
    assert f"{cells} of {cells} cells" in full.lines[1]


def test_show_fails_when_the_live_network_disagrees_with_its_record(in_user_folder, monkeypatch):
    data, net = in_user_folder
    monkeypatch.setattr(records, "load_checkpoint", lambda name, device=None: (rolled(net), {}))
    with pytest.raises(records.SpotCheckError, match=r"clean: 24 flips of 24 images, allowance 3"):
        recorded.show([NAME], data, "full")


def test_show_skips_the_live_check_on_other_data_and_says_why(in_user_folder):
    data, net = in_user_folder
    other = synthetic(net, IMAGES + 1)
    shown = recorded.show([NAME], other, "quick")
    assert len(shown.lines) == 2 and "Live check skipped" in shown.lines[1]


@pytest.mark.parametrize("mode, names, error", [("slow", [NAME], "mode"), ("quick", [], "names")])
def test_show_names_the_bad_argument(in_user_folder, mode, names, error):
    with pytest.raises(ValueError, match=error):
        recorded.show(names, in_user_folder[0], mode)


def test_draw_takes_distinct_pairs_reproducibly_from_every_record():
    cells = {c: records.Cell(np.ones(4, bool)) for c in ("clean", "fgsm-0.3", "pgd-0.2")}
    loaded = {n: records.Record(n, {}, cells, {}, {}) for n in ("a", "b")}
    chosen = recorded.draw(loaded, 4, seed=0)
    pairs = [(n, c) for n, cs in chosen.items() for c in cs]
    assert len(set(pairs)) == 4 and chosen == recorded.draw(loaded, 4, seed=0)
    assert sum(map(len, recorded.draw(loaded, 99, seed=1).values())) == 6
