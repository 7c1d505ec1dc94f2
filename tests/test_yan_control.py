"""The control of chapter 6: gaps between the paper, the authors' networks and ours."""

import math

import numpy as np
import pytest

from dyndl_lite import significance
from dyndl_lite.experiments import yan_control, yan_paper
from dyndl_lite.experiments.results import YanTable


def _table2(cnn_seeds, odenet_seeds, images=1000, pgd=1000, fallback=False) -> YanTable:
    specs = yan_paper.COLUMNS[("mnist", 2)]
    seeds = tuple(range(len(cnn_seeds)))
    return YanTable(
        regime="gaussian", mode="full", seeds=seeds, data="MNIST test", images=images,
        accuracy_label="test accuracy", fallback=fallback, records={}, number=2,
        dataset="mnist", columns=tuple(yan_paper.column_label(k, s) for k, s in specs),
        column_specs=tuple(specs),
        rows={
            "cnn": {"seeds": [list(r) for r in cnn_seeds]},
            "odenet": {"seeds": [list(r) for r in odenet_seeds]},
        },
        paper=yan_paper.PAPER[("mnist", 2)], pgd_images=pgd,
        images_per_seed=dict.fromkeys(seeds, images), pgd_images_per_seed=dict.fromkeys(seeds, pgd),
        same_images=True, attack="cross-entropy FGSM", epochs=10,
    )  # fmt: skip


def _control(cnn, odenet, n=10_000, n_pgd=1_000) -> dict:
    images = [n_pgd if k == "pgd" else n for k, _ in yan_control.COLUMNS]
    return {
        "models": {
            "cnn": {"accuracy": list(cnn), "images": images},
            "odenet": {"accuracy": list(odenet), "images": images},
        }
    }


PAPER_CNN = [m for m, _ in yan_paper.PAPER[("mnist", 2)]["cnn"]]
PAPER_ODE = [m for m, _ in yan_paper.PAPER[("mnist", 2)]["odenet"]]


def test_gaps_add_up_to_ours_minus_paper():
    ours_cnn = np.array([[97.0, 40.0, 8.0, 20.0, 0.0], [96.0, 42.0, 9.0, 22.0, 0.1]])
    ours_ode = (ours_cnn + 5).clip(0, 100)
    control = _control(np.add(PAPER_CNN, 0.3), np.add(PAPER_ODE, -0.2))
    rows = yan_control.gaps(control, _table2(ours_cnn, ours_ode))
    assert len(rows) == 2 * len(yan_control.COLUMNS)
    for r in rows:
        assert math.isclose(r["protocol_gap"] + r["training_gap"], r["ours"] - r["paper"])


def test_a_gap_of_a_few_images_is_within_noise_and_a_large_one_is_not():
    """The authors' network 0.3 points from the paper: within the binomial + run-to-run margin.
    Ours 20 points below the authors' on three seeds that agree: outside the t margin."""
    spread = np.array([[0], [0.5], [-0.5]])
    ours_cnn = (np.tile(np.subtract(PAPER_CNN, 20), (3, 1)) + spread).clip(0, 100)
    ours_ode = (np.tile(np.subtract(PAPER_ODE, 20), (3, 1)) + spread).clip(0, 100)
    control = _control(np.add(PAPER_CNN, 0.3), np.add(PAPER_ODE, 0.3))
    rows = yan_control.gaps(control, _table2(ours_cnn, ours_ode))
    fgsm = [r for r in rows if r["column"] == yan_paper.column_label("fgsm", 0.3)]
    assert all(r["protocol"] == "within noise" for r in fgsm)
    assert all(r["training"] == "ours lower" for r in fgsm)


def test_the_training_margin_uses_student_t_for_few_seeds():
    """Two seeds with mean 3 points below the authors' and sd 2: se = 1.41; 2 SE (2.8) would call
    it, Student's t with 1 degree of freedom (12.7 SE) does not."""
    base = np.array(PAPER_CNN)
    ours = np.vstack([base - 3 + 1.414, base - 3 - 1.414]).clip(0, 100)
    control = _control(base, np.array(PAPER_ODE), n=10**7, n_pgd=10**7)  # images' error ~ 0
    rows = yan_control.gaps(control, _table2(ours, np.vstack([PAPER_ODE, PAPER_ODE])))
    row = next(
        r
        for r in rows
        if r["model"] == "cnn" and r["column"] == yan_paper.column_label("fgsm", 0.3)
    )
    assert row["training_gap"] == pytest.approx(-3, abs=0.01)
    assert row["training"] == "within noise"
    assert row["training_margin"] > 12 * 2 / math.sqrt(2)


def test_the_training_margin_counts_the_images_our_seeds_share():
    """Seeds that agree exactly (no spread) on 1,000 shared images: the margin is still 1.96 times
    the images' error of ours (the mean of the seeds' binomial errors, which the seeds share)
    combined with the authors'."""
    ours = np.tile(np.array(PAPER_CNN), (3, 1))
    control = _control(np.array(PAPER_CNN), np.array(PAPER_ODE), n=10**7, n_pgd=10**7)
    rows = yan_control.gaps(control, _table2(ours, np.tile(PAPER_ODE, (3, 1))))
    row = next(r for r in rows if r["model"] == "cnn" and r["column"] == "FGSM-0.3")
    se_ours = significance.accuracy_se(row["ours"], 1000)
    se_authors = significance.accuracy_se(row["authors"], 10**7)
    assert row["training_margin"] == pytest.approx(1.96 * math.hypot(se_ours, se_authors))
    assert row["training_margin"] > 1.96 * 1.5  # about 1.6 points of images' error at 54 %


def test_gaps_refuse_a_table_measured_on_the_fallback():
    ours = np.tile(PAPER_CNN, (1, 1))
    with pytest.raises(ValueError, match="fallback"):
        yan_control.gaps(_control(PAPER_CNN, PAPER_ODE), _table2(ours, ours, fallback=True))


def test_a_record_of_an_older_protocol_is_stale(monkeypatch):
    import dataclasses

    from dyndl_lite import protocols, records

    newer = dataclasses.replace(protocols.YAN, version=protocols.YAN.version + 1)
    monkeypatch.setattr(protocols, "YAN", newer)
    with pytest.raises(records.StaleRecordError, match="yan_control odenet --force"):
        yan_control.load_record("odenet")


def _record_with(accuracy: list[float], n: int = 10_000, n_pgd: int = 1_000):
    """A record whose Table 2 cells hold ``accuracy`` (%) on n images (PGD: n_pgd)."""
    from dyndl_lite import protocols
    from dyndl_lite.record_format import Cell, Record

    cells = {}
    for (kind, strength), value in zip(yan_control.COLUMNS, accuracy, strict=True):
        size = n_pgd if kind == "pgd" else n
        outcomes = np.zeros(size, dtype=bool)
        outcomes[: round(value / 100 * size)] = True
        cells[protocols.cell_name(kind, strength)] = Cell(outcomes)
    cells["clean"] = Cell(np.ones(n, dtype=bool))  # every record has its clean cell
    return Record(checkpoint="yan-cnn-gaussian-100ep-seed0", key={}, cells=cells, scalars={},
                  meta={})  # fmt: skip


def test_a_longer_run_replaces_the_tables_networks_of_its_architecture_only():
    """A 100-epoch CNN that matches the authors' CNN: its rows read it (training gap 0, 100
    epochs, 1 seed); the ODENet's rows still read the 10-epoch table."""
    ours = np.tile(np.subtract(PAPER_CNN, 20).clip(0), (2, 1))
    authors_cnn = [98.0, 80.0, 30.0, 40.0, 5.0]
    control = _control(authors_cnn, PAPER_ODE)
    longer = {"cnn": (100, [_record_with(authors_cnn)])}
    rows = yan_control.gaps(control, _table2(ours, ours), longer)
    cnn = [r for r in rows if r["model"] == "cnn"]
    odenet = [r for r in rows if r["model"] == "odenet"]
    assert {(r["epochs"], r["seeds"]) for r in cnn} == {(100, 1)}
    assert {(r["epochs"], r["seeds"]) for r in odenet} == {(10, 2)}
    assert all(abs(r["training_gap"]) < 1e-9 and r["training"] == "within noise" for r in cnn)
    assert "100 epochs" in yan_control.gaps_markdown(rows)


def _logged_control(shift_plain: float, shift_among: float) -> dict:
    """A control whose FGSM accuracies lie ``shift_*`` points from the authors' log (run 1)."""
    models = {}
    for model in ("cnn", "odenet"):
        plain, among = [], []
        for kind, strength in yan_control.COLUMNS:
            logged = yan_paper.AUTHORS_LOG_FGSM.get(strength, {}).get(model, (50.0,))[0]
            plain.append(logged + shift_plain if kind == "fgsm" else 50.0)
            among.append(logged + shift_among if kind == "fgsm" else 50.0)
        models[model] = {"accuracy": plain, "accuracy_among_clean_correct": among}
    return {"models": models}


def test_the_log_names_an_accuracy_only_when_it_lies_near_one_of_them():
    # the log on the plain accuracy, 2 points from the other: it points to the plain one
    assert "the log points to the plain accuracy" in yan_control.which_accuracy(
        _logged_control(0.0, 2.0)
    )
    assert "the log points to the accuracy among clean-correct" in yan_control.which_accuracy(
        _logged_control(-2.0, 0.1)
    )
    # 2.7 and 2.8 points from a log whose two accuracies lie 0.1 apart: it cannot tell
    sentence = yan_control.which_accuracy(_logged_control(2.7, 2.8))
    assert "cannot tell which of the two the tables report" in sentence
    assert "points to" not in sentence


def test_the_training_margin_pairs_the_images_when_both_keep_their_outcomes():
    """Ours and the authors' networks with per-image outcomes on the same images: the images' term
    is std(u)/sqrt(N), u_i our seeds' mean correctness minus the authors' on image i."""
    rng = np.random.default_rng(2)
    n = {k: (1000 if k == "pgd" else 10_000) for k, _ in yan_control.COLUMNS}
    theirs = [rng.random(n[k]) < 0.5 for k, _ in yan_control.COLUMNS]
    ours = [[rng.random(n[k]) < 0.45 for k, _ in yan_control.COLUMNS] for _ in range(3)]
    accuracy = np.array([[100 * o.mean() for o in seed] for seed in ours])
    table = _table2(accuracy, accuracy)
    table.rows["cnn"]["outcomes"] = ours
    control = _control([100 * o.mean() for o in theirs], PAPER_ODE)
    control["models"]["cnn"]["outcomes"] = theirs
    rows = yan_control.gaps(control, table)
    cnn = [r for r in rows if r["model"] == "cnn"]
    for j, row in enumerate(cnn):
        u = np.mean([seed[j] for seed in ours], axis=0) - theirs[j]
        se_u = 100 * u.std(ddof=1) / math.sqrt(len(u))
        spread = accuracy[:, j].std(ddof=1) / math.sqrt(3)
        t = significance.t_quantile(2, level=0.025)
        assert row["training_images_se"] == "paired"
        assert row["training_margin"] == pytest.approx(t * spread + 1.96 * se_u)
    # the ODENet rows have no outcomes: the binomial errors, as before
    assert all(r["training_images_se"] == "binomial" for r in rows if r["model"] == "odenet")
