"""Splatting points into a pixel pyramid of `levels` levels (`ModelConfig.pyramid_levels`; `memory.render_points`
draws with it), and the real views' share of a silhouette cell (`ModelConfig.edge_share`).

Dimension keys: N points, S samples (two per point), V views, L pyramid levels, H height, W width, C colour
channels.

Each point goes to the level where its projected footprint is one to two cells wide and covers the cells its
footprint reaches there (two samples, at opposite corners); each level keeps, per cell, the average of the
samples within DEPTH_TOLERANCE of the cell's nearest.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from worldgen.model.geometry import MIN_DEPTH, camera_coords

LEVELS = 3  # the default: a point is drawn at most 4x4 pixels wide (`ModelConfig.pyramid_levels`)
LEVEL_UP = 1.0  # a point moves one pyramid level up when its projected diameter exceeds one cell of it
DEPTH_TOLERANCE = 0.03  # points within 3% of the nearest depth of a pixel are averaged
EDGE_FAR = 1.5  # `edge_share`: a view whose nearest surface in a cell is this many times farther sees behind it


def cells(res: int, levels: int = LEVELS):
    """The pyramid's cell count per level and each level's first cell index (the last entry: all cells)."""
    sizes = [(res >> lv) ** 2 for lv in range(levels)]
    return sizes, [sum(sizes[:lv]) for lv in range(levels + 1)]


def samples(points_N3, radius_N, valid_N, pose_44, intrinsics_33, res: int, levels: int = LEVELS):
    """Each point's two samples: its cell over all levels (seg_S; `cells(res)[1][-1]` = none), depth d_S,
    projected diameter_S and whether it lands (ok_S). Sample i and i + N are point i's."""
    x, y, z = camera_coords(points_N3, pose_44)
    d = -z
    safe = jnp.where(d > MIN_DEPTH, d, 1.0)
    fx, fy, cx, cy = intrinsics_33[0, 0], intrinsics_33[1, 1], intrinsics_33[0, 2], intrinsics_33[1, 2]
    u, v = cx + fx * x / safe, cy - fy * y / safe
    diameter = 2 * radius_N * fx / safe
    level = jnp.clip(jnp.floor(jnp.log2(jnp.maximum(diameter * LEVEL_UP, 1.0))), 0, levels - 1).astype(jnp.int32)
    scale = 2 ** level
    _, starts = cells(res, levels)
    side = res >> level
    ok = valid_N & (d > MIN_DEPTH) & (u >= 0) & (u < res) & (v >= 0) & (v < res)
    # Each point covers the cells its footprint reaches: one cell when it is one cell wide, up to two on a
    # diagonal when it is two (it is one level up beyond that); the hole fill closes the other diagonal.
    # Two samples per point, at opposite corners (four cost 27% more time per step and did no better).
    reach = jnp.clip(diameter / scale / 2 - 0.5, 0.0, 0.5)
    ui = jnp.concatenate([jnp.floor(u / scale + a * reach) for a in (-1, 1)]).astype(jnp.int32)
    vi = jnp.concatenate([jnp.floor(v / scale + a * reach) for a in (-1, 1)]).astype(jnp.int32)
    level, side, d, diameter = (jnp.tile(q, 2) for q in (level, side, d, diameter))
    ok = jnp.tile(ok, 2) & (ui >= 0) & (ui < side) & (vi >= 0) & (vi < side)
    seg = jnp.where(ok, jnp.array(starts[:-1])[level] + vi * side + ui, starts[-1])
    return seg, d, diameter, ok


def splat(seg_S, d_S, diameter_S, ok_S, colors_SC, res: int, levels: int = LEVELS):
    """Per-level z-buffered averages: colours (L, res, res, C), depth and weight (L, res, res), upsampled, and
    the mean projected diameter of what level 0 drew (res, res)."""
    sizes, starts = cells(res, levels)
    n_seg = starts[-1]
    zbuf = jax.ops.segment_min(jnp.where(ok_S, d_S, jnp.inf), seg_S, num_segments=n_seg + 1)
    win = (ok_S & (d_S <= zbuf[seg_S] * (1 + DEPTH_TOLERANCE))).astype(colors_SC.dtype)
    # One scatter of every per-point quantity at once (weight, colour, depth, diameter): a scatter runs point
    # by point on a CPU, so one pass over six columns costs less than four passes (docs/model.md, session 17).
    sums = jax.ops.segment_sum(jnp.concatenate([win[:, None], colors_SC, d_S[:, None], diameter_S[:, None]], 1)
                               * win[:, None], seg_S, num_segments=n_seg + 1)
    wsum, csum, dsum = sums[:, 0], sums[:, 1:-2], sums[:, -2]
    size0 = (sums[:sizes[0], -1] / jnp.maximum(wsum[:sizes[0]], 1.0)).reshape(res, res)
    cols, deps, wts = [], [], []
    for lv in range(levels):
        sl = slice(starts[lv], starts[lv + 1])
        s, rep = res >> lv, 2 ** lv
        up = lambda x: jnp.repeat(jnp.repeat(x.reshape((s, s) + x.shape[1:]), rep, 0), rep, 1)
        w = wsum[sl]
        cols.append(up(csum[sl] / jnp.maximum(w, 1.0)[:, None]))
        deps.append(up(jnp.where(w > 0, dsum[sl] / jnp.maximum(w, 1.0), jnp.inf)))
        wts.append(up(w))
    return jnp.stack(cols), jnp.stack(deps), jnp.stack(wts), size0


def edge_share(seg_S, d_S, ok_S, colors_SC, res: int, views: int, nearest, levels: int = LEVELS):
    """Where the real views disagree about a full-resolution cell, how much of it is the far surface.

    The points are `views` frames' pixels in order (point i is view i // (N / views); samples as `samples`). Per cell,
    each view's nearest sample over every level that covers the cell; a view is near when that is within
    DEPTH_TOLERANCE of all views' nearest, far when it is more than EDGE_FAR times farther. Where the view
    `nearest` (the one taken nearest the camera, a traced index; -1: none) is far, the cell is a silhouette it
    sees past: it takes the far views' colour there (their level-0 samples) in the share of the views that are
    far. Returns that share (H, W; 0 elsewhere) and the far colour (H, W, C)."""
    sizes, starts = cells(res, levels)
    n_seg = starts[-1]
    n = seg_S.shape[0] // 2
    view = jnp.tile(jnp.arange(n) // (n // views), 2)
    per = jax.ops.segment_min(jnp.where(ok_S, d_S, jnp.inf), seg_S * views + view,
                              num_segments=(n_seg + 1) * views).reshape(n_seg + 1, views)
    yy, xx = jnp.mgrid[0:res, 0:res]
    nearest_VS = per[(yy * res + xx).ravel()]
    for lv in range(1, levels):
        nearest_VS = jnp.minimum(nearest_VS, per[(starts[lv] + (yy >> lv) * (res >> lv) + (xx >> lv)).ravel()])
    zmin = nearest_VS.min(1, keepdims=True)
    seen = jnp.isfinite(nearest_VS)
    near = seen & (nearest_VS <= zmin * (1 + DEPTH_TOLERANCE))
    far = seen & (nearest_VS > zmin * EDGE_FAR)
    share = far.sum(1) / jnp.maximum(near.sum(1) + far.sum(1), 1)
    cell0 = jnp.where(seg_S < sizes[0], seg_S, sizes[0])  # level-0 samples' cells
    is_far = far.reshape(-1)[jnp.minimum(cell0, sizes[0] - 1) * views + view] & (cell0 < sizes[0])
    zfar = jax.ops.segment_min(jnp.where(is_far, d_S, jnp.inf), cell0, num_segments=sizes[0] + 1)
    w = (is_far & (d_S <= zfar[cell0] * (1 + DEPTH_TOLERANCE))).astype(colors_SC.dtype)
    sums = jax.ops.segment_sum(jnp.concatenate([w[:, None], colors_SC * w[:, None]], 1), cell0,
                               num_segments=sizes[0] + 1)[:sizes[0]]
    past = far[:, jnp.maximum(nearest, 0)] & (nearest >= 0) & (sums[:, 0] > 0)
    return (jnp.where(past, share, 0.0).reshape(res, res),
            (sums[:, 1:] / jnp.maximum(sums[:, :1], 1.0)).reshape(res, res, -1))
