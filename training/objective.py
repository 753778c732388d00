"""The world model's training objective: teacher-forced, noise-augmented, flow-matching + depth + pose.

Dimension keys: B batch, T window length, K context frames, M = B * targets per window, H, W, C.

Every frame t >= K of a window is a target, predicted from frames t-K..t-1 and action t only (causal).
Robustness to its own errors: context colours get Gaussian noise, context depths a random scale, and
context poses a random jitter before they are fused and reprojected, so the network learns to correct
imperfect warps (with `ModelConfig.noise_level` it is told the noise's standard deviation, 0 at inference).
With probability IDENTITY_P a target is replaced by its own last frame, action noop and
no warp: that trains depth from a single image, used to start a dream from any picture.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from worldgen.model import memory
from worldgen.model.geometry import apply_delta, depth_to_disparity, pose_delta
from worldgen.model.motion import chosen_motion
from worldgen.model.world_model import (CONTEXT_NOISE_MAX, WorldModel, advance, complete, conditioning, init_state,
                                        palette_of, recall, to_signed)

TEACHER_TARGETS = 4  # teacher-forced targets per window (the frames after the K context frames)
IDENTITY_P = 0.1
POSE_WEIGHT = 10.0
DISP_WEIGHT = 2.0
_POSE_JITTER = jnp.array([0.05, 0.05, 0.02, 0.01])


def warp_context(ctx_rgb_MKHWC, ctx_depth_MKHW, ctx_pose_MK44, target_pose_M44, intrinsics_33, levels: int):
    """Draw K real context frames (colours, depth, poses; sky kept) into each target camera the way the
    world memory draws its pinned frames (into `levels` pyramid levels): rgb, disparity, coverage, and what is
    known at full resolution (the pixels a `show_memory` frame shows from memory)."""
    m, k, h, w, _ = ctx_rgb_MKHWC.shape
    pts, ok, rad = memory.surfels(ctx_depth_MKHW.reshape(m * k, h, w), ctx_pose_MK44.reshape(m * k, 4, 4),
                                  intrinsics_33, sky=True)
    draw = lambda p, c, r, v, pose: memory.render_points(p, c, r, v, pose, intrinsics_33, h, levels=levels)
    rgb, depth, mask, fine = jax.vmap(draw)(pts.reshape(m, -1, 3), ctx_rgb_MKHWC.reshape(m, -1, 3),
                                            rad.reshape(m, -1), ok.reshape(m, -1), target_pose_M44)
    return rgb, depth_to_disparity(depth), mask, fine


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
    sigma = jax.random.uniform(k_noise, (m, 1, 1, 1), maxval=CONTEXT_NOISE_MAX) * augment
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
        warp_rgb, warp_disp, mask, fine = warp_context(noisy(g["ctx_rgb"], kn[2]), ctx_depth, ctx_pose,
                                                       g["target_pose"], intrinsics_33, config.pyramid_levels)
        target_rgb, target_disp = g["target_rgb"], depth_to_disparity(g["target_depth"])
        pose_target = jax.vmap(pose_delta)(g["last_pose"], g["target_pose"])
        ident = jax.random.uniform(k_id, (m,)) < IDENTITY_P * augment
        sel = lambda a, b: jnp.where(ident.reshape((m,) + (1,) * (a.ndim - 1)), a, b)
        target_rgb = sel(g["last_rgb"], target_rgb)
        target_disp = sel(depth_to_disparity(g["last_depth"]), target_disp)
        # A single image has no warp, no depth and no previous frame.
        mask, pose_target = sel(jnp.zeros_like(mask), mask), sel(jnp.zeros_like(pose_target), pose_target)
        fine = sel(jnp.zeros_like(fine), fine)
        last_disp, prev_rgb = sel(jnp.zeros_like(last_disp), last_disp), sel(last_rgb, prev_rgb)
        action = jnp.where(ident, 0, action)
        pose_pred, outcome_loss, _ = pose_prediction(model, last_disp, action, g["last_pose"], pose_target)
    else:
        warp_rgb, warp_disp, mask = jnp.zeros_like(last_rgb), jnp.zeros((m, h, w)), jnp.zeros((m, h, w))
        fine = jnp.zeros((m, h, w), bool)
        last_disp = jnp.zeros((m, h, w))
        target_rgb, target_disp = g["target_rgb"], None
        pose_pred = pose_target = outcome_loss = None
    # Every context frame here is real: the provenance input is the warp's coverage.
    cond = conditioning(config, warp_rgb, warp_disp, mask, last_rgb, prev_rgb, last_disp, mask)
    steps = config.sample_steps
    grid_t = jax.random.randint(k_grid, (m,), 0, steps) / steps
    t = jnp.where(jax.random.uniform(k_t, (m,)) < 0.5, grid_t, jax.random.uniform(k_t, (m,), maxval=0.999))
    eps = jax.random.normal(k_eps, target_rgb.shape)
    x_t = (1 - t)[:, None, None, None] * eps + t[:, None, None, None] * target_rgb
    rgb_pred, disp_pred = model.denoise(x_t, t, cond, action, sigma.reshape(m))
    return {"rgb_pred": rgb_pred, "rgb_target": target_rgb, "disp_pred": disp_pred, "disp_target": target_disp,
            "pose_pred": pose_pred, "pose_target": pose_target, "outcome_loss": outcome_loss, "coverage": mask.mean(),
            "shown": fine & config.show_memory}


def pose_prediction(model: WorldModel, last_disp_BHW, action_B, last_pose_B44, target_B4):
    """(regressed motion, loss of the move-outcome head, motion as a dream takes it) of the camera head.

    With `ModelConfig.move_outcomes` the outcome nearest the true move is the classifier's label, and its
    squared error trains the learned full step of each action; that loss is 0 without the option."""
    pred, outcomes, logits = model.pose_head(last_disp_BHW, action_B, last_pose_B44)
    used = chosen_motion(pred, outcomes, logits)
    if outcomes is None:
        return pred, jnp.zeros(()), used
    dist = jnp.sum((outcomes - target_B4[:, None, :2]) ** 2, -1)
    label = jnp.argmin(jax.lax.stop_gradient(dist), -1)
    nearest = jnp.take_along_axis(dist, label[:, None], 1)[:, 0]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, label).mean()
    return pred, ce + nearest.mean(), used


def rollout_conds(model: WorldModel, frames_BTHWC, depth_BTHW, poses_BT44, actions_BT, intrinsics_33, key):
    """Roll the model out through its world memory over whole windows, from K real frames, with the true
    actions and camera poses and no gradient (each frame made and written as at inference). Returns the
    network's inputs at every step after the K real frames, conds_TBHWC (T - K, B, H, W, 12), and the pixels
    each frame showed from memory instead of the network's output, shown_TBHW (all False without
    `ModelConfig.show_memory`)."""
    config = model.config
    k = config.context
    graphdef, params = nnx.split(model)
    frozen = nnx.merge(graphdef, jax.tree.map(jax.lax.stop_gradient, params))
    state = init_state(config, frames_BTHWC[:, :k], depth_BTHW[:, :k], poses_BT44[:, :k], intrinsics_33)

    def body(state, inputs):
        pose, action, kk = inputs
        cond, fine = recall(config, state, pose)
        rgb, disp = complete(frozen, cond, fine, action, kk, config.sample_temperature, palette_of(state))
        return advance(config, state, rgb, disp, pose, fine), (cond, fine & config.show_memory)

    t = frames_BTHWC.shape[1]
    steps = (jnp.moveaxis(poses_BT44[:, k:], 1, 0), actions_BT[:, k:].T, jax.random.split(key, t - k))
    return jax.lax.stop_gradient(jax.lax.scan(body, state, steps)[1])


def score_steps(model: WorldModel, cond_MHWC, action_M, target_MHWC, target_disp_MHW, key, shown_MHW=None):
    """Flow-matching MSE and disparity L1 of predicting the true frames from given network inputs (e.g.
    inputs met in the model's own rollouts). The RGB error counts only pixels not in `shown_MHW` (those a
    `show_memory` rollout showed from memory, where the network's colours are not used)."""
    m = cond_MHWC.shape[0]
    k_t, k_eps = jax.random.split(key)
    tt = jax.random.uniform(k_t, (m,), maxval=0.999)
    x_t = ((1 - tt)[:, None, None, None] * jax.random.normal(k_eps, target_MHWC.shape)
           + tt[:, None, None, None] * target_MHWC)
    rgb_pred, disp_pred = model.denoise(x_t, tt, cond_MHWC, action_M)
    return painted_mse(rgb_pred, target_MHWC, shown_MHW), jnp.mean(jnp.abs(disp_pred - target_disp_MHW))


def painted_mse(rgb_pred_MHWC, target_MHWC, shown_MHW=None):
    """Colour MSE over the pixels not in `shown_MHW` (those a `show_memory` frame shows from memory, where the
    network's colours are not used); over every pixel without a mask."""
    err = jnp.mean((rgb_pred_MHWC - target_MHWC) ** 2, -1)
    if shown_MHW is None:
        return err.mean()
    used = 1.0 - shown_MHW.astype(err.dtype)
    return jnp.sum(err * used) / jnp.maximum(used.sum(), 1.0)


def own_rollout(model: WorldModel, batch, intrinsics_33, key, targets: int):
    """Train the way the model is used, online: roll it out over the whole window (`rollout_conds`), then
    score `targets` randomly chosen steps of that rollout against the true frames.
    Returns (flow-matching MSE, disparity L1) of those steps."""
    k = model.config.context
    frames, depth, poses, actions = (batch["frames_BTHWC"], batch["depth_BTHW"], batch["poses_BT44"],
                                     batch["actions_BT"])
    b, t = frames.shape[:2]
    k_roll, k_pick, k_score = jax.random.split(key, 3)
    conds, shown = rollout_conds(model, frames, depth, poses, actions, intrinsics_33, k_roll)
    flat = lambda x: jnp.moveaxis(x[:, k:], 1, 0).reshape((-1,) + x.shape[2:])
    pick = jax.random.choice(k_pick, (t - k) * b, (min(targets, (t - k) * b),), replace=False)
    cond, shown = (x.reshape((-1,) + x.shape[2:])[pick] for x in (conds, shown))
    target_disp = depth_to_disparity(flat(depth)[pick].astype(jnp.float32))
    return score_steps(model, cond, flat(actions)[pick], to_signed(flat(frames)[pick]), target_disp, k_score, shown)


DREAM_KEYS = ("dream_cond_BRHWC", "dream_action_BR", "dream_rgb_BRHWC", "dream_disp_BRHW", "dream_shown_BRHW")
DREAM_CAMERA_KEYS = ("dream_last_disp_BRHW", "dream_action_BR", "dream_last_pose_BR44", "dream_pose_BR44")


def loss_fn(model: WorldModel, batch, intrinsics_33, key, rollout_weight: float = 0.0, rollout_targets: int = 32,
            dream_weight: float = 1.0, painted_only: bool = False):
    """Scalar loss and metrics for one window batch: teacher-forced on the first K + 4 frames of each
    window (with `painted_only`, the colours only where the frame shows the network's own: not where a
    `show_memory` model shows what memory knows at full resolution); with rollout_weight > 0 (geometry
    models), plus `rollout_targets` steps of the model's own rollout over the whole window (see
    `own_rollout`); when the batch holds dream data (`training.dream_data`, keys DREAM_KEYS), plus
    `dream_weight` x the loss on those stored rollout steps."""
    short = model.config.context + TEACHER_TARGETS
    windows = {name: v[:, :short] for name, v in batch.items() if name not in DREAM_KEYS}
    out = teacher_forced(model, windows, intrinsics_33, key)
    rgb_mse = painted_mse(out["rgb_pred"], out["rgb_target"], out["shown"] if painted_only else None)
    metrics = {"rgb_mse": rgb_mse, "psnr": 10 * jnp.log10(4.0 / rgb_mse), "coverage": out["coverage"],
               "shown": out["shown"].mean()}
    loss = rgb_mse
    if rollout_weight and model.config.geometry:
        own_mse, own_disp = own_rollout(model, batch, intrinsics_33, jax.random.fold_in(key, 1), rollout_targets)
        metrics.update(rollout_mse=own_mse, rollout_psnr=10 * jnp.log10(4.0 / own_mse), rollout_disp_l1=own_disp)
        loss = loss + rollout_weight * (own_mse + DISP_WEIGHT * own_disp)
    if DREAM_KEYS[0] in batch:
        flat = lambda x: x.reshape((-1,) + x.shape[2:])
        cond, action, rgb, disp, shown = (flat(batch[name]) for name in DREAM_KEYS)
        dream_mse, dream_disp = score_steps(model, cond, action, to_signed(rgb), disp, jax.random.fold_in(key, 2),
                                            shown)
        metrics.update(dream_mse=dream_mse, dream_psnr=10 * jnp.log10(4.0 / dream_mse), dream_disp_l1=dream_disp)
        loss = loss + dream_weight * (dream_mse + DISP_WEIGHT * dream_disp)
    if out["disp_target"] is not None:
        metrics["disp_l1"] = jnp.mean(jnp.abs(out["disp_pred"] - out["disp_target"]))
        metrics["pose_mse"] = jnp.mean((out["pose_pred"] - out["pose_target"]) ** 2)
        loss = loss + DISP_WEIGHT * metrics["disp_l1"] + POSE_WEIGHT * metrics["pose_mse"] + out["outcome_loss"]
    metrics["loss"] = loss
    return loss, metrics


POSE_SCALE = jnp.array([1.0, 1.0, 1.0, 10.0])  # a yaw error of 0.1 rad moves the whole image; weigh it up


def pose_loss_fn(model: WorldModel, batch, intrinsics_33, key):
    """Camera-motion loss alone (the `pose` training stage): from the last disparity and the action. When the
    batch holds stored dream steps (keys DREAM_CAMERA_KEYS), they are scored too: there the head reads the
    dream's own last disparity, as it does in a dream, and learns the true move from it."""
    depth, poses, actions = batch["depth_BTHW"], batch["poses_BT44"], batch["actions_BT"]
    scale = jnp.exp(0.03 * jax.random.normal(key, (depth.shape[0], 1, 1)))
    last_disp, action = depth_to_disparity(depth[:, -2] * scale), actions[:, -1]
    last_pose, pose = poses[:, -2], poses[:, -1]
    dreamed = DREAM_CAMERA_KEYS[0] in batch
    if dreamed:
        flat = lambda x: x.reshape((-1,) + x.shape[2:])
        extra = [flat(batch[name]) for name in DREAM_CAMERA_KEYS]
        last_disp, action, last_pose, pose = (jnp.concatenate([a, b.astype(a.dtype)]) for a, b in
                                              zip((last_disp, action, last_pose, pose), extra))
    target = jax.vmap(pose_delta)(last_pose, pose)
    pred, outcome_loss, used = pose_prediction(model, last_disp, action, last_pose, target)
    err = (pred - target) * POSE_SCALE
    move_cm = lambda rows: 100 * jnp.sqrt(jnp.mean(jnp.sum((used - target)[rows, :3] ** 2, -1)))
    metrics = {"pose_mse": jnp.mean((pred - target) ** 2),
               "yaw_err_deg": jnp.degrees(jnp.sqrt(jnp.mean((used - target)[:, 3] ** 2))),
               "move_err_cm": move_cm(slice(0, depth.shape[0]))}
    if dreamed:
        metrics["dream_move_err_cm"] = move_cm(slice(depth.shape[0], None))
    if model.config.move_outcomes:
        metrics["outcome_loss"] = outcome_loss
    metrics["loss"] = jnp.mean(err ** 2) + outcome_loss
    return metrics["loss"], metrics
