"""`Generator`: the fast inference path. The model is split once, the pure step functions are jitted
(compiled on first use per batch size), and the world cache keeps a step's cost constant.

Dimension keys: B batch, K context frames, T steps, H, W, C.
"""
from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image

from worldgen.errors import WorldgenError
from worldgen.model import world_model as wm
from worldgen.model.geometry import disparity_to_depth
from worldgen.player import EYE_HEIGHT, PITCH
from worldgen.camera import intrinsics_matrix
from worldgen.xla import jit


def default_pose() -> np.ndarray:
    """Eye at EYE_HEIGHT above the origin, facing -z with the player's pitch (for dreams from an image)."""
    c, s = np.cos(PITCH), np.sin(PITCH)
    pose = np.eye(4, dtype=np.float32)
    pose[:3, :3] = [[1, 0, 0], [0, c, -s], [0, s, c]]
    pose[1, 3] = EYE_HEIGHT
    return pose


def square_image(image: np.ndarray | Image.Image, resolution: int) -> np.ndarray:
    """Centre-crop any image to a square and resize it to resolution x resolution RGB uint8."""
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    im = im.convert("RGB")
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return np.asarray(im.resize((resolution, resolution), Image.BILINEAR), dtype=np.uint8)


class Generator:
    """Thread-safe wrapper around a WorldModel for rollouts, interactive play and agents."""

    def __init__(self, model: wm.WorldModel):
        self.model = model
        self.config = model.config
        self.graphdef, self.params = nnx.split(model)
        self.lock = threading.Lock()  # one compilation / one model call at a time
        # The jitted calls take the parameters as a flat list of arrays, which crosses into jit in C++; the
        # nnx.State tree costs 0.5-0.7 ms of Python per call to flatten (a step of the bundled model: ~22 ms).
        self.param_leaves, treedef = jax.tree.flatten(self.params)
        g = self.graphdef
        merged = lambda leaves: nnx.merge(g, jax.tree.unflatten(treedef, leaves))
        self._init = jit(lambda f, d, p, k: wm.init_state(self.config, f, d, p, k))
        # The engine's camera, where given, is an input of the same compiled step: ticking "follow the player"
        # in the viewer does not wait for a second compilation.
        self._step = jit(lambda s, st, a, key, pose, given: wm.step(merged(s), st, a, key, pose_B44=pose,
                                                                    given_B=given))
        self._rollout = jit(lambda s, st, a, key, poses, given: wm.rollout(merged(s), st, a, key, poses_BT44=poses,
                                                                           given_B=given))
        self._depth = jit(lambda s, img, key: self._single_image_disp(merged(s), img, key))

    def _check_actions(self, actions) -> jnp.ndarray:
        a = np.asarray(actions)
        if a.size and (a.min() < 0 or a.max() >= self.config.num_actions):
            raise WorldgenError(f"actions must be in 0..{self.config.num_actions - 1} for this model, "
                                f"got {int(a.min())}..{int(a.max())}")
        return jnp.asarray(a, jnp.int32)

    def init(self, frames_BKHWC, depth_BKHW=None, poses_BK44=None, intrinsics_33=None):
        frames = np.asarray(frames_BKHWC)
        b, k, h, w, _ = frames.shape
        if (h, w) != (self.config.resolution,) * 2:
            raise WorldgenError(f"frames are {h}x{w} but this model works at {self.config.resolution}x"
                                f"{self.config.resolution}")
        if depth_BKHW is None:
            depth_BKHW = np.zeros((b, k, h, w), np.float32)
            poses_BK44 = np.broadcast_to(default_pose(), (b, k, 4, 4))
        if intrinsics_33 is None:
            intrinsics_33 = intrinsics_matrix(h)
        with self.lock:
            return self._init(jnp.asarray(frames), jnp.asarray(depth_BKHW, jnp.float32),
                              jnp.asarray(poses_BK44, jnp.float32), jnp.asarray(intrinsics_33, jnp.float32))

    def camera(self, state, poses, lead: tuple) -> tuple:
        """(poses, given_B) for the compiled step or rollout: the engine's camera poses checked (`lead`: their
        leading shape), or, without them, the state's pose in their place and nothing given."""
        b = state.pose.shape[0]  # a step's own pose is the state's as it is: no work on the viewer's hot path
        own = state.pose if len(lead) == 1 else jnp.broadcast_to(state.pose[:, None], lead + (4, 4))
        if poses is None:
            return own, np.zeros(b, bool)
        # computed with the state's pose, so placed as it is (a fresh state's is not committed to a device, a
        # stepped one's is): the step sees the same kind of input either way and compiles once
        return jnp.where(True, self._check_poses(poses, lead), own), np.ones(b, bool)

    def _check_poses(self, poses, lead: tuple) -> jnp.ndarray:
        """The engine's camera poses for `step` / `rollout`, or a clear error."""
        if not self.config.geometry:
            raise WorldgenError("this model has no geometry (it was trained without depth): it cannot be given "
                                "camera poses")
        p = np.asarray(poses, np.float64)
        if p.shape != lead + (4, 4):
            raise WorldgenError(f"camera poses of shape {p.shape}: expected {lead + (4, 4)} (camera-to-world)")
        if not np.isfinite(p).all():
            raise WorldgenError("camera poses hold NaN or infinite values")
        rotation = p[..., :3, :3]
        rigid = np.abs(rotation @ np.swapaxes(rotation, -1, -2) - np.eye(3)).max() < 1e-3
        if not rigid or np.abs(p[..., 3, :] - [0, 0, 0, 1]).max() > 1e-6 or (np.linalg.det(rotation) < 0).any():
            raise WorldgenError("camera poses must be rigid camera-to-world transforms (a rotation and a "
                                "translation, bottom row 0 0 0 1)")
        return jnp.asarray(p, jnp.float32)

    def step(self, state, actions_B, key, poses_B44=None):
        """One step; `poses_B44`: where the camera is (e.g. the engine's player), or None for the camera head's."""
        wm.check_state(self.config, state)
        actions = self._check_actions(actions_B)
        poses, given = self.camera(state, poses_B44, (state.pose.shape[0],))
        with self.lock:
            return self._step(self.param_leaves, state, actions, key, poses, given)

    def rollout(self, state, actions_BT, key, poses_BT44=None):
        """len(actions) steps; `poses_BT44`: each step's camera, or None for the camera head's."""
        wm.check_state(self.config, state)
        actions = self._check_actions(actions_BT)
        poses, given = self.camera(state, poses_BT44, tuple(np.shape(actions_BT)[:2]))
        with self.lock:
            return self._rollout(self.param_leaves, state, actions, key, poses, given)

    def _single_image_disp(self, model, image_BHWC, key):
        rgb = wm.to_signed(image_BHWC)
        b, h, w, _ = rgb.shape
        zeros = jnp.zeros((b, h, w))
        cond = wm.conditioning(self.config, jnp.zeros_like(rgb), zeros, zeros, rgb, rgb, zeros, zeros)
        _, disp = wm.sample(model, cond, jnp.zeros((b,), jnp.int32), key, self.config.sample_steps,
                            self.config.sample_temperature)
        return disp

    def from_image(self, image, key=None):
        """Start a dream from one picture of any size: its depth is predicted, the camera is default_pose."""
        frame = square_image(image, self.config.resolution)[None]
        key = jax.random.key(0) if key is None else key
        with self.lock:
            disp = self._depth(self.param_leaves, jnp.asarray(frame), key)
        depth = np.asarray(disparity_to_depth(disp)) if self.config.geometry else np.zeros(disp.shape, np.float32)
        return self.init(frame[:, None], depth[:, None], default_pose()[None, None])
