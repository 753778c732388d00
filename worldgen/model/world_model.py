"""The world model: camera motion from the action, reprojection of a 3D point cache, and a flow-matching
U-Net that completes the reprojection into the next RGB frame plus disparity.

Dimension keys: B batch, T time, K context frames, N cached points, H height, W width, C channels.

Per step (see `step`): predict the camera delta from (action, last disparity) -> move the pose ->
splat the cached coloured points into it -> sample the next frame with `sample_steps` flow-matching steps
conditioned on the warp, the last two frames and the action -> unproject the new frame into the cache
slot of the oldest generated frame. The cache is a ring buffer of `cache_frames` frames, so a step costs
the same at step 10 and step 10,000; the real starting frames keep their slots. With `geometry=False`
the warp inputs are zero and the same network is a plain 2D action-conditioned predictor.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from worldgen.model.config import ModelConfig
from worldgen.model.geometry import (apply_delta, depth_to_disparity, disparity_to_depth, splat,
                                     unproject)
from worldgen.model.unet import UNet, timestep_embedding

IN_CHANNELS = 15  # x_t 3, warp rgb 3, warp disparity 1, warp mask 1, last rgb 3, previous rgb 3, last disparity 1
POSE_POOL = 8  # the pose head sees the last disparity average-pooled to POSE_POOL x POSE_POOL


class WorldModel(nnx.Module):
    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        d = config.embed_dim
        self.action_embed = nnx.Embed(config.num_actions, d, rngs=rngs)
        self.time_mlp = nnx.Linear(d, d, rngs=rngs)
        self.unet = UNet(IN_CHANNELS, 4, config.channels, d, rngs=rngs)
        self.pose_in = nnx.Linear(POSE_POOL * POSE_POOL + config.num_actions, 128, rngs=rngs)
        self.pose_hidden = nnx.Linear(128, 128, rngs=rngs)
        self.pose_out = nnx.Linear(128, 4, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def denoise(self, x_BHWC, t_B, cond_BHWC, action_B):
        """x-prediction: clean RGB in [-1, 1] and disparity, from noisy RGB at flow time t.

        The network predicts a correction to a base image: the warp where it covers, else the last frame.
        """
        emb = nnx.silu(self.action_embed(action_B) + self.time_mlp(timestep_embedding(t_B, self.config.embed_dim)))
        out = self.unet(jnp.concatenate([x_BHWC, cond_BHWC], axis=-1), emb)
        mask = cond_BHWC[..., 4:5]
        base_rgb = cond_BHWC[..., 0:3] + (1 - mask) * cond_BHWC[..., 5:8]
        base_disp = cond_BHWC[..., 3] + (1 - mask[..., 0]) * cond_BHWC[..., 11]
        return base_rgb + out[..., :3], base_disp + out[..., 3]

    def pose_delta(self, last_disp_BHW, action_B):
        """(forward m, right m, up m, yaw rad) camera motion for the action, in the heading frame."""
        b, h, w = last_disp_BHW.shape
        pooled = last_disp_BHW.reshape(b, POSE_POOL, h // POSE_POOL, POSE_POOL, w // POSE_POOL).mean((2, 4))
        x = jnp.concatenate([pooled.reshape(b, -1), jax.nn.one_hot(action_B, self.config.num_actions)], -1)
        return self.pose_out(nnx.silu(self.pose_hidden(nnx.silu(self.pose_in(x)))))


# --- conditioning ----------------------------------------------------------------------------------

def to_signed(rgb_uint8):
    return rgb_uint8.astype(jnp.float32) / 127.5 - 1.0


def to_uint8(rgb_signed):
    return jnp.clip(jnp.round((rgb_signed + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def warp_cache(points_BN3, colors_BN3, valid_BN, pose_B44, intrinsics_33, resolution: int):
    """Splat each batch element's cache into its pose: warp rgb (signed), disparity and mask."""
    fn = lambda p, c, v, pose: splat(p, c, v, pose, intrinsics_33, resolution, resolution)
    rgb, depth, mask = jax.vmap(fn)(points_BN3, colors_BN3, valid_BN, pose_B44)
    return rgb, depth_to_disparity(depth), mask


def warp_composite(config: ModelConfig, state, pose_B44, n: int):
    """Warp the cache with the real starting frames first: where they cover a pixel (sky included) they
    win; generated frames fill everything else. A revisited view is then the real one, not the dream's."""
    pinned = config.context * n
    warp = lambda sl: warp_cache(state["points"][:, sl], state["colors"][:, sl], state["valid"][:, sl], pose_B44,
                                 state["intrinsics"], config.resolution)
    rgb_r, disp_r, mask_r = warp(slice(0, pinned))
    rgb_g, disp_g, mask_g = warp(slice(pinned, None))
    use_real = mask_r > 0
    rgb = jnp.where(use_real[..., None], rgb_r, rgb_g)
    disp = jnp.where(use_real, disp_r, disp_g)
    return rgb, disp, jnp.maximum(mask_r, mask_g)


def conditioning(warp_rgb, warp_disp, warp_mask, last_rgb, prev_rgb, last_disp):
    """The 12 conditioning channels (everything but x_t), all (B,H,W,.)."""
    return jnp.concatenate([warp_rgb * warp_mask[..., None], warp_disp[..., None], warp_mask[..., None],
                            last_rgb, prev_rgb, last_disp[..., None]], axis=-1)


def sample(model: WorldModel, cond_BHWC, action_B, key, steps: int, temperature: float = 1.0):
    """Few-step flow-matching sampler (deterministic given the key). Returns rgb (signed) and disparity."""
    b, h, w, _ = cond_BHWC.shape
    noise = temperature * jax.random.normal(key, (b, h, w, 3))
    x, rgb, disp = noise, noise, None
    for i in range(steps):
        t, t_next = i / steps, (i + 1) / steps
        rgb, disp = model.denoise(x, jnp.full((b,), t), cond_BHWC, action_B)
        eps = (x - t * rgb) / (1.0 - t)
        x = (1.0 - t_next) * eps + t_next * rgb
    return jnp.clip(rgb, -1.0, 1.0), jnp.maximum(disp, 0.0)


# --- rollout state ---------------------------------------------------------------------------------

def init_state(config: ModelConfig, frames_BKHWC, depth_BKHW, poses_BK44, intrinsics_33):
    """Rollout state from K real frames (uint8) with depth and poses (zeros when geometry is off)."""
    b, k, h, w, _ = frames_BKHWC.shape
    n = h * w
    rgb = to_signed(frames_BKHWC)
    state = {
        "points": jnp.zeros((b, config.cache_frames * n, 3)),
        "colors": jnp.zeros((b, config.cache_frames * n, 3)),
        "valid": jnp.zeros((b, config.cache_frames * n), bool),
        "slot": jnp.zeros((), jnp.int32),
        "last_rgb": rgb[:, -1],
        "prev_rgb": rgb[:, -2] if k > 1 else rgb[:, -1],
        "last_disp": depth_to_disparity(depth_BKHW[:, -1].astype(jnp.float32)),
        "pose": poses_BK44[:, -1].astype(jnp.float32),
        "intrinsics": jnp.asarray(intrinsics_33, jnp.float32),
    }
    if config.geometry:
        for i in range(k):
            state = fuse(config, state, rgb[:, i], depth_BKHW[:, i].astype(jnp.float32), poses_BK44[:, i], sky=True)
    return state


def fuse(config: ModelConfig, state, rgb_BHWC, depth_BHW, pose_B44, sky: bool = False):
    """Write one frame's coloured points into the next cache slot; with `sky`, also its sky (as points at
    SKY_DEPTH). Real frames keep their sky; a dreamed sky is not remembered, so its errors do not persist.

    The first `context` slots hold the real frames a rollout starts from and are never overwritten by
    generated frames; generated frames cycle through the remaining slots.
    """
    n = rgb_BHWC.shape[1] * rgb_BHWC.shape[2]
    pts, ok = jax.vmap(lambda d, p: unproject(d, p, state["intrinsics"], sky=sky))(depth_BHW, pose_B44)
    slot = state["slot"]
    upd = lambda buf, new: jax.lax.dynamic_update_slice_in_dim(buf, new, slot * n, axis=1)
    k, total = config.context, config.cache_frames
    next_slot = jnp.where(slot + 1 < total, slot + 1, k if total > k else 0)
    return dict(state, points=upd(state["points"], pts), colors=upd(state["colors"], rgb_BHWC.reshape(len(pts), n, 3)),
                valid=upd(state["valid"], ok), slot=next_slot.astype(jnp.int32))


def step(model: WorldModel, state, action_B, key):
    """One generated step for every batch element. Returns (new state, outputs)."""
    config = model.config
    b, h, w, _ = state["last_rgb"].shape
    if config.geometry:
        delta = model.pose_delta(state["last_disp"], action_B)
        pose = jax.vmap(apply_delta)(state["pose"], delta)
        warp_rgb, warp_disp, mask = warp_composite(config, state, pose, h * w)
    else:
        pose = state["pose"]
        warp_rgb, warp_disp, mask = jnp.zeros((b, h, w, 3)), jnp.zeros((b, h, w)), jnp.zeros((b, h, w))
    cond = conditioning(warp_rgb, warp_disp, mask, state["last_rgb"], state["prev_rgb"], state["last_disp"])
    rgb, disp = sample(model, cond, action_B, key, config.sample_steps, config.sample_temperature)
    depth = disparity_to_depth(disp)
    new = dict(state, last_rgb=rgb, prev_rgb=state["last_rgb"], last_disp=disp, pose=pose)
    if config.geometry:
        new = fuse(config, new, rgb, depth, pose)
    return new, {"rgb": to_uint8(rgb), "depth": depth, "pose": pose, "coverage": mask.mean((1, 2))}


def rollout(model: WorldModel, state, actions_BT, key):
    """Generate len(actions) steps with lax.scan: frames_BTHWC uint8, depth_BTHW, poses_BT44."""
    keys = jax.random.split(key, actions_BT.shape[1])

    def body(carry, inputs):
        action, k = inputs
        carry, out = step(model, carry, action, k)
        return carry, out

    state, outs = jax.lax.scan(body, state, (actions_BT.T, keys))
    return state, {k: jnp.moveaxis(v, 0, 1) for k, v in outs.items()}
