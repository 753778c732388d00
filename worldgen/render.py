"""Headless renderer: RGB uint8, metric depth float32, intrinsics and pose, from any camera pose.

Dimension keys: H height, W width.

pyrender draws offscreen through EGL (Mesa llvmpipe on a CPU, NVIDIA where present). Chunk meshes are
lit once on the CPU (ambient + sun, flat per face) and the chunks around the camera are merged into a
single draw call that is rebuilt only when the camera enters another chunk, so a frame costs one draw.

Poses, intrinsics and the pixel convention are `worldgen.camera`'s.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
if os.environ["PYOPENGL_PLATFORM"] == "egl":  # `import pyrender` imports pyglet's windows, which look for X11
    os.environ.setdefault("PYGLET_HEADLESS", "1")  # libraries a headless server may lack; EGL needs none of them

import numpy as np  # noqa: E402
import pyrender  # noqa: E402

from worldgen.camera import DEFAULT_YFOV, ZNEAR, intrinsics_matrix  # noqa: E402
from worldgen.errors import WorldgenError  # noqa: E402
from worldgen.world import ChunkMesh, World  # noqa: E402

MIN_RESOLUTION, MAX_RESOLUTION = 32, 512
AMBIENT = 0.45


@dataclass(frozen=True)
class Frame:
    rgb_HWC: np.ndarray  # uint8
    depth_HW: np.ndarray  # float32 metres, 0 = sky
    intrinsics: np.ndarray  # (3, 3) float32 pixel intrinsics fx, fy, cx, cy
    pose: np.ndarray  # (4, 4) float32 camera-to-world (OpenGL axes)


def check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise WorldgenError(f"resolution must be an integer from {MIN_RESOLUTION} to {MAX_RESOLUTION}, "
                            f"got {resolution!r}")
    return int(resolution)


def lit_triangles(mesh: ChunkMesh, light_dir: np.ndarray, brightness: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Unshared triangle corners (3F,3) and their baked RGBA colours (3F,4) under a sun + ambient, both scaled
    by `brightness` (`WorldSpec.brightness`)."""
    corners = mesh.vertices[mesh.faces]  # (F, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    shade = brightness * (AMBIENT + (1 - AMBIENT) * np.clip(normals @ light_dir, 0, 1))
    rgb = np.clip(mesh.face_colors * shade[:, None], 0, 1)
    rgba = np.concatenate([rgb, np.ones((len(rgb), 1), np.float32)], 1)
    return corners.reshape(-1, 3), np.repeat(rgba, 3, axis=0).astype(np.float32)


@dataclass
class _WorldScene:
    """A pyrender scene for one world: the camera and the merged region of chunks around it."""

    scene: pyrender.Scene
    camera: pyrender.Node
    region_node: pyrender.Node | None = None
    region: tuple | None = None
    lit: dict | None = None


class Renderer:
    """Renders any World from any pose at one resolution. Reuse one instance for many frames and worlds.

    One GL context serves every world; the scenes of the `max_worlds` most recently used worlds are kept,
    so several players can share one renderer. Not thread-safe: serialise calls.
    """

    def __init__(self, resolution: int = 64, yfov: float = DEFAULT_YFOV, max_worlds: int = 8):
        self.resolution = check_resolution(resolution)
        self.yfov = float(yfov)
        self.intrinsics = intrinsics_matrix(self.resolution, self.yfov)
        self._renderer = pyrender.OffscreenRenderer(self.resolution, self.resolution)
        self._release()
        self._worlds: OrderedDict[tuple, _WorldScene] = OrderedDict()
        self._max_worlds = max_worlds

    def _scene_for(self, world: World) -> _WorldScene:
        key = world.key
        if key in self._worlds:
            self._worlds.move_to_end(key)
            return self._worlds[key]
        scene = pyrender.Scene(bg_color=[*world.sky_color(), 1.0], ambient_light=[1.0, 1.0, 1.0])
        camera = pyrender.PerspectiveCamera(yfov=self.yfov, aspectRatio=1.0, znear=ZNEAR,
                                            zfar=world.spec.view_distance * 1.5)
        ws = self._worlds[key] = _WorldScene(scene, scene.add(camera, pose=np.eye(4)), lit={})
        if len(self._worlds) > self._max_worlds:
            self._worlds.popitem(last=False)
        return ws

    @staticmethod
    def _update_region(ws: _WorldScene, world: World, x: float, z: float) -> None:
        keys = tuple(world.chunks_within(x, z, world.spec.view_distance))
        region = (world.chunk_of(x, z), keys)
        if region == ws.region:
            return
        light = np.asarray(world.spec.light_direction(), dtype=np.float32)
        lit = {k: ws.lit[k] if k in ws.lit else lit_triangles(world.chunk_mesh(*k), light, world.spec.brightness)
               for k in keys}
        if ws.region_node is not None:
            ws.scene.remove_node(ws.region_node)
        positions = np.concatenate([lit[k][0] for k in keys])
        colours = np.concatenate([lit[k][1] for k in keys])
        primitive = pyrender.Primitive(positions=positions, color_0=colours, mode=pyrender.GLTF.TRIANGLES)
        ws.region_node = ws.scene.add(pyrender.Mesh([primitive]))
        ws.region, ws.lit = region, lit

    def render(self, world: World, pose: np.ndarray) -> Frame:
        pose = np.asarray(pose, dtype=np.float32)
        if pose.shape != (4, 4) or not np.isfinite(pose).all():
            raise WorldgenError(f"camera pose must be a finite 4x4 matrix, got shape {pose.shape}")
        ws = self._scene_for(world)
        self._update_region(ws, world, float(pose[0, 3]), float(pose[2, 3]))
        ws.scene.set_pose(ws.camera, pose)
        try:
            rgb, _ = self._renderer.render(ws.scene, flags=pyrender.RenderFlags.FLAT)
            # pyrender draws with 4x multisampling and reads depth back from one of the 4 samples, which lies
            # off the pixel's centre ((u + 0.375, v + 0.875) on Mesa): unprojected at the centre, the ground came
            # out 0.4 pixel of angle too high (0.12 m at 15 m, 64x64). A second pass without multisampling (its
            # segmentation mode) gives the depth at each pixel's centre, as the pixel convention says.
            _, depth = self._renderer.render(ws.scene, flags=pyrender.RenderFlags.SEG,
                                             seg_node_map={node: (0, 0, 0) for node in ws.scene.mesh_nodes})
        finally:
            self._release()
        return Frame(np.ascontiguousarray(rgb), depth.astype(np.float32, copy=False), self.intrinsics, pose)

    def _release(self) -> None:
        """Un-bind the EGL context from this thread, so the next call may come from another thread."""
        platform = self._renderer._platform
        if getattr(platform, "_egl_display", None) is not None:
            from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglMakeCurrent
            eglMakeCurrent(platform._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)

    def close(self) -> None:
        """Free this renderer's GL context. Unlike pyrender's own delete, the shared EGL display is not
        terminated, so other renderers in the process keep working."""
        self._worlds.clear()
        r, self._renderer = self._renderer, None
        if r is None:
            return
        platform = r._platform
        if getattr(platform, "_egl_display", None) is None:
            r.delete()
            return
        from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglDestroyContext, eglMakeCurrent
        platform.make_current()
        r._renderer.delete()
        eglMakeCurrent(platform._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
        eglDestroyContext(platform._egl_display, platform._egl_context)
        platform._egl_context = platform._egl_display = None
        r._renderer = r._platform = None  # pyrender's __del__ then has nothing left to terminate

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: GL may already be gone
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
