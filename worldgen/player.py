"""Kinematic first-person player: (state, action) -> next state, deterministic, with collision.

The eye follows the terrain at EYE_HEIGHT; the player is a disc of PLAYER_RADIUS that cannot enter
obstacles or leave a bounded world. A blocked move slides along the free axis, else stays put.
Camera poses follow `worldgen.camera`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from worldgen.actions import Action
from worldgen.camera import eye_pose
from worldgen.world import World

EYE_HEIGHT = 1.6
PLAYER_RADIUS = 0.3
MOVE_STEP = 0.5  # metres per move action
TURN_STEP = math.radians(15.0)  # radians per turn action
PITCH = math.radians(-8.0)  # camera tilt, looking slightly down

# (forward, strafe-right, turn-left) per action.
_MOTION = {
    Action.NOOP: (0, 0, 0), Action.FORWARD: (1, 0, 0), Action.BACK: (-1, 0, 0),
    Action.TURN_LEFT: (0, 0, 1), Action.TURN_RIGHT: (0, 0, -1),
    Action.STRAFE_LEFT: (0, -1, 0), Action.STRAFE_RIGHT: (0, 1, 0),
}


@dataclass(frozen=True)
class PlayerState:
    """Position on the ground plane and heading. yaw=0 looks towards -z; positive yaw turns left."""

    x: float
    z: float
    yaw: float


def collides(world: World, x: float, z: float) -> bool:
    """Whether a player disc at (x, z) overlaps an obstacle or leaves the world's bounds."""
    if not world.in_bounds(x, z, margin=PLAYER_RADIUS):
        return True
    for ob in world.obstacles_near(x, z, 4.0 + PLAYER_RADIUS):
        if ob.is_box:
            dx = max(abs(x - ob.x) - ob.hx, 0.0)
            dz = max(abs(z - ob.z) - ob.hz, 0.0)
            if dx * dx + dz * dz < PLAYER_RADIUS ** 2:
                return True
        elif (x - ob.x) ** 2 + (z - ob.z) ** 2 < (ob.hx + PLAYER_RADIUS) ** 2:
            return True
    return False


def step(world: World, state: PlayerState, action: Action | int) -> tuple[PlayerState, bool]:
    """Apply one action. Returns the new state and whether a requested move was blocked."""
    forward, strafe, turn = _MOTION[Action(int(action))]
    yaw = (state.yaw + turn * TURN_STEP + math.pi) % (2 * math.pi) - math.pi
    if forward == 0 and strafe == 0:
        return PlayerState(state.x, state.z, yaw), False
    # Heading vector: yaw=0 faces -z; right-hand vector is (cos, -sin) rotated accordingly.
    fx, fz = -math.sin(state.yaw), -math.cos(state.yaw)
    rx, rz = math.cos(state.yaw), -math.sin(state.yaw)
    dx = MOVE_STEP * (forward * fx + strafe * rx)
    dz = MOVE_STEP * (forward * fz + strafe * rz)
    for mx, mz in ((dx, dz), (dx, 0.0), (0.0, dz)):
        if (mx or mz) and not collides(world, state.x + mx, state.z + mz):
            return PlayerState(state.x + mx, state.z + mz, yaw), (mx, mz) != (dx, dz)
    return PlayerState(state.x, state.z, yaw), True


def camera_pose(world: World, state: PlayerState) -> np.ndarray:
    """Camera-to-world pose (4x4 float32) of the player's eye."""
    return eye_pose(state.x, float(world.height(state.x, state.z)) + EYE_HEIGHT, state.z, state.yaw, PITCH)


def start_rng(seed: int, episode: int = 0) -> np.random.Generator:
    """The random stream of episode `episode` in world `seed`: its spawn, then its explorer's choices."""
    return np.random.default_rng([int(seed), int(episode), 7])


def spawn(world: World, rng: np.random.Generator, radius: float = 24.0) -> PlayerState:
    """A random collision-free start near the origin, facing a random direction."""
    if world.spec.bounded:
        radius = min(radius, world.spec.world_size / 2 - 1.0)
    for _ in range(1000):
        x, z = rng.uniform(-radius, radius, size=2)
        if not collides(world, float(x), float(z)):
            return PlayerState(float(x), float(z), float(rng.uniform(-math.pi, math.pi)))
    raise RuntimeError(f"no free spot to spawn within {radius} m of the origin in world {world.seed}")
