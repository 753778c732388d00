"""A one-pixel point splat with a z-buffer: the plain reference the tests hold the world memory's drawing
(`memory.render`, a footprint on a pixel pyramid) and `geometry.unproject` against. The model does not use it."""
import jax
import jax.numpy as jnp

from worldgen.model.geometry import MIN_DEPTH


def splat(points_N3: jax.Array, colors_NC: jax.Array, valid_N: jax.Array, pose_44: jax.Array,
          intrinsics_33: jax.Array, height: int, width: int, tolerance: float = 0.03):
    """Render coloured points into a camera with a z-buffer.

    Each point lands on one pixel; the nearest depth wins, and points within `tolerance` (relative) of it
    are averaged. Returns colours (H,W,C), depth (H,W; 0 where empty) and coverage mask (H,W) in {0,1}.
    """
    rot, trans = pose_44[:3, :3], pose_44[:3, 3]
    cam_N3 = (points_N3 - trans) @ rot
    d = -cam_N3[:, 2]
    safe_d = jnp.where(d > MIN_DEPTH, d, 1.0)
    fx, fy, cx, cy = intrinsics_33[0, 0], intrinsics_33[1, 1], intrinsics_33[0, 2], intrinsics_33[1, 2]
    u = jnp.floor(cx + fx * cam_N3[:, 0] / safe_d).astype(jnp.int32)
    v = jnp.floor(cy - fy * cam_N3[:, 1] / safe_d).astype(jnp.int32)
    ok = valid_N & (d > MIN_DEPTH) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    n_pix = height * width
    pix = jnp.where(ok, v * width + u, n_pix)  # invalid points go to a spill bucket
    zbuf = jax.ops.segment_min(jnp.where(ok, d, jnp.inf), pix, num_segments=n_pix + 1)
    win = (ok & (d <= zbuf[pix] * (1 + tolerance))).astype(colors_NC.dtype)
    wsum = jax.ops.segment_sum(win, pix, num_segments=n_pix + 1)[:n_pix]
    csum = jax.ops.segment_sum(colors_NC * win[:, None], pix, num_segments=n_pix + 1)[:n_pix]
    dsum = jax.ops.segment_sum(d * win, pix, num_segments=n_pix + 1)[:n_pix]
    covered = wsum > 0
    denom = jnp.maximum(wsum, 1.0)
    colors_HWC = (csum / denom[:, None]).reshape(height, width, -1)
    depth_HW = jnp.where(covered, dsum / denom, 0.0).reshape(height, width)
    return colors_HWC, depth_HW, covered.reshape(height, width).astype(jnp.float32)
