"""The dream environment: the navigation task inside the world model, in gymnax's functional shape.

Dimension keys: S starts, K context frames, H height, W width.

    env = DreamEnv(model, starts_from_data("data/explore", model.config.context))
    params = env.default_params
    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)

Everything is pure JAX on one environment: `jax.vmap` batches it, `jax.jit` compiles it and a whole rollout is
one `lax.scan`. `step` resets an episode that ended (reached the goal or hit the horizon) inside itself with
a select, as gymnax does. An episode starts from K recorded real frames of a training world; its goal is where
the recorded explorer walked to from there (`worldgen.task`), and reward, termination and the `goal`
observation come from the model's own predicted camera pose. Observations have the engine env's keys and
shapes (`worldgen.env.WorldEnv`), so a policy moves between the two. `DreamParams` are traced (they change
nothing that sets a shape); the model's config sets the shapes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from worldgen import task as nav
from worldgen.actions import NUM_ACTIONS
from worldgen.dataset import EpisodeDataset
from worldgen.errors import WorldgenError
from worldgen.model import world_model as wm
from worldgen.xla import jit


@struct.dataclass
class DreamParams:
    horizon: int = 64  # steps before an episode is truncated
    goal_radius: float = 1.5  # metres
    temperature: float = 1.0  # the model's sampling temperature


@struct.dataclass
class Starts:
    """Where dream episodes begin: K real frames each, and the goal the recorded explorer walked to."""

    frames_SKHWC: jax.Array  # uint8
    depth_SKHW: jax.Array
    poses_SK44: jax.Array
    goals_S2: jax.Array  # world (x, z)
    intrinsics_33: jax.Array


@struct.dataclass
class DreamState:
    world: wm.WorldState  # the model's rollout state, a batch of one
    goal: jax.Array  # (2,) world (x, z)
    t: jax.Array  # int32 steps taken in this episode


def starts_from_data(folder, context: int, task: nav.TaskConfig | None = None, split: str = "train") -> Starts:
    """One start per recorded episode of `folder` (worlds of `split`) whose explorer leaves its start."""
    task = task or nav.TaskConfig()
    ds = EpisodeDataset(folder, split)
    if not ds.has_geometry:
        raise WorldgenError(f"{folder}: the dream env needs recorded depth and poses (an imported game has none)")
    if ds.steps <= context:
        raise WorldgenError(f"{folder}: episodes of {ds.steps} frames leave no step after {context} real frames")
    keep, goals = [], []
    for i in range(len(ds)):
        poses = ds.arrays["poses"][i]
        g = nav.goal_index(poses[:, [0, 2], 3], context - 1, task.goal_steps)
        if g is not None:
            keep.append(i)
            goals.append(poses[g, [0, 2], 3])
    if not keep:
        raise WorldgenError(f"{folder}: no recorded episode leaves its start, so there is no goal to walk to")
    a = ds.arrays
    return Starts(frames_SKHWC=jnp.asarray(a["frames"][keep, :context]),
                  depth_SKHW=jnp.asarray(a["depth"][keep, :context], jnp.float32),
                  poses_SK44=jnp.asarray(a["poses"][keep, :context], jnp.float32),
                  goals_S2=jnp.asarray(np.stack(goals), jnp.float32),
                  intrinsics_33=jnp.asarray(ds.intrinsics, jnp.float32))


class DreamEnv:
    """The task in the world model's dream. Holds the model's weights and the starts as constants."""

    def __init__(self, model: wm.WorldModel, starts: Starts):
        c = model.config
        if not c.geometry:
            raise WorldgenError("the dream env needs a model with geometry: the reward comes from its camera pose")
        if c.num_actions != NUM_ACTIONS:
            raise WorldgenError(f"the model has {c.num_actions} actions, the env's action set has {NUM_ACTIONS}: "
                                "a model trained on another game does not fit this task")
        k, h = starts.frames_SKHWC.shape[1:3]
        if (k, h) != (c.context, c.resolution):
            raise WorldgenError(f"starts hold {k} frames of {h}x{h}, the model wants {c.context} of "
                                f"{c.resolution}x{c.resolution}")
        self.config = c
        self.graphdef, self.params = nnx.split(model)
        self.starts = starts
        self.palettes = jit(lambda f: wm.start_palettes(c, f))(starts.frames_SKHWC)  # once, not every reset

    @property
    def default_params(self) -> DreamParams:
        return DreamParams()

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def num_starts(self) -> int:
        return self.starts.goals_S2.shape[0]

    def reset(self, key, params: DreamParams):
        s = self.starts
        i = jax.random.randint(key, (), 0, self.num_starts)
        world = wm.init_state(self.config, s.frames_SKHWC[i][None], s.depth_SKHW[i][None], s.poses_SK44[i][None],
                              s.intrinsics_33, self.palettes[i][None])
        state = DreamState(world=world, goal=s.goals_S2[i], t=jnp.zeros((), jnp.int32))
        return self._obs(state, s.frames_SKHWC[i, -1], s.depth_SKHW[i, -1]), state

    def step(self, key, state: DreamState, action, params: DreamParams):
        if not isinstance(action, jax.core.Tracer) and not 0 <= int(action) < NUM_ACTIONS:
            raise WorldgenError(f"action {action!r}: expected an integer 0..{NUM_ACTIONS - 1}")
        k_step, k_reset = jax.random.split(key)
        model = nnx.merge(self.graphdef, self.params)
        world, out = wm.step(model, state.world, jnp.asarray(action, jnp.int32)[None], k_step, params.temperature)
        reward, reached = nav.reward(state.world.pose[0], world.pose[0], state.goal, params.goal_radius)
        t = state.t + 1
        truncated = (t >= params.horizon) & ~reached
        done = reached | truncated
        stepped = DreamState(world=world, goal=state.goal, t=t)
        obs = self._obs(stepped, out["rgb"][0], out["depth"][0])
        info = {"reached": reached, "truncated": truncated, "discount": 1.0 - reached.astype(jnp.float32),
                "distance": nav.distance(world.pose[0], state.goal)}
        obs_reset, state_reset = self.reset(k_reset, params)
        pick = lambda a, b: jax.lax.select(jnp.broadcast_to(done, jnp.shape(a)), a, b)
        state = jax.tree.map(pick, state_reset, stepped)
        obs = jax.tree.map(pick, obs_reset, obs)
        return obs, state, reward.astype(jnp.float32), done, info

    @staticmethod
    def _obs(state: DreamState, rgb_HWC, depth_HW) -> dict:
        pose = state.world.pose[0]
        ahead, right = nav.goal_vector(pose, state.goal)
        return {"rgb": rgb_HWC.astype(jnp.uint8), "depth": depth_HW.astype(jnp.float32), "pose": pose,
                "goal": jnp.stack([ahead, right]).astype(jnp.float32)}
