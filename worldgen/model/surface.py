"""The real start frames drawn as whole surfaces: a backward warp that follows each pixel's ray to where it
meets a real frame's depth, and reads that frame's colour there (`ModelConfig.real_surfaces`).

Dimension keys: B batch, V pinned views, H height, W width, C colour channels.

Point splatting (`memory.render`) draws a real frame's pixels as footprints, at most 4x4 cells wide. Where the
camera walks up to what a real frame saw from afar, or looks down at ground that frame saw at a grazing angle,
its points are magnified beyond that and leave stripes and holes, which the network repaints as speckle. Here
a target pixel's ray is intersected with each pinned frame's depth map, taken as a surface: starting from a
guessed depth, a fixed-point iteration moves along the ray to where it meets that frame's surface, whose
disparity is interpolated between the frame's pixels (exact on a plane). The ray takes the frame's colour there,
interpolated bilinearly (from those inside the frame, at least half the weight), when the four pixels around
that spot lie on one surface (their depths within SURFACE_SPREAD of each other: never across an object's
silhouette) and the ray does meet it (within MEETS of its depth); of the frames that pass, the one that saw the
spot from nearest draws it, in the most detail.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from worldgen.model.geometry import MIN_DEPTH, camera_coords, unproject

ITERATIONS = 3  # fixed-point steps along the ray
SURFACE_SPREAD = 1.5  # the farthest of the four pixels around a spot at most this many times the nearest's depth
MEETS = 0.05  # the ray's depth within 5% of the surface's there
MAGNIFIED = 0.7  # a frame's pixels per target pixel (in area) under which its surface, not its points, draws
SKY_BEYOND = 500.0  # metres: farther is sky (kept as points at SKY_DEPTH), which the splatting draws well


def _camera(points_HW3, pose_44):
    """Camera-frame x, y and depth (each (H,W)) of a map of world points (`geometry.camera_coords`)."""
    x, y, z = camera_coords(points_HW3.reshape(-1, 3), pose_44)
    return x.reshape(points_HW3.shape[:2]), y.reshape(points_HW3.shape[:2]), -z.reshape(points_HW3.shape[:2])


def _corners(image_HWC, u_HW, v_HW):
    """The four pixels around each spot (u, v) (pixel centres at integers): [(values (H,W,C), bilinear weight
    (H,W))], weight 0 for a pixel outside the image."""
    h, w = image_HWC.shape[:2]
    u0, v0 = jnp.floor(u_HW), jnp.floor(v_HW)
    fu, fv = u_HW - u0, v_HW - v0
    flat = image_HWC.reshape(h * w, -1)
    out = []
    for dv, du, weight in ((0, 0, (1 - fu) * (1 - fv)), (0, 1, fu * (1 - fv)), (1, 0, (1 - fu) * fv), (1, 1, fu * fv)):
        ui, vi = (u0 + du).astype(jnp.int32), (v0 + dv).astype(jnp.int32)
        inside = (ui >= 0) & (ui < w) & (vi >= 0) & (vi < h)
        out.append((flat[jnp.where(inside, vi * w + ui, 0)], weight * inside))
    return out


def _disparity_depth(corners):
    """Depth at each spot from the corners' depths (last channel), interpolated in disparity."""
    inverse = sum(weight / jnp.maximum(values[..., -1], MIN_DEPTH) for values, weight in corners)
    return sum(weight for _, weight in corners) / jnp.maximum(inverse, 1e-9)


def _one_view(points_HW3, colors_HWC, valid_HW, view_44, pose_44, rays_HW3, intrinsics_33, guess_HW):
    """One pinned frame met by the target's rays: rgb (H,W,C), ray depth (H,W), ok (H,W), the frame's own depth
    of the spot (H,W) and the spot (u, v) in its pixels."""
    fx, fy, cx, cy = intrinsics_33[0, 0], intrinsics_33[1, 1], intrinsics_33[0, 2], intrinsics_33[1, 2]
    origin, seen_from = pose_44[:3, 3], view_44[:3, 3]
    frame = jnp.concatenate([colors_HWC, jnp.where(valid_HW, _camera(points_HW3, view_44)[2], 0.0)[..., None]],
                            -1)  # colour, depth

    def spot(t_HW):
        x, y, d = _camera(origin + t_HW[..., None] * rays_HW3, view_44)
        safe = jnp.where(d > MIN_DEPTH, d, 1.0)
        return cx + fx * x / safe - 0.5, cy - fy * y / safe - 0.5, d

    t = guess_HW
    for _ in range(ITERATIONS):  # to where the frame's surface crosses the ray
        u, v, d = spot(t)
        s = _disparity_depth(_corners(frame[..., 3:], u, v))
        on_surface = seen_from + (origin + t[..., None] * rays_HW3 - seen_from) * (s / jnp.maximum(d, MIN_DEPTH))[
            ..., None]
        t = jnp.where((d > MIN_DEPTH) & (s > MIN_DEPTH), _camera(on_surface, pose_44)[2], t)
    u, v, d = spot(t)
    corners = _corners(frame, u, v)
    depths = jnp.stack([jnp.where(weight > 0, values[..., 3], jnp.nan) for values, weight in corners])
    nearest, farthest = jnp.nanmin(depths, 0), jnp.nanmax(depths, 0)
    total = sum(weight for _, weight in corners)
    ok = ((nearest > MIN_DEPTH) & (farthest <= SURFACE_SPREAD * nearest) & (total >= 0.5)
          & (jnp.abs(_disparity_depth(corners) - d) < MEETS * d)
          & (d > MIN_DEPTH) & (t > MIN_DEPTH) & (t < SKY_BEYOND) & (guess_HW > MIN_DEPTH))
    rgb = sum(values[..., :3] * weight[..., None] for values, weight in corners) / jnp.maximum(total, 1e-6)[..., None]
    return rgb, t, ok, d, u, v


def draw(points_VHW3, colors_VHWC, valid_VHW, views_V44, pose_44, intrinsics_33, guess_HW):
    """The pinned frames (V of them) drawn as surfaces from `pose_44`, each ray started at `guess_HW` (metres;
    0: none): rgb (H,W,C), depth (H,W), drawn (H,W) bool, and magnification (H,W): the drawing frame's pixels
    per target pixel (under 1 where the frame's pixels are magnified)."""
    h, w = guess_HW.shape
    at_depth_one, _ = unproject(jnp.ones((h, w)), pose_44, intrinsics_33)
    rays = (at_depth_one - pose_44[:3, 3]).reshape(h, w, 3)  # a ray's point at view depth t: origin + t * ray
    rgb, t, ok, d, su, sv = jax.vmap(_one_view, in_axes=(0, 0, 0, 0, None, None, None, None))(
        points_VHW3, colors_VHWC, valid_VHW, views_V44, pose_44, rays, intrinsics_33, guess_HW)
    best = jnp.argmin(jnp.where(ok, d, jnp.inf), 0)[None]  # the frame that saw the spot from nearest
    take = lambda x: jnp.take_along_axis(x, best.reshape(best.shape + (1,) * (x.ndim - 3)), 0)[0]
    su, sv = take(su), take(sv)
    area = jnp.abs(jnp.gradient(su, axis=1) * jnp.gradient(sv, axis=0) - jnp.gradient(su, axis=0)
                   * jnp.gradient(sv, axis=1))
    return take(rgb), take(t), ok.any(0), area
