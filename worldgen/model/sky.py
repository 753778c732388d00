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


def sky_coloured(rgb_BHWC, disp_BHW, painted_BHW, memory: mem.Memory, pose_B44, intrinsics_33, above: float):
    """The frame with each painted pixel that reads as sky and looks more than `above` degrees over the horizon in
    the real start frames' sky colour (`ModelConfig.sky_above`; where they show no sky, as it was)."""
    colour_B3, known_B = mem.sky_colour(memory)
    high = jax.vmap(lambda pose: ray_elevation(pose, intrinsics_33, disp_BHW.shape[1]))(pose_B44) > jnp.sin(
        jnp.radians(above))
    sky = painted_BHW & (disp_BHW <= SKY_DISPARITY) & high & known_B[:, None, None]
    return jnp.where(sky[..., None], colour_B3[:, None, None, :], rgb_BHWC)
