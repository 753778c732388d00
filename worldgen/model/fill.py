"""Filling the holes of the memory's drawing from the known pixels beside them: what the network starts from
where memory knows nothing (`ModelConfig.fill`, `fill_behind`, `fill_edge`), and the real frames' disparity
filled in where their points drew nothing (`memory.render` with surfaces).

Dimension keys: B batch, H height, W width, C channels (with `behind` or `edge`, the last one is disparity).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

EDGE_BACKGROUND = 1.2  # see _background


def _push_pull(values_BHWC, weight_BHW, rows_only: bool):
    """Fill where weight is 0 from a pyramid of weighted means (of pairs along rows, or of 2x2 blocks), read
    back coarse to fine with linear upsampling; empty cells of the coarsest level take its mean. Returns the
    filled values and the coarsest level's weight (B, h, w)."""
    fh = 1 if rows_only else 2
    vs, ws = [values_BHWC * weight_BHW[..., None]], [weight_BHW]
    while vs[-1].shape[2] % 2 == 0 and vs[-1].shape[2] > 1 and (rows_only or vs[-1].shape[1] % 2 == 0):
        b, h, w, c = vs[-1].shape
        sv = vs[-1].reshape(b, h // fh, fh, w // 2, 2, c).sum((2, 4))
        sw = ws[-1].reshape(b, h // fh, fh, w // 2, 2).sum((2, 4))
        ws.append(jnp.minimum(sw, 1.0))
        vs.append(sv / jnp.maximum(sw, 1e-6)[..., None] * ws[-1][..., None])
    top, top_w = vs[-1], ws[-1]
    axes = (2,) if rows_only else (1, 2)
    mean = top.sum(axes, keepdims=True) / jnp.maximum(top_w.sum(axes, keepdims=True), 1e-6)[..., None]
    filled = top + (1 - top_w[..., None]) * mean
    for v, wt in zip(reversed(vs[:-1]), reversed(ws[:-1])):
        filled = v + (1 - wt[..., None]) * jax.image.resize(filled, v.shape, "linear")
    return filled, top_w


def fill_holes(values_BHWC, known_BHW, behind: bool = False, edge: bool = False, real_BHW=None):
    """Every pixel the drawing left empty, filled from the known pixels beside it: first along its row (a strip
    a turn uncovers continues the sky and ground beside it; a pinhole takes its neighbours' colour), then rows
    with nothing known from the rows around them. With `behind` (values whose last channel is disparity), a hole
    with known pixels on both sides in its row takes the farther of its two nearest (the smaller disparity): a
    hole between two surfaces is what the nearer one uncovered as the camera moved, and what it uncovered stood
    behind it. With `edge` (the same values), a strip at the frame's edge (known pixels on one side only) whose
    edge pixel is dreamed (not in `real_BHW`; None: none is real) takes the nearest known pixel of its row's
    background (`_background`): the sky and the terrain go on past what memory shows, and a dreamed guess at the
    strip's edge (a blur of trees on the horizon, a patch of grass) is not carried across it; what a real frame
    shows at the edge (a house's wall) goes on into the strip as without it. Returns the filled values and whether
    anything at all was known, per image (B,)."""
    rows, row_known = _push_pull(values_BHWC, known_BHW.astype(values_BHWC.dtype), rows_only=True)
    if behind or edge:
        rows = _nearest_sides(values_BHWC, known_BHW, rows, behind, edge, real_BHW)
    row_known = (row_known.max(2, keepdims=True) > 0).astype(rows.dtype)  # (B, H, 1): the row knows something
    filled, top = _push_pull(rows, jnp.broadcast_to(row_known, known_BHW.shape), rows_only=False)
    return filled, top.max((1, 2)) > 0


def _background(disp_BHW, known_BHW):
    """The known pixels that are their row's background: no nearer than EDGE_BACKGROUND times the row's median
    known disparity (in a row of sky, the sky; in a row of ground, the ground, not the objects on it)."""
    w = known_BHW.shape[2]
    ranked = jnp.sort(jnp.where(known_BHW, disp_BHW, jnp.inf), axis=2)
    middle = jnp.clip((known_BHW.sum(2, keepdims=True) - 1) // 2, 0, w - 1)
    median = jnp.take_along_axis(ranked, middle, axis=2)
    return known_BHW & (disp_BHW <= EDGE_BACKGROUND * median + 1e-3)


def _nearest_sides(values_BHWC, known_BHW, rows_BHWC, behind: bool, edge: bool, real_BHW=None):
    """`rows_BHWC` with each hole that has known pixels left and right of it in its row set to the farther (by
    the last channel, disparity) of the nearest known pixel on each side (`behind`), and each hole with known
    pixels on one side only, the nearest of them dreamed, set to the nearest background pixel on that side
    (`edge`)."""
    w = known_BHW.shape[2]
    col = jnp.arange(w)

    def sides(where_BHW):  # the nearest such column at or left of each, at or right of each (-1, w: none)
        return (jax.lax.cummax(jnp.where(where_BHW, col, -1), axis=2),
                jax.lax.cummin(jnp.where(where_BHW, col, w), axis=2, reverse=True))

    def at(cols_BHW, array=values_BHWC):  # each pixel's entry of `array` at column `cols_BHW` of its row
        cols = jnp.clip(cols_BHW, 0, w - 1)
        return jnp.take_along_axis(array, cols.reshape(cols.shape + (1,) * (array.ndim - 3)), axis=2)

    left, right = sides(known_BHW)
    hole = ~known_BHW
    if behind:
        left_v, right_v = at(left), at(right)
        farther = jnp.where(left_v[..., -1:] <= right_v[..., -1:], left_v, right_v)
        rows_BHWC = jnp.where((hole & (left >= 0) & (right < w))[..., None], farther, rows_BHWC)
    if edge:
        bg_left, bg_right = sides(_background(values_BHWC[..., -1], known_BHW))
        dreamed = jnp.ones_like(known_BHW) if real_BHW is None else ~real_BHW
        strip = hole & (left < 0) & (bg_right < w) & at(right, dreamed)  # at the left edge
        rows_BHWC = jnp.where(strip[..., None], at(bg_right), rows_BHWC)
        strip = hole & (right >= w) & (bg_left >= 0) & at(left, dreamed)  # at the right edge
        rows_BHWC = jnp.where(strip[..., None], at(bg_left), rows_BHWC)
    return rows_BHWC
