"""Planning toward a goal image by model-predictive control: the cross-entropy method (CEM) over discrete
action sequences, scored by a world model's prediction of where they lead; replanned every step.

Dimension keys: N candidate sequences, T planning horizon, A actions, D latent, B batch, H, W, C.

`cem` is pure and jit-able given a cost function of candidate sequences. Two costs:
- `LatentPlanner`: the JEPA-style latent model (`worldgen.latent`) rolls every candidate forward in its
  latent space; cost = squared latent distance to the goal image's latent at the end, plus `path_weight` x
  its mean along the way (so that sequences that get there early win).
- `PixelPlanner`: the pixel world model (`worldgen.model`) dreams every candidate from the real frames seen
  so far; cost = mean squared pixel distance of the last dreamed frame to the goal image.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from worldgen.errors import WorldgenError
from worldgen.latent import LatentModel, check_frames
from worldgen.xla import jit


@dataclass(frozen=True)
class PlanConfig:
    horizon: int = 4  # chosen on validation worlds (docs/planning.md); the predictor trains on 4 steps
    candidates: int = 256
    elites: int = 32
    iterations: int = 3
    path_weight: float = 0.1

    def __post_init__(self):
        for name in ("horizon", "candidates", "elites", "iterations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WorldgenError(f"PlanConfig.{name} = {v!r}: expected a positive integer")
        if self.elites > self.candidates:
            raise WorldgenError(f"PlanConfig: {self.elites} elites from {self.candidates} candidates")
        if not 0.0 <= self.path_weight <= 10.0:
            raise WorldgenError(f"PlanConfig.path_weight = {self.path_weight}: expected 0..10")


def cem(cost_fn, key, num_actions: int, cfg: PlanConfig):
    """The lowest-cost action sequence found (T,) and its cost. Each iteration samples cfg.candidates
    sequences from per-step categorical distributions, keeps the cfg.elites cheapest, and refits the
    distributions to them (mixed with 10% uniform, so no action is ruled out for good)."""
    probs = jnp.full((cfg.horizon, num_actions), 1.0 / num_actions)
    best_seq, best_cost = jnp.zeros((cfg.horizon,), jnp.int32), jnp.inf
    for i in range(cfg.iterations):
        k = jax.random.fold_in(key, i)
        seqs = jax.random.categorical(k, jnp.log(probs), axis=-1, shape=(cfg.candidates, cfg.horizon))
        costs = cost_fn(seqs)
        order = jnp.argsort(costs)
        elite = seqs[order[:cfg.elites]]
        probs = 0.9 * jax.nn.one_hot(elite, num_actions).mean(0) + 0.1 / num_actions
        better = costs[order[0]] < best_cost
        best_seq = jnp.where(better, seqs[order[0]], best_seq)
        best_cost = jnp.where(better, costs[order[0]], best_cost)
    return best_seq, best_cost


class LatentPlanner:
    """Plans in the latent space of a LatentModel; `act(frame)` returns the next action toward the goal."""

    def __init__(self, model: LatentModel, cfg: PlanConfig = PlanConfig(), seed: int = 0):
        self.model, self.cfg = model, cfg
        graphdef, state = nnx.split(model)
        self._state = state
        self._encode = jit(lambda s, f: nnx.merge(graphdef, s).encode(f))

        def plan(s, frame_HWC, goal_D, key):
            m = nnx.merge(graphdef, s)
            z0 = m.encode(frame_HWC[None])[0]

            def cost(seqs_NT):
                z = m.rollout(jnp.broadcast_to(z0, (seqs_NT.shape[0],) + z0.shape), seqs_NT)
                d = jnp.mean((z - goal_D) ** 2, -1)  # (N, T)
                return d[:, -1] + cfg.path_weight * d.mean(1)

            return cem(cost, key, m.config.num_actions, cfg)

        self._plan = jit(plan)
        self._key = jax.random.key(seed)
        self._t = 0
        self.goal = None

    def encode_goal(self, goal_image):
        """The latent of a goal image (one HxWx3 uint8 frame at the model's resolution)."""
        goal = check_frames(goal_image, self.model.config, "goal image")
        if goal.ndim != 3:
            raise WorldgenError(f"goal image: expected one HxWx3 image, got shape {goal.shape}")
        return self._encode(self._state, jnp.asarray(goal)[None])[0]

    def plan(self, frame_HWC, goal_D, step: int) -> tuple[int, float]:
        """(next action, the plan's predicted cost) from the current frame toward a goal latent; keeps no
        state, so one planner serves many players."""
        frame = check_frames(frame_HWC, self.model.config)
        seq, cost = self._plan(self._state, jnp.asarray(frame), goal_D, jax.random.fold_in(self._key, step))
        return int(seq[0]), float(cost)

    def set_goal(self, goal_image) -> None:
        self.goal = self.encode_goal(goal_image)

    def act(self, frame_HWC) -> tuple[int, float]:
        """`plan` toward the goal of `set_goal`, with a fresh sampling key each call."""
        if self.goal is None:
            raise WorldgenError("set_goal(image) before act()")
        self._t += 1
        return self.plan(frame_HWC, self.goal, self._t)


class PixelPlanner:
    """The same CEM scoring dreams of the pixel world model (a Generator) against the goal image; it
    needs each real frame with its depth and camera pose (`observe`), as a dream starts from them."""

    def __init__(self, generator, cfg: PlanConfig, seed: int = 0):
        from worldgen.model import world_model as wm
        self.gen, self.cfg = generator, cfg
        config = generator.config
        if not config.geometry:
            raise WorldgenError("the pixel planner needs a world model with geometry (depth and poses)")
        graphdef = generator.graphdef

        def plan(params, frames, depth, poses, intrinsics, goal_HWC, key):
            model = nnx.merge(graphdef, params)
            state = wm.init_state(config, frames[None], depth[None], poses[None], intrinsics)
            many = jax.tree.map(lambda x: jnp.repeat(x, cfg.candidates, 0) if x.ndim and x.shape[0] == 1 else x,
                                state)

            def cost(seqs_NT):
                _, out = wm.rollout(model, many, seqs_NT, jax.random.fold_in(key, 1))
                last = out["rgb"][:, -1].astype(jnp.float32)
                return jnp.mean((last - goal_HWC.astype(jnp.float32)) ** 2, (1, 2, 3))

            return cem(cost, key, config.num_actions, cfg)

        self._plan = jit(plan)
        self._key = jax.random.key(seed)
        self._t = 0
        self._seen: list = []
        self.goal = None

    def set_goal(self, goal_image) -> None:
        self.goal = jnp.asarray(goal_image, jnp.uint8)
        self._seen = []

    def act(self, frame_HWC, depth_HW, pose_44, intrinsics_33) -> tuple[int, float]:
        k = self.gen.config.context
        self._seen = (self._seen + [(frame_HWC, depth_HW, pose_44)])[-k:]
        seen = [self._seen[0]] * (k - len(self._seen)) + self._seen  # the first frame repeated until K are seen
        stack = lambda i, dtype: jnp.asarray(np.stack([s[i] for s in seen]), dtype)
        self._t += 1
        seq, cost = self._plan(self.gen.params, stack(0, jnp.uint8), stack(1, jnp.float32), stack(2, jnp.float32),
                               jnp.asarray(intrinsics_33, jnp.float32), self.goal,
                               jax.random.fold_in(self._key, self._t))
        return int(seq[0]), float(cost)
