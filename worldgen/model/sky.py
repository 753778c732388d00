"""What the network says is sky, checked before a frame is shown and stored (inference rules, `world_model.advance`).

Dimension keys: B batch, H height, W width.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from worldgen.model import memory as mem
from worldgen.model.geometry import SKY_DISPARITY, ground_disparity, ray_elevation
from worldgen.player import EYE_HEIGHT


def ground_not_sky(disp_BHW, pose_B44, intrinsics_33, within: float):
    """The dream's disparity with each pixel that reads as sky put on a level ground EYE_HEIGHT under the eye
    where its ray meets that ground within `within` metres of view depth (`ModelConfig.ground_within`)."""
    ground = jax.vmap(lambda pose: ground_disparity(pose, intrinsics_33, disp_BHW.shape[1], EYE_HEIGHT))(pose_B44)
    return jnp.where((disp_BHW <= SKY_DISPARITY) & (ground >= 1.0 / within), ground, disp_BHW)


GROUND_FLOOR = 2.0  # metres: the dream's ground lies at most this much lower than a level ground under the eye


def ground_floor(disp_BHW, pose_B44, intrinsics_33, within: float):
    """The dream's disparity with each pixel that reads as something farther than a level ground EYE_HEIGHT +
    GROUND_FLOOR under the eye, where that ground lies within `within` metres of view depth, brought up to that
    ground (with `ModelConfig.ground_within`). The camera head reads the dream's disparity: ground painted lower
    than the eye's reads as a slope down, the eye goes down, and the ground it paints next lies lower still;
    held W, the eye sank 9 m in 200 steps (20 m in one walk) and saw the world from under its ground
    (docs/model.md, session 43). The truth's ground lies lower than that floor on 0.15% of such pixels on the
    explorer's walks and 7% in described worlds (mountains); a floor 0.5 m down kept the eye nearer but lost in
    both, and one on painted pixels only lost after step 100."""
    floor = jax.vmap(lambda pose: ground_disparity(pose, intrinsics_33, disp_BHW.shape[1],
                                                   EYE_HEIGHT + GROUND_FLOOR))(pose_B44)
    low = (disp_BHW > SKY_DISPARITY) & (floor >= 1.0 / within)
    return jnp.where(low, jnp.maximum(disp_BHW, floor), disp_BHW)


def sky_coloured(rgb_BHWC, disp_BHW, painted_BHW, memory: mem.Memory, pose_B44, intrinsics_33, above: float):
    """The frame with each painted pixel that reads as sky and looks more than `above` degrees over the horizon in
    the real start frames' sky colour (`ModelConfig.sky_above`; where they show no sky, as it was)."""
    colour_B3, known_B = mem.sky_colour(memory)
    high = jax.vmap(lambda pose: ray_elevation(pose, intrinsics_33, disp_BHW.shape[1]))(pose_B44) > jnp.sin(
        jnp.radians(above))
    sky = painted_BHW & (disp_BHW <= SKY_DISPARITY) & high & known_B[:, None, None]
    return jnp.where(sky[..., None], colour_B3[:, None, None, :], rgb_BHWC)
