"""The world model's training objective: teacher-forced, noise-augmented, flow-matching + depth + pose.

Dimension keys: B batch, T window length, K context frames, M = B * targets per window, H, W, C.

Every frame t >= K of a window is a target, predicted from frames t-K..t-1 and action t only (causal).
Robustness to its own errors: context colours get Gaussian noise, context depths a random scale, and
context poses a random jitter before they are fused and reprojected, so the network learns to correct
imperfect warps. With probability IDENTITY_P a target is replaced by its own last frame, action noop and
no warp: that trains depth from a single image, used to start a dream from any picture.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from worldgen.model.geometry import (apply_delta, depth_to_disparity, disparity_to_depth, pose_delta, splat,
                                     unproject)
from worldgen.model.world_model import WorldModel, conditioning, sample, to_signed

IDENTITY_P = 0.1
POSE_WEIGHT = 10.0
DISP_WEIGHT = 2.0
_POSE_JITTER = jnp.array([0.05, 0.05, 0.02, 0.01])


def warp_context(ctx_rgb_MKHWC, ctx_depth_MKHW, ctx_pose_MK44, target_pose_M44, intrinsics_33, sky_K=True):
    """Reproject K context frames (colours, depth, poses) into each target camera: rgb, disparity, mask.
    `sky_K` says which frames keep their sky as points (real frames do, dreamed ones do not)."""
    m, k, h, w, _ = ctx_rgb_MKHWC.shape
    sky_MK = jnp.broadcast_to(jnp.asarray(sky_K, bool), (m, k))
    pts, ok = jax.vmap(jax.vmap(lambda d, p, s: unproject(d, p, intrinsics_33, sky=s)))(
        ctx_depth_MKHW, ctx_pose_MK44, sky_MK)
    rgb, depth, mask = jax.vmap(lambda p, c, v, pose: splat(p, c, v, pose, intrinsics_33, h, w))(
        pts.reshape(m, -1, 3), ctx_rgb_MKHWC.reshape(m, -1, 3), ok.reshape(m, -1), target_pose_M44)
    return rgb, depth_to_disparity(depth), mask


def _gather_targets(batch, k: int):
    """Per-target views of a window batch, flattened to M = B * (T - K)."""
    frames = to_signed(batch["frames_BTHWC"])
    b, t = frames.shape[:2]
    n = t - k
    ctx_idx = jnp.arange(n)[:, None] + jnp.arange(k)[None, :]  # (n, K)
    tgt = jnp.arange(k, t)
    flat = lambda x: x.reshape((b * n,) + x.shape[2:])
    out = {"ctx_rgb": flat(frames[:, ctx_idx]), "target_rgb": flat(frames[:, tgt]),
           "last_rgb": flat(frames[:, tgt - 1]), "prev_rgb": flat(frames[:, jnp.maximum(tgt - 2, 0)]),
           "action": flat(batch["actions_BT"][:, tgt])}
    if "depth_BTHW" in batch:
        depth, poses = batch["depth_BTHW"], batch["poses_BT44"]
        out.update(ctx_depth=flat(depth[:, ctx_idx]), ctx_pose=flat(poses[:, ctx_idx]),
                   target_depth=flat(depth[:, tgt]), target_pose=flat(poses[:, tgt]),
                   last_depth=flat(depth[:, tgt - 1]), last_pose=flat(poses[:, tgt - 1]))
    return out


def teacher_forced(model: WorldModel, batch, intrinsics_33, key, augment: bool = True):
    """Predictions and targets for every target frame of the window batch."""
    config = model.config
    g = _gather_targets(batch, config.context)
    m, h, w = g["target_rgb"].shape[:3]
    k_noise, k_depth, k_pose, k_id, k_t, k_grid, k_eps = jax.random.split(key, 7)
    sigma = jax.random.uniform(k_noise, (m, 1, 1, 1), maxval=0.15) * augment
    noisy = lambda x, kk: x + sigma.reshape((m,) + (1,) * (x.ndim - 1)) * jax.random.normal(kk, x.shape)
    kn = jax.random.split(k_noise, 3)
    last_rgb, prev_rgb = noisy(g["last_rgb"], kn[0]), noisy(g["prev_rgb"], kn[1])
    action = g["action"]
    if config.geometry:
        scale = jnp.exp(0.03 * augment * jax.random.normal(k_depth, (m, config.context + 1, 1, 1)))
        ctx_depth = g["ctx_depth"] * scale[:, :-1]
        last_disp = depth_to_disparity(g["last_depth"] * scale[:, -1])
        jitter = _POSE_JITTER * augment * jax.random.normal(k_pose, (m, config.context, 4))
        ctx_pose = jax.vmap(jax.vmap(apply_delta))(g["ctx_pose"], jitter)
        warp_rgb, warp_disp, mask = warp_context(noisy(g["ctx_rgb"], kn[2]), ctx_depth, ctx_pose,
                                                 g["target_pose"], intrinsics_33)
        target_rgb, target_disp = g["target_rgb"], depth_to_disparity(g["target_depth"])
        pose_target = jax.vmap(pose_delta)(g["last_pose"], g["target_pose"])
        ident = jax.random.uniform(k_id, (m,)) < IDENTITY_P * augment
        sel = lambda a, b: jnp.where(ident.reshape((m,) + (1,) * (a.ndim - 1)), a, b)
        target_rgb = sel(g["last_rgb"], target_rgb)
        target_disp = sel(depth_to_disparity(g["last_depth"]), target_disp)
        # A single image has no warp, no depth and no previous frame.
        mask, pose_target = sel(jnp.zeros_like(mask), mask), sel(jnp.zeros_like(pose_target), pose_target)
        last_disp, prev_rgb = sel(jnp.zeros_like(last_disp), last_disp), sel(last_rgb, prev_rgb)
        action = jnp.where(ident, 0, action)
        pose_pred = model.pose_delta(last_disp, action)
    else:
        warp_rgb, warp_disp, mask = jnp.zeros_like(last_rgb), jnp.zeros((m, h, w)), jnp.zeros((m, h, w))
        last_disp = jnp.zeros((m, h, w))
        target_rgb, target_disp = g["target_rgb"], None
        pose_pred = pose_target = None
    cond = conditioning(warp_rgb, warp_disp, mask, last_rgb, prev_rgb, last_disp)
    steps = config.sample_steps
    grid_t = jax.random.randint(k_grid, (m,), 0, steps) / steps
    t = jnp.where(jax.random.uniform(k_t, (m,)) < 0.5, grid_t, jax.random.uniform(k_t, (m,), maxval=0.999))
    eps = jax.random.normal(k_eps, target_rgb.shape)
    x_t = (1 - t)[:, None, None, None] * eps + t[:, None, None, None] * target_rgb
    rgb_pred, disp_pred = model.denoise(x_t, t, cond, action)
    return {"rgb_pred": rgb_pred, "rgb_target": target_rgb, "disp_pred": disp_pred, "disp_target": target_disp,
            "pose_pred": pose_pred, "pose_target": pose_target, "coverage": mask.mean()}


def self_forced(model: WorldModel, batch, intrinsics_33, key):
    """Train on the model's own rollout: sample frames K..T-2 one by one (no gradient), each from the K
    frames before it, real or dreamed (with its predicted depth, and no sky, as at inference). Then predict
    the last frame of the window from a context that is mostly the model's own."""
    config = model.config
    k = config.context
    frames = to_signed(batch["frames_BTHWC"])
    depth, poses, actions = batch["depth_BTHW"], batch["poses_BT44"], batch["actions_BT"]
    b, n = frames.shape[:2]
    rgb, dep = list(jnp.moveaxis(frames, 1, 0)), list(jnp.moveaxis(depth, 1, 0))
    disp = [depth_to_disparity(d) for d in dep]
    real = [True] * n
    keys = jax.random.split(key, n + 1)

    def cond_at(t):
        ctx = slice(t - k, t)
        warp = warp_context(jnp.stack(rgb[ctx], 1), jnp.stack(dep[ctx], 1), poses[:, ctx], poses[:, t],
                            intrinsics_33, sky_K=jnp.array(real[ctx]))
        return conditioning(*warp, rgb[t - 1], rgb[max(t - 2, 0)], disp[t - 1])

    for t in range(k, n - 1):
        own_rgb, own_disp = jax.lax.stop_gradient(
            sample(model, cond_at(t), actions[:, t], keys[t], config.sample_steps, config.sample_temperature))
        rgb[t], disp[t], dep[t], real[t] = own_rgb, own_disp, disparity_to_depth(own_disp), False
    cond, target = cond_at(n - 1), frames[:, n - 1]
    t = jax.random.uniform(keys[n - 1], (b,), maxval=0.999)
    x_t = (1 - t)[:, None, None, None] * jax.random.normal(keys[n], target.shape) + t[:, None, None, None] * target
    rgb_pred, disp_pred = model.denoise(x_t, t, cond, actions[:, n - 1])
    return jnp.mean((rgb_pred - target) ** 2), jnp.mean(jnp.abs(disp_pred - depth_to_disparity(depth[:, n - 1])))


def loss_fn(model: WorldModel, batch, intrinsics_33, key, self_forced_weight: float = 0.0):
    """Scalar loss and metrics for one window batch. With self_forced_weight > 0 (geometry models), the
    loss also covers the last frame of the window predicted from the model's own rollout (see `self_forced`)."""
    out = teacher_forced(model, batch, intrinsics_33, key)
    rgb_mse = jnp.mean((out["rgb_pred"] - out["rgb_target"]) ** 2)
    metrics = {"rgb_mse": rgb_mse, "psnr": 10 * jnp.log10(4.0 / rgb_mse), "coverage": out["coverage"]}
    loss = rgb_mse
    if self_forced_weight and model.config.geometry:
        own_mse, own_disp = self_forced(model, batch, intrinsics_33, jax.random.fold_in(key, 1))
        metrics.update(self_forced_mse=own_mse, self_forced_disp_l1=own_disp)
        loss = loss + self_forced_weight * (own_mse + DISP_WEIGHT * own_disp)
    if out["disp_target"] is not None:
        metrics["disp_l1"] = jnp.mean(jnp.abs(out["disp_pred"] - out["disp_target"]))
        metrics["pose_mse"] = jnp.mean((out["pose_pred"] - out["pose_target"]) ** 2)
        loss = loss + DISP_WEIGHT * metrics["disp_l1"] + POSE_WEIGHT * metrics["pose_mse"]
    metrics["loss"] = loss
    return loss, metrics


POSE_SCALE = jnp.array([1.0, 1.0, 1.0, 10.0])  # a yaw error of 0.1 rad moves the whole image; weigh it up


def pose_loss_fn(model: WorldModel, batch, intrinsics_33, key):
    """Camera-motion loss alone (the `pose` training stage): from the last disparity and the action."""
    depth, poses, actions = batch["depth_BTHW"], batch["poses_BT44"], batch["actions_BT"]
    scale = jnp.exp(0.03 * jax.random.normal(key, (depth.shape[0], 1, 1)))
    last_disp = depth_to_disparity(depth[:, -2] * scale)
    target = jax.vmap(pose_delta)(poses[:, -2], poses[:, -1])
    pred = model.pose_delta(last_disp, actions[:, -1])
    err = (pred - target) * POSE_SCALE
    metrics = {"pose_mse": jnp.mean((pred - target) ** 2),
               "yaw_err_deg": jnp.degrees(jnp.sqrt(jnp.mean((pred - target)[:, 3] ** 2))),
               "move_err_cm": 100 * jnp.sqrt(jnp.mean(jnp.sum((pred - target)[:, :3] ** 2, -1)))}
    metrics["loss"] = jnp.mean(err ** 2)
    return metrics["loss"], metrics
