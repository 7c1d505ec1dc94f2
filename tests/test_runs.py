"""Training survives interruption: resumable runs, atomic checkpoints, fail-fast divergence, the
command line, plans."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from dyndl_lite import atomic, experiments, plan, pretrained, runs
from dyndl_lite.__main__ import main
from dyndl_lite.data import load_mnist
from dyndl_lite.experiments import chen, gai, yan
from dyndl_lite.state import StateStore
from dyndl_lite.train import History, Recipe, TrainingDiverged, fit

ROOT = Path(__file__).resolve().parents[1]


def blobs(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    return torch.randn(n, 2, generator=g) + 3 * y[:, None].float(), y


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))


class StopAfter(Exception):
    pass


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resumed_fit_is_bitwise_identical_to_an_uninterrupted_one(tmp_path, optimizer):
    data = blobs()
    recipe = Recipe(
        "t",
        epochs=4,
        batch_size=32,
        optimizer=optimizer,
        lr=0.05,
        milestones=(2,),
        crop_padding=0,
        noise_prob=0.5,
        noise_sigmas=(50.0,),
    )
    straight = small_net()
    fit(straight, data, recipe, seed=3, progress=False)

    def interrupt(epoch, model, history):
        if epoch == 2:  # epoch 1's state is saved; epoch 2 is lost, as after a Ctrl-C
            raise StopAfter

    store = StateStore(tmp_path / "state")
    interrupted = small_net()
    with pytest.raises(StopAfter):
        fit(interrupted, data, recipe, seed=3, progress=False, state=store, callback=interrupt)
    assert store.read()["epoch"] == 1
    # a fresh process: same initialisation, everything else comes from the state
    resumed = small_net()
    history = fit(resumed, data, recipe, seed=3, progress=False, state=store)
    assert history.epoch == [1, 2, 3, 4] and history.lr == pytest.approx([0.05, 0.05, 0.005, 0.005])
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_a_state_of_another_run_is_not_resumed(tmp_path):
    store = StateStore(tmp_path / "state")
    fit(
        small_net(),
        blobs(),
        Recipe("t", epochs=1, batch_size=32),
        seed=0,
        progress=False,
        state=store,
    )
    with pytest.raises(ValueError, match="belongs to another run"):
        fit(
            small_net(),
            blobs(),
            Recipe("t", epochs=2, batch_size=32),
            seed=0,
            progress=False,
            state=store,
        )


def test_divergence_stops_at_once_and_saves_nothing(tmp_path):
    store = StateStore(tmp_path / "state")
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+ \(learning rate 1e\+30\)"):
        fit(
            small_net(),
            blobs(),
            Recipe("t", epochs=3, batch_size=32, lr=1e30),
            progress=False,
            state=store,
        )
    assert not store.exists() and not (tmp_path / "state").exists()


def test_history_round_trips_through_strict_json():
    history = History(
        epoch=[1], loss=[0.5], train_acc=[float("nan")], extra={"dynamics": {"lss": [1.2]}}
    )
    text = pretrained.dump_record(history.as_dict())
    assert "NaN" not in text
    back = History.from_dict(json.loads(text))
    assert (
        back.epoch == [1]
        and back.extra == {"dynamics": {"lss": [1.2]}}
        and back.train_acc[0] != back.train_acc[0]
    )


# --------------------------------------------------------------------------- checkpoints


def test_save_refuses_to_overwrite_and_records_are_strict_json(tmp_path):
    pretrained.save(small_net(), "test-net-seed0", {"value": float("nan")}, folder=tmp_path)
    assert json.loads((tmp_path / "test-net-seed0.json").read_text())["value"] is None
    with pytest.raises(FileExistsError, match="overwrite"):
        pretrained.save(small_net(), "test-net-seed0", {}, folder=tmp_path)
    pretrained.save(small_net(), "test-net-seed0", {"value": 2}, folder=tmp_path, overwrite=True)
    assert pretrained.load_record("test-net-seed0", tmp_path)["value"] == 2
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("old_pair", [False, True])
def test_a_save_killed_between_the_two_files_leaves_the_old_pair_or_none(
    tmp_path, monkeypatch, old_pair
):
    if old_pair:
        pretrained.save(small_net(), "test-net-seed0", {"value": "old"}, folder=tmp_path)
    real_commit, calls = atomic.commit, []

    def die_after_weights(temporary, target):
        calls.append(target)
        if len(calls) == 2:  # the weights are in place, the record is not
            raise KeyboardInterrupt
        real_commit(temporary, target)

    monkeypatch.setattr(atomic, "commit", die_after_weights)
    other = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    with pytest.raises(KeyboardInterrupt):
        pretrained.save(other, "test-net-seed0", {"value": "new"}, folder=tmp_path, overwrite=True)
    monkeypatch.setattr(atomic, "commit", real_commit)
    # the old record was removed before the weights were replaced: no pair at all,
    # never a mismatched one
    assert not pretrained.exists("test-net-seed0", tmp_path)
    # a lone weights file: an error saying the record is missing (the old "Train it" advice was
    # wrong: rerunning the training finishes it); no pair: "not in" the folder
    with pytest.raises(OSError, match="record"):
        pretrained.load(small_net(), "test-net-seed0", tmp_path)
    assert not list(tmp_path.glob(".*.tmp"))


def test_load_requires_the_sha_and_the_right_network(tmp_path):
    pretrained.save(
        small_net(), "test-net-seed0", {"experiment": "toy", "model": "a"}, folder=tmp_path
    )
    record = pretrained.load(
        small_net(), "test-net-seed0", tmp_path, expect={"experiment": "toy", "model": "a"}
    )
    assert record["loaded_from"] == str(tmp_path)
    with pytest.raises(pretrained.CheckpointError, match="model='a'"):
        pretrained.load(small_net(), "test-net-seed0", tmp_path, expect={"model": "b"})
    path = tmp_path / "test-net-seed0.json"
    saved = json.loads(path.read_text())
    del saved["weights_sha256"]
    path.write_text(json.dumps(saved))
    with pytest.raises(pretrained.CheckpointError, match="weights_sha256"):
        pretrained.load(small_net(), "test-net-seed0", tmp_path)
    path.write_text("{not json")
    with pytest.raises(pretrained.CheckpointError, match="test-net-seed0.json"):
        pretrained.load(small_net(), "test-net-seed0", tmp_path)


def test_the_user_folder_is_searched_before_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNDL_CHECKPOINTS", str(tmp_path))
    assert pretrained.locate("chen-mlp-seed0") == pretrained.SHIPPED_DIR
    pretrained.save(
        nn.Linear(784, 10),
        "chen-mlp-seed0",
        {"experiment": "chen", "model": "mlp"},
        folder=tmp_path,
    )
    assert pretrained.locate("chen-mlp-seed0") == tmp_path


OFFICIAL = {"train": "MNIST train", "test": "MNIST test", "fallback": False}


def finished_record(**changes) -> dict:
    record = {
        "recipe": {"epochs": 2},
        "epochs_run": 2,
        "data": {"train_images": 1000, "fallback": False},
    }
    record.update(changes)
    record["history"] = {"epoch_data": [OFFICIAL] * record["epochs_run"]}
    return record


def test_ship_checks_the_record_and_never_replaces_a_longer_run(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", shipped)
    shipped.mkdir()
    source = tmp_path / "user"
    pretrained.save(small_net(), "test-net-seed0", finished_record(epochs_run=1), folder=source)
    with pytest.raises(pretrained.CheckpointError, match="1 of 2 epochs"):
        pretrained.ship("test-net-seed0", source)
    pretrained.save(
        small_net(),
        "test-net-seed0",
        finished_record(data={"train_images": 5, "fallback": True}),
        folder=source,
        overwrite=True,
    )
    with pytest.raises(pretrained.CheckpointError, match="fallback"):
        pretrained.ship("test-net-seed0", source)
    pretrained.save(small_net(), "test-net-seed0", finished_record(), folder=source, overwrite=True)
    pretrained.ship("test-net-seed0", source)
    assert pretrained.load_record("test-net-seed0", shipped)["epochs_run"] == 2
    shorter = finished_record(recipe={"epochs": 1}, epochs_run=1)
    pretrained.save(small_net(), "test-net-seed0", shorter, folder=source, overwrite=True)
    with pytest.raises(pretrained.CheckpointError, match="trained longer"):
        pretrained.ship("test-net-seed0", source)
    pretrained.ship("test-net-seed0", source, replace=True, move=True)
    assert pretrained.load_record("test-net-seed0", shipped)["epochs_run"] == 1
    assert not pretrained.exists("test-net-seed0", source)


@pytest.mark.parametrize("experiment, kept", [("chen", True), ("yan-gaussian", False)])
def test_ship_keeps_per_step_curves_only_where_a_chapter_reads_them(
    tmp_path, monkeypatch, experiment, kept
):
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path / "shipped")
    (tmp_path / "shipped").mkdir()
    record = finished_record(experiment=experiment)
    steps = {"step_loss": [2.3, 1.1], "step_nfe_forward": [8, 8], "step_nfe_backward": [0, 0]}
    record["history"].update(steps, loss=[1.7, 0.9])
    pretrained.save(small_net(), "test-net-seed0", record, folder=tmp_path / "user")
    pretrained.ship("test-net-seed0", tmp_path / "user")
    history = pretrained.load_record("test-net-seed0", tmp_path / "shipped")["history"]
    assert history["loss"] == [1.7, 0.9]  # the per-epoch history always stays
    assert all((key in history) == kept for key in pretrained.STEP_CURVES)


def test_every_shipped_record_is_in_its_shipped_form():
    """A record shipped before per-step curves were dropped would hold 0.9 MB per 100 epochs."""
    for path in pretrained.SHIPPED_DIR.glob("*-seed*.json"):
        if not path.name.endswith(".eval.json"):
            record = json.loads(path.read_text())
            assert pretrained.shipped_form(record) == record, path.name


# ----------------------------------------------------------------- runs, the command line and plans


@pytest.fixture(scope="module")
def official_mnist():
    try:
        load_mnist("test", allow_fallback=False)
    except FileNotFoundError:
        pytest.skip("needs the official MNIST files ($DYNDL_DATA)")


def test_train_writes_an_honest_record_and_refuses_to_overwrite(tmp_path, official_mnist):
    lines = []
    path = chen.train(
        "mlp", 0, epochs=2, train_subset=512, out=tmp_path, progress=False, report=lines.append
    )
    assert [line.split(":")[0] for line in lines] == [
        "chen-mlp-2ep-seed0 epoch 1/2",
        "chen-mlp-2ep-seed0 epoch 2/2",
    ]
    record = pretrained.load_record("chen-mlp-2ep-seed0", tmp_path)
    assert (
        path == tmp_path / "chen-mlp-2ep-seed0.safetensors"
        and not (tmp_path / "chen-mlp-2ep-seed0.state").exists()
    )
    assert (
        record["epochs_run"] == 2
        and record["full_recipe_epochs"] == 160
        and record["recipe"]["epochs"] == 2
    )
    assert record["data"] == {
        "train": "MNIST train (official, 60,000 images)",
        "train_images": 512,
        "fallback": False,
        "test": "MNIST test (official, 10,000 images)",
        "test_images": 10_000,
    }
    assert (
        record["threads"] == torch.get_num_threads()
        and record["device"] == "cpu"
        and "mode" not in record
    )
    assert "compressed: 2 of the paper's 160 epochs" in record["compression"]
    assert 0.0 < record["test_acc"] <= 1.0 and len(record["history"]["test_acc"]) == 2
    with pytest.raises(FileExistsError):
        chen.train("mlp", 0, epochs=2, train_subset=512, out=tmp_path, progress=False)


def test_train_refuses_the_fallback_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNDL_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("DYNDL_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="allow"):
        chen.train("mlp", 0, epochs=1, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "arguments, named",
    [
        (["train", "chen", "--model", "mlp", "--epochs", "0"], "--epochs"),
        (["train", "chen", "--model", "mlp", "--seed", "-3"], "--seed"),
        (["train", "chen", "--model", "mlp", "--threads", "-1"], "--threads"),
        (["train", "chen", "--model", "mlp", "--train-subset", "0"], "--train-subset"),
        (["train", "chen", "--model", "mlp", "--device", "tpu"], "--device"),
        (["train", "chen", "--model", "nope"], "no model 'nope'"),
        (["train", "nope", "--model", "mlp"], "unknown experiment"),
        (["reproduce", "--budget-minutes", "-5"], "budget"),
    ],
)
def test_bad_arguments_are_usage_errors_that_name_the_argument(arguments, named, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert named in error and "Traceback" not in error


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_cuda_without_cuda_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "chen", "--model", "mlp", "--device", "cuda"])
    assert exit_.value.code == 2 and "CUDA is not available" in capsys.readouterr().err


def command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "dyndl_lite", *arguments]


@pytest.mark.slow  # trains or evaluates on MNIST: left out of make test-fast
def test_sigint_after_the_first_epoch_then_resume_gives_the_same_weights(tmp_path, official_mnist):
    arguments = [
        "train",
        "chen",
        "--model",
        "mlp",
        "--epochs",
        "4",
        "--train-subset",
        "10000",
        "--no-progress",
        "--threads",
        "1",
    ]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(
        command(*arguments, "--out", str(tmp_path / "straight")),
        check=True,
        env=environment,
        capture_output=True,
    )
    interrupted = tmp_path / "interrupted"
    pointer = interrupted / "chen-mlp-4ep-seed0.state" / "state.json"
    # started as `nohup ... &` from a script starts it: with SIGINT ignored,
    # which the command line must undo
    process = subprocess.Popen(
        command(*arguments, "--out", str(interrupted)),
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    deadline = time.monotonic() + 120
    while not pointer.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 130, error.decode()
    assert json.loads(pointer.read_text())["epoch"] < 4 and not pretrained.exists(
        "chen-mlp-4ep-seed0", interrupted
    )
    subprocess.run(
        command(*arguments, "--out", str(interrupted)),
        check=True,
        env=environment,
        capture_output=True,
    )
    a = load_file(str(tmp_path / "straight" / "chen-mlp-4ep-seed0.safetensors"))
    b = load_file(str(interrupted / "chen-mlp-4ep-seed0.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_plan_completes_over_several_calls_with_a_budget_shorter_than_a_run(
    tmp_path, official_mnist
):
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        "".join(
            f'[[run]]\nexperiment = "chen"\nmodel = "mlp"\n'
            f"seed = {seed}\nepochs = 3\ntrain_subset = 256\n\n"
            for seed in (0, 1)
        )
    )
    planned, out = plan.read(plan_file), tmp_path / "out"
    assert [r["status"] for r in plan.ledger(planned, out)] == ["new", "new"]
    calls, done = 0, []
    while calls < 10:
        rows = plan.walk(planned, out, budget_s=1e-3, progress=False, say=lambda line: None)
        calls += 1
        done.append(sum(r["epochs_done"] for r in rows))
        if all(r["status"] == "finished" for r in rows):
            break
    assert all(r["status"] == "finished" for r in rows)
    assert done == sorted(done) and len(set(done)) == len(done)  # every call made progress
    # the budget stopped the walk before a single run could finish (one epoch per call here)
    assert calls >= 3


@pytest.mark.slow  # trains or evaluates on MNIST: left out of make test-fast
def test_a_run_tells_the_network_its_length(tmp_path, official_mnist, monkeypatch):
    mnist = runs._mnist

    # every epoch ends in a test pass, slow for the TisODE: 64 test images are enough here
    def first_images(device, allow_fallback):
        train_data, test = mnist(device, allow_fallback)
        return train_data, dataclasses.replace(
            test, images=test.images[:64], labels=test.labels[:64]
        )

    monkeypatch.setattr(runs, "_mnist", first_images)
    yan.train("tisode", 0, epochs=2, train_subset=128, out=tmp_path, progress=False)
    record = pretrained.load_record("yan-tisode-2ep-seed0", tmp_path)
    assert "epoch_steady=1" in record["model_settings"]  # 5 of 100 epochs, scaled to a 2-epoch run


def test_the_book_plan_is_valid_and_in_priority_order():
    planned = plan.read()
    names = [p.resolve().name for p in planned]
    assert names[:8] == [
        "chen-mlp-seed0",
        "chen-resnet-seed0",
        "chen-rknet-seed0",
        "chen-odenet-seed0",
        "yan-cnn-seed0",
        "yan-odenet-seed0",
        "yan-cnn-gaussian-seed0",
        "yan-odenet-gaussian-seed0",
    ]
    assert {p.seed for p in planned if p.experiment.startswith("yan")} == {0, 1, 2}
    assert {p.model for p in planned if p.experiment == "gai"} == set(experiments.get("gai").models)
    tisode = [p for p in planned if p.model == "tisode"]
    assert len(tisode) == 6 and planned[-6:] == tisode  # after the runs of the paper's tables
    assert all(p.epochs >= 10 for p in planned if p.experiment != "gai")


def test_the_paper_plan_runs_the_full_recipes_under_names_that_say_their_length():
    planned = plan.read(plan.PLANS / "paper.toml")
    resolved = [p.resolve() for p in planned]
    assert [r.name for r in resolved[:5]] == [
        "yan-cnn-gaussian-100ep-seed0",
        "yan-odenet-gaussian-100ep-seed0",
        "yan-cnn-100ep-seed0",
        "yan-odenet-100ep-seed0",
        "yan-tisode-gaussian-100ep-seed0",
    ]
    assert all(r.recipe == r.full_recipe for r in resolved)  # nothing compressed
    assert {r.recipe.milestones for r in resolved if r.experiment.name.startswith("yan")} == {
        (30, 60, 90)
    }
    assert {p.seed for p in planned} == {0, 1, 2}
    assert [r.name for r in resolved if r.experiment.name == "chen"][0] == "chen-mlp-160ep-seed0"


def test_a_run_of_the_books_length_keeps_the_plain_name_and_any_other_says_its_length():
    clean = experiments.get("yan-clean")
    assert runs.resolve(clean, "odenet", 2, epochs=10).name == "yan-odenet-seed2"
    assert runs.resolve(clean, "odenet", 2, epochs=3).name == "yan-odenet-3ep-seed2"
    assert runs.resolve(clean, "odenet", 2).name == "yan-odenet-100ep-seed2"  # the full recipe
    assert runs.resolve(experiments.get("chen"), "mlp", 0, epochs=40).name == "chen-mlp-seed0"
    # Gai & Zhang's book runs are the full recipe: the plain name at any length but theirs
    assert runs.resolve(experiments.get("gai"), "resnet-wd0", 0).name == "gai-resnet-wd0-seed0"


def test_a_bad_plan_is_explained(tmp_path):
    bad = tmp_path / "plan.toml"
    bad.write_text('[[run]]\nexperiment = "chen"\nmodel = "transformer"\n')
    with pytest.raises(ValueError, match="run 1: experiment 'chen' has no model 'transformer'"):
        plan.read(bad)
    bad.write_text('[[run]]\nexperiment = "chen"\nmodel = "mlp"\nepoch = 3\n')
    with pytest.raises(ValueError, match="may have"):
        plan.read(bad)


def test_written_files_have_the_usual_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    pretrained.save(small_net(), "test-net-seed0", {}, folder=tmp_path)
    StateStore(tmp_path / "state").save(
        epoch=1,
        model=small_net(),
        optimizer=torch.optim.SGD(small_net().parameters(), lr=0.1),
        generator=torch.Generator(),
        history={},
        spec={},
    )
    for path in [*tmp_path.glob("*.*"), *(tmp_path / "state").iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_the_test_session_and_the_book_build_see_an_empty_user_folder():
    # set in conftest.py, so the book executes from the shipped checkpoints alone
    assert pretrained.user_dir() == Path(os.environ["DYNDL_CHECKPOINTS"])
    assert not any(pretrained.user_dir().glob("*.safetensors"))


def test_a_gai_run_records_lss_through_training_and_snapshots_on_one_basis(
    tmp_path, official_mnist
):
    gai.train("resnet-wd5e-4", 0, epochs=2, train_subset=256, out=tmp_path, progress=False)
    record = pretrained.load_record("gai-resnet-wd5e-4-seed0", tmp_path)
    assert record["dynamics"]["epoch"] == [1, 2] and len(record["dynamics"]["lss"]) == 2
    assert all(lss >= 1.0 for lss in record["dynamics"]["lss"])
    assert (
        set(record["snapshots"]["tracks_pca_2d"]) == {"1", "2"}
        and "one PCA basis" in record["snapshots"]["basis"]
    )
    assert record["architecture"]["residual"] is True
    # the milestone 96 of 160 epochs, scaled
    assert record["recipe"]["weight_decay"] == 5e-4 and record["recipe"]["milestones"] == [1]


def test_an_epochs_seconds_include_the_runs_per_epoch_measurements(
    tmp_path, official_mnist, monkeypatch
):
    def slow_measurements(test, recipe):
        def measure(epoch, model, history):
            time.sleep(0.5)

        return measure

    slow = dataclasses.replace(gai.EXPERIMENT, callback=slow_measurements, finish=None)
    lines = []
    runs.train(
        slow, "resnet-wd0", 0, epochs=2, train_subset=128, out=tmp_path, progress=False,
        report=lines.append,
    )  # fmt: skip
    record = pretrained.load_record("gai-resnet-wd0-seed0", tmp_path)
    assert all(seconds >= 0.5 for seconds in record["history"]["seconds"])
    assert record["wall_time_s"] >= 1.0 and record["seconds_per_epoch"] >= 0.5
    assert all(line.endswith(" s") for line in lines)
