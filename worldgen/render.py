"""Headless renderer: RGB uint8, metric depth float32, intrinsics and pose, from any camera pose.

Dimension keys: H height, W width.

pyrender draws offscreen through EGL (Mesa llvmpipe on a CPU, NVIDIA where present). Chunk meshes are
lit once on the CPU (ambient + sun, flat per face) and the chunks around the camera are merged into a
single draw call that is rebuilt only when the camera enters another chunk, so a frame costs one draw.

Pixel convention: pixel (u, v) has its centre at (u + 0.5, v + 0.5); with depth d (metres along the
viewing axis, 0 where only sky is seen) its camera-space point is
  ((u + 0.5 - cx) d / fx, -(v + 0.5 - cy) d / fy, -d)   in the pose's OpenGL frame (-z forward, +y up).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np  # noqa: E402
import pyrender  # noqa: E402

from worldgen.errors import WorldgenError  # noqa: E402
from worldgen.world import ChunkMesh, World  # noqa: E402

MIN_RESOLUTION, MAX_RESOLUTION = 32, 512
DEFAULT_YFOV = math.radians(75.0)
ZNEAR = 0.05
AMBIENT = 0.45


@dataclass(frozen=True)
class Frame:
    rgb_HWC: np.ndarray  # uint8
    depth_HW: np.ndarray  # float32 metres, 0 = sky
    intrinsics: np.ndarray  # (3, 3) float32 pixel intrinsics fx, fy, cx, cy
    pose: np.ndarray  # (4, 4) float32 camera-to-world (OpenGL axes)


def intrinsics_matrix(resolution: int, yfov: float = DEFAULT_YFOV) -> np.ndarray:
    f = (resolution / 2) / math.tan(yfov / 2)
    return np.array([[f, 0, resolution / 2], [0, f, resolution / 2], [0, 0, 1]], dtype=np.float32)


def check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise WorldgenError(f"resolution must be an integer from {MIN_RESOLUTION} to {MAX_RESOLUTION}, "
                            f"got {resolution!r}")
    return int(resolution)


def lit_triangles(mesh: ChunkMesh, light_dir: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unshared triangle corners (3F,3) and their baked RGBA colours (3F,4) under a sun + ambient."""
    corners = mesh.vertices[mesh.faces]  # (F, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    shade = AMBIENT + (1 - AMBIENT) * np.clip(normals @ light_dir, 0, 1)
    rgb = np.clip(mesh.face_colors * shade[:, None], 0, 1)
    rgba = np.concatenate([rgb, np.ones((len(rgb), 1), np.float32)], 1)
    return corners.reshape(-1, 3), np.repeat(rgba, 3, axis=0).astype(np.float32)


class Renderer:
    """Renders any World from any pose at one resolution. Reuse one instance for many frames and worlds."""

    def __init__(self, resolution: int = 64, yfov: float = DEFAULT_YFOV):
        self.resolution = check_resolution(resolution)
        self.yfov = float(yfov)
        self.intrinsics = intrinsics_matrix(self.resolution, self.yfov)
        self._renderer = pyrender.OffscreenRenderer(self.resolution, self.resolution)
        self._scene: pyrender.Scene | None = None
        self._camera_node = None
        self._region_node = None
        self._world: World | None = None
        self._region: tuple | None = None
        self._lit: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _use_world(self, world: World) -> None:
        if world is self._world:
            return
        spec = world.spec
        self._scene = pyrender.Scene(bg_color=[*world.sky_color(), 1.0], ambient_light=[1.0, 1.0, 1.0])
        camera = pyrender.PerspectiveCamera(yfov=self.yfov, aspectRatio=1.0, znear=ZNEAR,
                                            zfar=spec.view_distance * 1.5)
        self._camera_node = self._scene.add(camera, pose=np.eye(4))
        self._world, self._region, self._region_node, self._lit = world, None, None, {}

    def _update_region(self, x: float, z: float) -> None:
        world = self._world
        keys = tuple(world.chunks_within(x, z, world.spec.view_distance))
        region = (world.chunk_of(x, z), keys)
        if region == self._region:
            return
        light = np.asarray(world.spec.light_direction(), dtype=np.float32)
        for key in keys:
            if key not in self._lit:
                self._lit[key] = lit_triangles(world.chunk_mesh(*key), light)
        self._lit = {k: self._lit[k] for k in keys}
        if self._region_node is not None:
            self._scene.remove_node(self._region_node)
        positions = np.concatenate([self._lit[k][0] for k in keys])
        colours = np.concatenate([self._lit[k][1] for k in keys])
        primitive = pyrender.Primitive(positions=positions, color_0=colours, mode=pyrender.GLTF.TRIANGLES)
        self._region_node = self._scene.add(pyrender.Mesh([primitive]))
        self._region = region

    def render(self, world: World, pose: np.ndarray) -> Frame:
        pose = np.asarray(pose, dtype=np.float32)
        if pose.shape != (4, 4) or not np.isfinite(pose).all():
            raise WorldgenError(f"camera pose must be a finite 4x4 matrix, got shape {pose.shape}")
        self._use_world(world)
        self._update_region(float(pose[0, 3]), float(pose[2, 3]))
        self._scene.set_pose(self._camera_node, pose)
        rgb, depth = self._renderer.render(self._scene, flags=pyrender.RenderFlags.FLAT)
        return Frame(np.ascontiguousarray(rgb), depth.astype(np.float32, copy=False), self.intrinsics, pose)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.delete()
            self._renderer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
