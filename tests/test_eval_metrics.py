"""Evaluation metrics on images with known differences (APD, Face-/Mouth-APD masks, PSNR, SSIM, crops)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from dfm.eval.metrics import (CropBox, apd, error_heatmap, frame_metrics, pixel_error, psnr, ssim, ssim_map,
                              summarise)


def _image(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(40, 200, (size // 8, size // 8, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def test_constant_offset_of_10_gives_apd_10_sqrt3():
    a = _image()
    b = a + np.uint8(10)
    assert apd(a, b) == pytest.approx(10 * math.sqrt(3), abs=1e-9)
    assert apd(b, a) == pytest.approx(10 * math.sqrt(3), abs=1e-9)
    # MSE = 100 on every channel
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 100), abs=1e-9)


def test_identical_images():
    a = _image(1)
    assert apd(a, a) == 0.0
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    m = frame_metrics(a, a, np.ones(a.shape[:2], bool), np.ones(a.shape[:2], bool))
    assert m == {"apd": 0.0, "face_apd": 0.0, "mouth_apd": 0.0, "psnr": math.inf, "ssim": pytest.approx(1.0)}


def test_pixel_error_is_the_rgb_l2_distance():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0] = (3, 4, 0)
    b[1, 1] = (0, 0, 255)
    e = pixel_error(a, b)
    np.testing.assert_allclose(e, [[5.0, 0.0], [0.0, 255.0]])
    assert apd(a, b) == pytest.approx(260.0 / 4)


def test_masks_restrict_the_mean():
    a = np.full((40, 40, 3), 100, np.uint8)
    b = a.copy()
    b[:20] += 20  # error 20 sqrt 3 in the top half only
    face = np.zeros((40, 40), bool)
    face[:20] = True
    mouth = np.zeros((40, 40), bool)
    mouth[30:, :10] = True
    m = frame_metrics(b, a, face, mouth)
    assert m["face_apd"] == pytest.approx(20 * math.sqrt(3))
    assert m["mouth_apd"] == 0.0
    assert m["apd"] == pytest.approx(10 * math.sqrt(3))
    assert apd(a, b, face) == pytest.approx(20 * math.sqrt(3))
    assert math.isnan(apd(a, b, np.zeros((40, 40), bool)))  # empty mask: the frame does not count
    assert math.isnan(frame_metrics(b, a, None, np.zeros((40, 40), bool))["mouth_apd"])
    assert psnr(a, b, ~face) == math.inf
    with pytest.raises(ValueError):
        apd(a, b, np.ones((10, 10), bool))


def test_ssim_of_constant_images_is_the_luminance_term():
    # no variance: SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) exactly, at every pixel
    x, y = 100.0, 130.0
    c1 = (0.01 * 255) ** 2
    a = np.full((32, 32, 3), x, np.uint8)
    b = np.full((32, 32, 3), y, np.uint8)
    assert ssim(a, b) == pytest.approx((2 * x * y + c1) / (x * x + y * y + c1), rel=1e-9)


def test_ssim_matches_a_direct_window_computation():
    a, b = _image(2, 48), _image(3, 48)
    r, sigma = 5, 1.5
    g = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma ** 2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    y0, x0 = 20, 17
    vals = []
    for ch in range(3):
        pa = a[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1, ch].astype(np.float64)
        pb = b[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1, ch].astype(np.float64)
        ma, mb = (w * pa).sum(), (w * pb).sum()
        va, vb = (w * pa * pa).sum() - ma * ma, (w * pb * pb).sum() - mb * mb
        cov = (w * pa * pb).sum() - ma * mb
        vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2)))
    assert ssim_map(a, b)[y0, x0] == pytest.approx(np.mean(vals), abs=1e-6)


def test_ssim_falls_with_noise_and_is_symmetric():
    a = _image(4)
    rng = np.random.default_rng(0)
    lo = np.clip(a + rng.normal(0, 5, a.shape), 0, 255).astype(np.uint8)
    hi = np.clip(a + rng.normal(0, 30, a.shape), 0, 255).astype(np.uint8)
    assert 1.0 > ssim(a, lo) > ssim(a, hi) > 0.0
    assert ssim(a, hi) == pytest.approx(ssim(hi, a), abs=1e-12)
    assert psnr(a, lo) > psnr(a, hi)


def test_crop_box_aligns_points_and_pixels():
    img = np.zeros((100, 150, 3), np.uint8)
    img[40:60, 70:90] = 255  # a white square
    pts = np.array([[70.0, 40.0], [89.0, 59.0]])
    box = CropBox.around(pts, margin=0.5, size=64)
    assert box.side == 38  # ceil(19 * 2)
    crop = box.apply(img)
    assert crop.shape == (64, 64, 3)
    # the square's centre maps to the crop centre and is white there
    c = box.to_crop(np.array([[79.5, 49.5]]))[0]
    assert c == pytest.approx([31.5, 31.5], abs=0.6)
    assert crop[32, 32].min() == 255 and crop[1, 1].max() == 0
    # a box reaching past the frame replicates the border instead of failing
    edge = CropBox.around(np.array([[0.0, 0.0], [30.0, 30.0]]), margin=0.5, size=32).apply(img)
    assert edge.shape == (32, 32, 3)


def test_summary_skips_nan_and_infinite_frames():
    rows = [{"apd": 1.0, "face_apd": 2.0, "mouth_apd": float("nan"), "psnr": float("inf"), "ssim": 1.0},
            {"apd": 3.0, "face_apd": 4.0, "mouth_apd": 5.0, "psnr": 30.0, "ssim": 0.5}]
    s = summarise(rows)
    assert s["apd"] == 2.0 and s["face_apd"] == 3.0 and s["mouth_apd"] == 5.0
    assert s["psnr"] == 30.0 and s["psnr_inf_frames"] == 1 and s["ssim"] == 0.75 and s["frames"] == 2


def test_heatmap_colours():
    hm = error_heatmap(np.array([[0.0, 1000.0]]), vmax=60.0)
    assert hm.shape == (1, 2, 3) and hm.dtype == np.uint8
    assert hm[0, 0, 2] > hm[0, 0, 0]  # low error: blue
    assert hm[0, 1, 0] > hm[0, 1, 2]  # high error: red


def test_crop_pixels_outside_the_frame_are_left_out():
    img = np.full((50, 50, 3), 100, np.uint8)
    box = CropBox(x0=-25, y0=0, side=50, size=50)  # left half of the crop lies left of the frame
    inside = box.inside(img.shape[:2])
    assert inside[:, 25:].all() and not inside[:, :25].any()
    out = img.copy()
    out[:, 0] = 200  # the frame's first column: replicated over the outside half of the crop
    gt_c, out_c = box.apply(img), box.apply(out)
    m = frame_metrics(out_c, gt_c, np.ones((50, 50), bool), None, inside)
    e = 100 * math.sqrt(3)
    assert m["apd"] == pytest.approx(e / 25)  # one bad column among 25 valid ones
    assert m["face_apd"] == pytest.approx(e / 25)
    assert frame_metrics(out_c, gt_c, None, None)["apd"] == pytest.approx(e * 26 / 50)  # without the mask
