"""The camera, in one home: intrinsics, the pose of an eye from position, yaw and pitch, pixel conventions.

The renderer, the player, the world model and the environments all read these; none of them needs the
renderer (pyrender, GL) to know what a camera is.

Pose convention (OpenGL, as pyrender): camera-to-world 4x4, looking down its -z axis, +y up. yaw = 0 looks
towards world -z and a positive yaw turns left; a negative pitch looks down.

Pixel convention: pixel (u, v) has its centre at (u + 0.5, v + 0.5); with depth d (metres along the viewing
axis, 0 where only sky is seen) its camera-space point is
  ((u + 0.5 - cx) d / fx, -(v + 0.5 - cy) d / fy, -d).
"""
from __future__ import annotations

import math

import numpy as np

DEFAULT_YFOV = math.radians(75.0)  # vertical field of view; frames are square
ZNEAR = 0.05  # metres: nearer surfaces are clipped


def intrinsics_matrix(resolution: int, yfov: float = DEFAULT_YFOV) -> np.ndarray:
    """(3, 3) float32 pixel intrinsics of a square frame: fx = fy, principal point at the centre."""
    f = (resolution / 2) / math.tan(yfov / 2)
    return np.array([[f, 0, resolution / 2], [0, f, resolution / 2], [0, 0, 1]], dtype=np.float32)


def eye_pose(x: float, y: float, z: float, yaw: float, pitch: float) -> np.ndarray:
    """Camera-to-world pose (4x4 float32) of an eye at (x, y, z) with heading `yaw` and tilt `pitch`."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    yaw_m = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    pitch_m = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    pose = np.eye(4)
    pose[:3, :3] = yaw_m @ pitch_m
    pose[:3, 3] = (x, y, z)
    return pose.astype(np.float32)

