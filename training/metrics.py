"""Image metrics over batches of uint8 frames (numpy): pooled PSNR, SSIM, sharpness, depth AbsRel.

Dimension keys: B batch (episodes), H, W, C.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, laplace


def pooled_psnr(pred_BHWC: np.ndarray, true_BHWC: np.ndarray, where_BHW: np.ndarray | None = None) -> float:
    """10 log10(255^2 / MSE) with the MSE averaged over every pixel of every episode (finite when equal), or
    over the pixels `where_BHW` selects (none selected counts as equal)."""
    sq_BHW = np.mean((pred_BHWC.astype(np.float64) - true_BHWC.astype(np.float64)) ** 2, axis=-1)
    if where_BHW is not None:
        sq_BHW = sq_BHW[where_BHW] if where_BHW.any() else np.zeros(1)
    return psnr_of_mse(np.mean(sq_BHW))


def psnr_of_mse(mse: float) -> float:
    """10 log10(255^2 / MSE) for an MSE of uint8 levels, capped at PSNR_CAP where it is zero."""
    return float(10 * np.log10(255.0 ** 2 / max(mse, _MIN_MSE)))


_MIN_MSE = 1e-10
PSNR_CAP = float(10 * np.log10(255.0 ** 2 / _MIN_MSE))  # pooled_psnr of identical images (148.1 dB)


def psnr_text(db: float) -> str:
    """A pooled PSNR for people: 'identical' where the images are the same pixel for pixel."""
    return f"identical ({PSNR_CAP:.1f} dB, the cap)" if db >= PSNR_CAP - 1e-6 else f"{db:.2f} dB"


def ssim(pred_BHWC: np.ndarray, true_BHWC: np.ndarray) -> float:
    """Mean SSIM (Gaussian window, sigma 1.5, on luma), averaged over episodes."""
    weights = np.array([0.299, 0.587, 0.114])
    x = pred_BHWC.astype(np.float64) @ weights
    y = true_BHWC.astype(np.float64) @ weights
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda a: gaussian_filter(a, sigma=(0, 1.5, 1.5), truncate=3.5)
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def high_frequency_energy(frames_BHWC: np.ndarray) -> float:
    """Mean squared Laplacian of luma: how much fine detail (edges, texture) the frames hold."""
    luma = frames_BHWC.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return float(np.mean([np.mean(laplace(f) ** 2) for f in luma]))


def sharpness_ratio(pred_BHWC: np.ndarray, true_BHWC: np.ndarray) -> float:
    """High-frequency energy of the predictions over the ground truth's (1 = as sharp, < 1 = blurrier)."""
    return high_frequency_energy(pred_BHWC) / max(high_frequency_energy(true_BHWC), 1e-10)


def depth_absrel(pred_BHW: np.ndarray, true_BHW: np.ndarray) -> float:
    """Mean |pred - true| / true over pixels where the truth is not sky (sky predicted as 0 counts as error 1)."""
    m = true_BHW > 0
    if not m.any():
        return float("nan")
    return float(np.mean(np.abs(pred_BHW[m] - true_BHW[m]) / true_BHW[m]))


def colour_distance(pred_BHWC: np.ndarray, true_BHWC: np.ndarray, bins: int = 8) -> float:
    """Total-variation distance (0..1) between the joint RGB histograms (bins^3 cells) of two frames, averaged
    over the batch: 0 = the same colours in the same amounts, 1 = no colour in common."""
    def hist(frames):
        idx = (frames.astype(np.int64) * bins // 256) @ np.array([bins * bins, bins, 1])
        return np.stack([np.bincount(f.ravel(), minlength=bins ** 3) / f.size for f in idx])
    return float(np.mean(0.5 * np.abs(hist(pred_BHWC) - hist(true_BHWC)).sum(-1)))
