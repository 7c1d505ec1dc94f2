"""Issue 30, "nothing lost, nothing silently wrong": one test per defect, each failing before its
fix, plus the shape of the training loop (issue 29, item 4)."""

from __future__ import annotations

import ast
import inspect
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_model
from torch import nn

from dyndl_lite import atomic, attacks, plan, pretrained, runs, train
from dyndl_lite.__main__ import build_parser, main
from dyndl_lite.data import ImageData
from dyndl_lite.state import RunLocked, StateStore, exclusive
from dyndl_lite.train import History, Recipe, evaluate, fit

LEGACY = Path(__file__).parent / "data" / "legacy-state" / "legacy-net-seed0.state"
OFFICIAL = {"train": "MNIST train", "test": "MNIST test", "fallback": False}


def blobs(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The data the legacy fixture was trained on (64 points in R^4, label: sign of x_0)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long()


def tiny(inputs: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(inputs, 2)


def nan_net() -> nn.Module:
    net = tiny()
    with torch.no_grad():
        net.weight[0, 0] = math.nan
    return net


def finished_record(epochs: int = 1, epoch_data: list | None = None) -> dict:
    return {
        "recipe": {"epochs": epochs},
        "epochs_run": epochs,
        "data": {"train_images": 64, "fallback": False},
        "history": {"epoch_data": [OFFICIAL] * epochs if epoch_data is None else epoch_data},
    }


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "package-checkpoints"
    folder.mkdir()
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", folder)
    return folder


# 1. no path writes into, or moves out of, the package's own checkpoint folder


def test_1_the_package_folder_is_refused_as_output_source_and_user_folder(
    tmp_path, shipped, monkeypatch
):
    pretrained.save(tiny(), "test-net-seed0", finished_record(), folder=tmp_path / "user")
    shutil.copytree(tmp_path / "user", shipped, dirs_exist_ok=True)
    before = sorted(p.name for p in shipped.iterdir())
    link = tmp_path / "link"
    link.symlink_to(shipped)
    for folder in (shipped, shipped / "sub", link):
        with pytest.raises(ValueError, match="package's own checkpoint folder"):
            runs.writable_folder(folder)
        with pytest.raises(ValueError, match="package's own checkpoint folder"):
            pretrained.ship("test-net-seed0", source=folder, move=True)
    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(link))
    with pytest.raises(ValueError, match="DYNDL_CHECKPOINTS"):
        pretrained.user_dir()
    assert sorted(p.name for p in shipped.iterdir()) == before


def test_1_reproduce_ship_into_the_package_folder_is_a_one_line_error(capsys):
    before = sorted(p.name for p in pretrained.SHIPPED_DIR.iterdir())
    assert main(["reproduce", "--ship", "--out", str(pretrained.SHIPPED_DIR)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "package's own checkpoint folder" in error
    assert sorted(p.name for p in pretrained.SHIPPED_DIR.iterdir()) == before


# 2. one process per run folder


def test_2_a_second_process_on_the_same_run_gets_a_clear_error(tmp_path):
    lock = tmp_path / ".run.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from dyndl_lite.state import exclusive\n"
            f"with exclusive(__import__('pathlib').Path({str(lock)!r}), 'run'):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"pid {holder.pid}"), exclusive(lock, "run"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive(lock, "run"):  # a killed holder leaves no stale lock
        with pytest.raises(RunLocked, match="another process"), exclusive(lock, "run"):
            pass


def test_2_the_strays_of_killed_writes_are_removed_and_no_other_file(tmp_path):
    mine = [
        tmp_path / ".chen-mlp-seed0.safetensors.k2j.tmp",
        tmp_path / ".chen-mlp-seed0.json.x.tmp",
    ]
    theirs = [tmp_path / ".chen-mlp-seed1.json.y.tmp", tmp_path / "chen-mlp-seed0.json"]
    store = StateStore(tmp_path / "chen-mlp-seed0.state")
    store.folder.mkdir()
    inside = [store.folder / ".state.json.a.tmp", store.folder / ".epoch-0003.safetensors.b.tmp"]
    kept = store.folder / "epoch-0002.safetensors"
    for path in [*mine, *theirs, *inside, kept]:
        path.write_text("x")
    removed = atomic.remove_strays(tmp_path, "chen-mlp-seed0.safetensors", "chen-mlp-seed0.json")
    store.remove_strays()
    assert sorted(removed) == sorted(mine)
    assert not any(p.exists() for p in [*mine, *inside])
    assert all(p.exists() for p in [*theirs, kept])


# 3. the data of every epoch is recorded; ship refuses a run with a fallback or unrecorded epoch


def test_3_fit_records_each_epochs_data_and_ship_refuses_mixed_runs(tmp_path, shipped):
    x, y = blobs()
    official = ImageData(x, y, "official train")
    fallback = ImageData(x, y, "fallback held-out", is_fallback=True)
    history = fit(tiny(), official, Recipe("t", epochs=1, batch_size=16), progress=False)
    assert history.epoch_data == [{"train": "official train", "test": None, "fallback": False}]
    history = fit(tiny(), official, Recipe("t", 1, 16), test=fallback, progress=False)
    assert history.epoch_data[0]["fallback"] is True  # tested on the fallback: not official
    mixed = [OFFICIAL, {**OFFICIAL, "fallback": True}]
    for epoch_data in (mixed, [OFFICIAL], [OFFICIAL, train.UNRECORDED]):
        pretrained.save(tiny(), "test-net-seed0", finished_record(2, epoch_data), tmp_path, True)
        with pytest.raises(pretrained.CheckpointError, match="official data for every epoch"):
            pretrained.ship("test-net-seed0", tmp_path)
    pretrained.save(tiny(), "test-net-seed0", finished_record(2), tmp_path, overwrite=True)
    assert pretrained.ship("test-net-seed0", tmp_path).is_file()


def legacy_copy(tmp_path) -> StateStore:
    """The fixture: a state saved by the code before per-epoch data (as the running reproduction's
    state.json), epoch 1 of 2 of ``Recipe("legacy", 2, 16)`` on :func:`blobs`."""
    shutil.copytree(LEGACY, tmp_path / LEGACY.name)
    store = StateStore(tmp_path / LEGACY.name)
    assert "epoch_data" not in store.read()["history"] and store.read()["epoch"] == 1
    return store


@pytest.mark.parametrize("note", [None, plan.MIGRATED])
def test_3_a_legacy_state_resumes_and_only_reproduce_vouches_for_its_epochs(tmp_path, note):
    x, y = blobs()
    data = ImageData(x, y, "official train")
    history = fit(
        tiny(),
        data,
        Recipe("legacy", epochs=2, batch_size=16, lr=0.1),
        progress=False,
        state=legacy_copy(tmp_path),
        unrecorded=note,
    )
    assert history.epoch == [1, 2] and len(history.epoch_data) == 2
    assert history.epoch_data[1] == {"train": "official train", "test": None, "fallback": False}
    record = finished_record(2, history.as_dict()["epoch_data"])
    if note is None:  # plain train: the earlier epoch's data are unknown, so never shipped
        assert history.epoch_data[0] == train.UNRECORDED
        with pytest.raises(pretrained.CheckpointError, match="not recorded"):
            pretrained.check_epoch_data("legacy-net-seed0", record)
    else:  # reproduce never uses the fallback: recorded as official, saying so
        assert history.epoch_data[0]["recorded"] == plan.MIGRATED
        assert history.epoch_data[0]["fallback"] is False
        pretrained.check_epoch_data("legacy-net-seed0", record)


def test_3_a_legacy_state_with_another_step_count_is_not_vouched_for(tmp_path):
    x, y = blobs(32)  # 2 steps per epoch, but the saved epoch took 4: other data
    history = fit(
        tiny(),
        ImageData(x, y, "official train"),
        Recipe("legacy", epochs=2, batch_size=16, lr=0.1),
        progress=False,
        state=legacy_copy(tmp_path),
        unrecorded=plan.MIGRATED,
    )
    assert history.epoch_data[0] == train.UNRECORDED


# 4. non-finite weights are refused at save, ship and load; evaluation raises on them


def test_4_nan_weights_are_refused_everywhere(tmp_path, shipped):
    with pytest.raises(pretrained.CheckpointError, match="non-finite"):
        pretrained.save(nan_net(), "test-net-seed0", finished_record(), folder=tmp_path)
    with pytest.raises(pretrained.CheckpointError, match="non-finite"):
        StateStore(tmp_path / "state").save(
            epoch=1,
            model=nan_net(),
            optimizer=torch.optim.SGD(tiny().parameters(), lr=0.1),
            generator=torch.Generator(),
            history={},
            spec={},
        )
    # weights corrupted to NaN behind a record whose SHA-256 vouches for them
    pretrained.save(tiny(), "test-net-seed0", finished_record(), folder=tmp_path)
    weights, record_path = pretrained.paths("test-net-seed0", tmp_path)
    save_model(nan_net(), str(weights))
    record = json.loads(record_path.read_text())
    record["weights_sha256"] = pretrained.sha256(weights)
    record_path.write_text(json.dumps(record))
    for action in (
        lambda: pretrained.ship("test-net-seed0", tmp_path),
        lambda: pretrained.load(tiny(), "test-net-seed0", tmp_path),
    ):
        with pytest.raises(pretrained.CheckpointError, match="non-finite"):
            action()
    x, y = blobs()
    for measure in (evaluate, attacks.accuracy):
        with pytest.raises(FloatingPointError, match="not all finite"):
            measure(nan_net(), x, y)


# 5. a run killed between its final weights and record is finished; reproduce takes --overwrite


def tiny_experiment() -> runs.Experiment:
    return runs.Experiment(
        name="tiny",
        models=("linear",),
        build=lambda model, **options: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
        recipe=lambda model: Recipe("tiny", epochs=1, batch_size=64, lr=0.1),
        checkpoint_name=lambda model, seed: f"tiny-{model}-seed{seed}",
    )


def test_5_a_kill_between_final_weights_and_record_is_recovered(tmp_path, monkeypatch):
    real_commit = atomic.commit

    def die_before_the_record(temporary, target):
        if target.name == "tiny-linear-seed0.json":
            raise KeyboardInterrupt
        real_commit(temporary, target)

    experiment = tiny_experiment()
    options = {"train_subset": 256, "out": tmp_path, "progress": False, "device": "cpu"}
    monkeypatch.setattr(atomic, "commit", die_before_the_record)
    with pytest.raises(KeyboardInterrupt):
        runs.train(experiment, "linear", 0, **options)
    monkeypatch.setattr(atomic, "commit", real_commit)
    name = runs.resolve(experiment, "linear", 0, train_subset=256).name
    weights, record_path = pretrained.paths(name, tmp_path)
    assert weights.is_file() and not record_path.exists()  # the half-written end of a run
    runs.train(experiment, "linear", 0, **options)  # before: FileExistsError, forever
    assert pretrained.load_record(name, tmp_path)["epochs_run"] == 1
    assert not (tmp_path / f"{name}.state").exists()


def test_5_reproduce_accepts_the_overwrite_its_message_asks_for(tmp_path, monkeypatch):
    assert build_parser().parse_args(["reproduce", "--overwrite"]).overwrite
    seen = {}

    def fake_train(*args, overwrite=False, **kwargs):
        seen["overwrite"] = overwrite
        return tmp_path / "x.safetensors"

    monkeypatch.setattr(runs, "train", fake_train)
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text('[[run]]\nexperiment = "chen"\nmodel = "mlp"\nepochs = 1\n')
    assert main(["reproduce", "--plan", str(plan_file), "--out", str(tmp_path), "--overwrite"]) == 0
    assert seen == {"overwrite": True}


# 6. a state folder whose state.json was deleted is not silently restarted


def test_6_epoch_tensors_without_state_json_are_refused_after_the_first_epoch(tmp_path):
    x, y = blobs()
    store = StateStore(tmp_path / "run.state")
    fit(tiny(), (x, y), Recipe("orphan", 2, 16), progress=False, state=store)
    store.pointer.unlink()
    with pytest.raises(pretrained.CheckpointError, match="no state.json"):
        fit(tiny(), (x, y), Recipe("orphan", 3, 16), progress=False, state=store)
    assert (store.folder / "epoch-0002.safetensors").is_file()


def test_6_a_lone_first_epoch_without_state_json_restarts_the_run_and_says_so(tmp_path):
    store = legacy_copy(tmp_path)  # as a kill between the first save's two files leaves it
    store.pointer.unlink()
    x, y = blobs()
    with pytest.warns(UserWarning, match="starting the run again from epoch 1"):
        history = fit(tiny(), (x, y), Recipe("legacy", 2, 16), progress=False, state=store)
    assert history.epoch == [1, 2] and store.read()["epoch"] == 2


# 7. chapter 4's table reads a user-folder record trained on the fallback


def test_7_chen_table_reads_a_fallback_record_in_the_user_folder(tmp_path, monkeypatch):
    from dyndl_lite.experiments import chen

    monkeypatch.setenv(pretrained.CHECKPOINTS_VARIABLE, str(tmp_path))
    monkeypatch.setattr(chen, "MODELS", ("mlp",))
    record = {"experiment": "chen", "model": "mlp", "epochs_run": 1, "test_acc": None}
    record["heldout_fallback_acc"] = 0.5
    pretrained.save(chen.EXPERIMENT.build("mlp"), "chen-mlp-seed0", record, folder=tmp_path)
    g = torch.Generator().manual_seed(0)
    test = ImageData(torch.rand(20, 1, 28, 28, generator=g), torch.arange(20) % 10, "20 images")
    (row,) = chen.table(test=test).rows
    assert row["recorded_test_error_percent"] is None
    assert row["record"]["loaded_from"] == str(tmp_path)


# 8. user errors are one-line errors before training starts


@pytest.mark.parametrize(
    "text, named",
    [("run = 5\n", "list of tables"), ("[run]\nexperiment = 'chen'\n", "list of tables")],
)
def test_8_plan_shapes_and_folders_are_explained(tmp_path, capsys, text, named):
    path = tmp_path / "plan.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=named):
        plan.read(path)
    with pytest.raises(ValueError, match="is a folder"):
        plan.read(tmp_path)
    with pytest.raises(SystemExit):
        main(["reproduce", "--plan", str(tmp_path)])
    assert "is a folder" in capsys.readouterr().err


def test_8_bad_output_folders_fail_before_training(tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    arguments = ["train", "chen", "--model", "mlp", "--epochs", "1", "--train-subset", "64"]
    assert main([*arguments, "--out", str(a_file)]) == 1
    assert "is a file" in capsys.readouterr().err
    monkeypatch.setattr(runs.os, "access", lambda path, mode: False)  # as on a read-only disk
    with pytest.raises(OSError, match="cannot write checkpoints"):
        runs.writable_folder(tmp_path / "new")
    monkeypatch.undo()
    monkeypatch.setattr(runs.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 10))
    with pytest.raises(OSError, match="free"):
        runs.check_space(tmp_path, tiny())


def test_8_a_changed_architecture_is_a_checkpoint_error(tmp_path):
    x, y = blobs()
    wider = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    with pytest.raises(pretrained.CheckpointError, match="does not fit this network"):
        fit(wider, (x, y), Recipe("legacy", 2, 16, lr=0.1), progress=False,
            state=legacy_copy(tmp_path))  # fmt: skip


# 9. leftovers of the previous round


def test_9_fit_on_no_data_and_the_missing_record_message(tmp_path):
    with pytest.raises(ValueError, match="no examples"):
        fit(tiny(), (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), Recipe("t", 1))
    pretrained.save(tiny(), "test-net-seed0", {}, folder=tmp_path)
    pretrained.paths("test-net-seed0", tmp_path)[1].unlink()
    with pytest.raises(pretrained.CheckpointError, match="weights .* exist but their record"):
        pretrained.load_record("test-net-seed0", tmp_path)
    with pytest.raises(FileNotFoundError, match="not in"):
        pretrained.load_record("other-net-seed0", tmp_path)


# issue 29, item 4: the training loop in small steps, its hooks declared, one sync per epoch


def test_fit_is_small_steps_with_declared_hooks():
    tree = ast.parse(inspect.getsource(train))
    lengths = {
        f.name: f.end_lineno - f.lineno + 1
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
    }
    assert max(lengths.values()) <= 60, lengths
    assert {"_resume", "_train_epoch", "_record_epoch"} <= set(lengths)
    assert set(inspect.signature(fit).parameters).isdisjoint({"mixed_precision"})

    class Regularised(nn.Linear):
        def extra_loss(self, epoch: int) -> torch.Tensor:
            return torch.zeros(())

    assert isinstance(Regularised(1, 1), train.HasExtraLoss)
    assert not isinstance(nn.Linear(1, 1), train.HasExtraLoss | train.Scheduled)


def test_an_epoch_reads_the_device_once(monkeypatch):
    x, y = blobs()
    reads = []
    for method in ("item", "tolist"):
        real = getattr(torch.Tensor, method)

        def counted(self, _real=real, _name=method):
            reads.append(_name)
            return _real(self)

        monkeypatch.setattr(torch.Tensor, method, counted)
    history = fit(tiny(), (x, y), Recipe("t", epochs=1, batch_size=8), progress=False)
    monkeypatch.undo()
    assert len(history.step_loss) == 8 and len(reads) <= 2, reads
    assert isinstance(history, History)
