"""`World`: a seeded, endless (or bounded) world served chunk by chunk, and `generate_world`.

Chunk (cx, cz) covers x in [cx*S, (cx+1)*S) and z in [cz*S, (cz+1)*S), S = spec.chunk_size.
Chunks are generated lazily, deterministically from (seed, cx, cz), and kept in a bounded cache.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import trimesh

from worldgen.errors import SpecError
from worldgen.objects import Obstacle, chunk_layout, object_parts
from worldgen.spec import BIOMES, WorldSpec
from worldgen.terrain import BIOME_LIST, biome_index, height, terrain_mesh

_CACHE_CHUNKS = 512


@dataclass(frozen=True)
class ChunkMesh:
    """All geometry of one chunk merged into one mesh: vertices (V,3), faces (F,3), RGB face colours (F,3)."""

    key: tuple[int, int]
    vertices: np.ndarray
    faces: np.ndarray
    face_colors: np.ndarray

    def to_trimesh(self) -> trimesh.Trimesh:
        rgba = np.concatenate([np.round(self.face_colors * 255), np.full((len(self.faces), 1), 255)], 1)
        return trimesh.Trimesh(self.vertices, self.faces, face_colors=rgba.astype(np.uint8), process=False)


class World:
    """A procedural world: terrain height, obstacles and merged chunk meshes, all from (seed, spec).

    `keep`: only these obstacles stand in it (`World.only`); None: all of them.
    """

    def __init__(self, seed: int, spec: WorldSpec | None = None, keep: frozenset[Obstacle] | None = None):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**63:
            raise SpecError(f"world seed must be an integer in 0..2**63-1, got {seed!r}")
        self.seed = int(seed)
        self.spec = spec if spec is not None else WorldSpec()
        self.keep = None if keep is None else frozenset(keep)
        self._layouts: OrderedDict[tuple[int, int], tuple[Obstacle, ...]] = OrderedDict()
        self._meshes: OrderedDict[tuple[int, int], ChunkMesh] = OrderedDict()

    @property
    def key(self) -> tuple:
        """What makes two worlds the same world (a renderer keeps one scene per key)."""
        return self.seed, self.spec, self.keep

    def only(self, obstacles) -> "World":
        """This world's terrain and sky with only `obstacles` standing in it."""
        return World(self.seed, self.spec, keep=frozenset(obstacles))

    # --- geometry queries ---------------------------------------------------------------------
    def height(self, x, z):
        return height(self.seed, self.spec, x, z)

    def sky_color(self) -> tuple[float, float, float]:
        """The spec's sky, else the sky of the biome at the origin (so mixed worlds differ)."""
        if self.spec.sky_color or self.spec.biome != "mixed":
            return self.spec.sky()
        return BIOMES[BIOME_LIST[int(biome_index(self.seed, self.spec, 0.0, 0.0))]].sky

    def chunk_of(self, x: float, z: float) -> tuple[int, int]:
        s = self.spec.chunk_size
        return int(math.floor(x / s)), int(math.floor(z / s))

    def chunk_exists(self, cx: int, cz: int) -> bool:
        if not self.spec.bounded:
            return True
        s, half = self.spec.chunk_size, self.spec.world_size / 2
        return cx * s < half and (cx + 1) * s > -half and cz * s < half and (cz + 1) * s > -half

    def in_bounds(self, x: float, z: float, margin: float = 0.0) -> bool:
        if not self.spec.bounded:
            return True
        half = self.spec.world_size / 2 - margin
        return -half <= x <= half and -half <= z <= half

    def chunks_within(self, x: float, z: float, radius: float) -> list[tuple[int, int]]:
        """Keys of existing chunks that intersect the square of half-side `radius` around (x, z)."""
        x0, z0 = self.chunk_of(x - radius, z - radius)
        x1, z1 = self.chunk_of(x + radius, z + radius)
        return [(cx, cz) for cz in range(z0, z1 + 1) for cx in range(x0, x1 + 1) if self.chunk_exists(cx, cz)]

    # --- chunk contents -----------------------------------------------------------------------
    def layout(self, cx: int, cz: int) -> tuple[Obstacle, ...]:
        key = (cx, cz)
        if key not in self._layouts:
            obstacles = chunk_layout(self.seed, self.spec, cx, cz)
            if self.spec.bounded:
                obstacles = tuple(o for o in obstacles if self.in_bounds(o.x, o.z, margin=max(o.hx, o.hz)))
            if self.keep is not None:
                obstacles = tuple(o for o in obstacles if o in self.keep)
            self._layouts[key] = obstacles
            if len(self._layouts) > _CACHE_CHUNKS:
                self._layouts.popitem(last=False)
        return self._layouts[key]

    def obstacles_near(self, x: float, z: float, radius: float) -> list[Obstacle]:
        return [o for key in self.chunks_within(x, z, radius) for o in self.layout(*key)]

    def chunk_mesh(self, cx: int, cz: int) -> ChunkMesh:
        key = (cx, cz)
        if key in self._meshes:
            self._meshes.move_to_end(key)
            return self._meshes[key]
        vs, fs, cs = [], [], []
        tv, tf, tc = terrain_mesh(self.seed, self.spec, cx, cz)
        offset = 0
        parts = [p for ob in self.layout(cx, cz) for p in object_parts(self.seed, self.spec, ob)]
        for v, f, c in [(tv, tf, tc)] + parts:
            vs.append(v)
            fs.append(f + offset)
            cs.append(np.broadcast_to(c, (len(f), 3)))
            offset += len(v)
        mesh = ChunkMesh(key, np.concatenate(vs).astype(np.float32), np.concatenate(fs).astype(np.int64),
                         np.concatenate(cs).astype(np.float32))
        self._meshes[key] = mesh
        if len(self._meshes) > _CACHE_CHUNKS:
            self._meshes.popitem(last=False)
        return mesh

    def region_chunks(self, radius: float | None = None) -> list[tuple[int, int]]:
        """Chunks of the export region: the square of half-side spec.export_radius around the origin."""
        r = self.spec.export_radius if radius is None else radius
        if self.spec.bounded:
            r = min(r, self.spec.world_size / 2)
        return self.chunks_within(0.0, 0.0, r - 1e-6)

    def scene(self, radius: float | None = None) -> trimesh.Scene:
        scene = trimesh.Scene()
        for cx, cz in self.region_chunks(radius):
            scene.add_geometry(self.chunk_mesh(cx, cz).to_trimesh(), geom_name=f"chunk_{cx}_{cz}")
        return scene


def generate_world(seed: int, spec: WorldSpec | None = None) -> trimesh.Scene:
    """The trimesh scene of the spec's export region of world `seed`: identical for identical inputs."""
    return World(seed, spec).scene()
