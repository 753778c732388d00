"""The navigation task: walk to a goal position. One definition for the engine and the dream environments.

Dimension keys: B batch (any leading dimensions).

The world model predicts no reward, so the reward is computed from what both environments know: the camera
pose (the true one in the engine, the predicted one in a dream) and the goal, a point (x, z) on the ground.
  reward     = PROGRESS x (metres the step brought the eye nearer the goal) - STEP_COST
               + SUCCESS when the step ends within `goal_radius` of the goal
  terminated = the step ends within `goal_radius` of the goal
  truncated  = `horizon` steps have passed (the time limit, not a failure of the state)
The goal is where the curious explorer (`worldgen.policy.Explorer`) walks to in `goal_steps` steps from the
start, so it is reachable; in the dream it is the recorded position that many steps into an episode.
The observation `goal` is the goal seen from the eye: (metres ahead, metres to the right).

The functions take NumPy or JAX arrays alike (only arithmetic and indexing), so the two environments
share them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldgen.errors import WorldgenError

PROGRESS = 1.0
STEP_COST = 0.01
SUCCESS = 10.0
MIN_GOAL_DISTANCE = 3.0  # metres: an explorer's place nearer than this to the start is walked on from


@dataclass(frozen=True)
class TaskConfig:
    """goal_steps: explorer steps from the start to the goal. horizon: steps before the episode is truncated.
    goal_radius: metres from the goal that count as reaching it."""

    goal_steps: int = 16
    horizon: int = 64
    goal_radius: float = 1.5

    def __post_init__(self):
        if isinstance(self.goal_steps, bool) or not isinstance(self.goal_steps, int) or not 1 <= self.goal_steps <= 256:
            raise WorldgenError(f"TaskConfig.goal_steps = {self.goal_steps!r}: expected an integer 1..256")
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or not 1 <= self.horizon <= 10_000:
            raise WorldgenError(f"TaskConfig.horizon = {self.horizon!r}: expected an integer 1..10000")
        if not isinstance(self.goal_radius, (int, float)) or not 0.1 <= self.goal_radius <= 50.0:
            raise WorldgenError(f"TaskConfig.goal_radius = {self.goal_radius!r}: expected metres 0.1..50")


def goal_index(positions_T2: np.ndarray, start: int, goal_steps: int) -> int | None:
    """The goal's index in an explorer's walk (positions (x, z) per step): its place goal_steps after `start`,
    walked on until it is MIN_GOAL_DISTANCE away, else the farthest place; None if it never moves."""
    d = np.linalg.norm(positions_T2[start:] - positions_T2[start], axis=1)
    later = np.nonzero((np.arange(len(d)) >= goal_steps) & (d >= MIN_GOAL_DISTANCE))[0]
    i = int(later[0]) if len(later) else int(np.argmax(d))
    return start + i if d[i] > 0 else None


def goal_vector(pose_B44, goal_B2):
    """The goal from the eye: (metres ahead, metres to the right) along the eye's horizontal heading."""
    fx, fz = -pose_B44[..., 0, 2], -pose_B44[..., 2, 2]
    norm = (fx * fx + fz * fz) ** 0.5 + 1e-9
    fx, fz = fx / norm, fz / norm
    dx, dz = goal_B2[..., 0] - pose_B44[..., 0, 3], goal_B2[..., 1] - pose_B44[..., 2, 3]
    ahead, right = dx * fx + dz * fz, dx * -fz + dz * fx
    return ahead, right


def distance(pose_B44, goal_B2):
    """Horizontal distance (metres) from the eye to the goal."""
    dx, dz = goal_B2[..., 0] - pose_B44[..., 0, 3], goal_B2[..., 1] - pose_B44[..., 2, 3]
    return (dx * dx + dz * dz) ** 0.5


def reward(prev_pose_B44, pose_B44, goal_B2, goal_radius: float):
    """(reward, reached) of the step from prev_pose to pose; see the module docstring."""
    before, after = distance(prev_pose_B44, goal_B2), distance(pose_B44, goal_B2)
    reached = after < goal_radius
    return PROGRESS * (before - after) - STEP_COST + SUCCESS * reached, reached
