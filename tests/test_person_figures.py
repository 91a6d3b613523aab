"""Figures and reports of a person: VA scatter, coverage table, decoder strip on the mean face."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dfm.affect import regions
from dfm.viz import figures
from dfm.decoder import PersonDecoder
from dfm.decoder.synthetic import synthetic_pairs


def _png_size(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.size


@pytest.fixture(scope="module")
def pairs():
    return synthetic_pairs(3000, n_videos=3, seed=5)


@pytest.fixture(scope="module")
def decoder(pairs):
    return PersonDecoder().fit(pairs.va, pairs.expr, video_ids=pairs.video_ids, frame_index=pairs.frame_index)


def test_label_of_names_regions_and_nearest_label():
    assert figures.label_of([0.0, 0.0]) == "neutral"
    assert figures.label_of(regions.region_for("happy", "high").center()) == "happy high"
    assert figures.label_of(regions.region_for("sad", "low").center()) == "sad low"
    assert figures.label_of([0.0, -0.8]) == "(no label)"
    assert figures.label_of([0.8, 0.0]) == "(near happy)"


@pytest.mark.parametrize("color_by", ["video", "time"])
def test_va_scatter_is_written(tmp_path, pairs, color_by):
    out = figures.plot_va_scatter(pairs.va, tmp_path / "s.png", video_id=pairs.video_ids,
                                  video_names=["a.mp4", "b.mp4", "c.mp4"], times=pairs.frame_index / pairs.fps,
                                  color_by=color_by, title="test")
    w, h = _png_size(out)
    assert out.stat().st_size > 20_000 and w > 600 and h > 600
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left nothing behind


def test_va_scatter_time_needs_times(tmp_path, pairs):
    with pytest.raises(ValueError, match="needs the frame times"):
        figures.plot_va_scatter(pairs.va, tmp_path / "s.png", color_by="time")


def test_coverage_table_counts_match_the_region_table(pairs):
    table = figures.coverage_table(pairs.va)
    counts = regions.coverage(pairs.va)
    assert table["n_frames"] == len(pairs.va)
    assert sum(r["frames"] for r in table["rows"]) + table["unassigned"] == len(pairs.va)
    for r in table["rows"]:
        expected = counts["neutral"]["all"] if r["label"] == "neutral" else counts[r["label"]][r["intensity"]]
        assert r["frames"] == expected
    assert len(table["rows"]) == 1 + 6 * 3 and "labels" not in table
    md = figures.coverage_markdown(table, title="T")
    assert md.startswith("## T") and md.count("\n| ") == 19 + 1 and "No decoder trained yet" in md


def test_coverage_table_with_decoder_reports_the_blend(tmp_path, pairs, decoder):
    table = figures.coverage_table(pairs.va, decoder)
    rep = decoder.coverage_report()
    for r in table["rows"]:
        assert r["prior_share"] == pytest.approx(1.0 - rep.share(r["label"], r["intensity"]))
        assert 0.0 <= r["prior_share"] <= 1.0
    assert {r["label"] for r in table["labels"]} == set(regions.LABELS)
    files = figures.write_coverage(table, tmp_path, title="x")
    assert json.loads(files["coverage_json"].read_text())["rows"][0]["label"] == "neutral"
    md = files["coverage_md"].read_text()
    assert "prior blend" in md and "Per label" in md


def test_training_report_text(decoder):
    lines = figures.training_lines(decoder)
    assert lines[0].startswith("RMSE train") and "baseline" in lines[0]
    assert sum(1 for line in lines if "% prior" in line) == len(regions.LABELS)
    md = figures.training_markdown(decoder, title="d")
    assert "| validation, mean-expression baseline |" in md and "Coverage" in md


@pytest.fixture(scope="module")
def face_model(assets_dir):
    from dfm.face.model import FaceModel

    return FaceModel.load(assets_dir / "ict_facekit" / "ict_face_model.npz")


def test_mean_face_render_is_frontal_and_shows_the_expression(face_model):
    from dfm.face.expressions import expression_index as ix

    r = figures.MeanFaceRenderer(face_model, size=160)
    neutral = r.render(None)
    assert neutral.shape == (160, 160, 3) and neutral.dtype == np.uint8
    face = (neutral != 255).any(-1)
    assert 0.4 < face.mean() < 0.98  # the face fills the tile
    cols = np.flatnonzero(face.any(0))
    assert abs((cols[0] + cols[-1]) / 2 - 80) < 6  # centred (frontal, symmetric)
    assert np.abs(neutral[:, :80].astype(int) - neutral[:, ::-1][:, :80].astype(int)).mean() < 12  # ~mirror image
    e = np.zeros(53, np.float32)
    e[ix("jawOpen")] = 1.0
    opened = r.render(e)
    dark = lambda im: ((im.astype(int).sum(-1) < 300) & (im != 255).any(-1)).sum()  # noqa: E731 - mouth interior
    assert dark(opened) > dark(neutral) + 50


def test_decoder_strip_is_written(tmp_path, decoder, face_model):
    out = figures.plot_decoder_strip(decoder, face_model, tmp_path / "strip.png", n=6, face_px=120)
    w, h = _png_size(out)
    assert w > 2 * h and out.stat().st_size > 20_000
