"""Objects of one chunk: where they stand (the layout, used for collision) and their low-poly meshes.

A chunk's layout depends only on (seed, spec, cx, cz). Landmark towers live on a coarser grid of
cells of `spec.landmark_spacing` metres and are added to whichever chunk holds their base.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import trimesh

from worldgen.noise import chunk_rng, hash_u64
from worldgen.spec import BIOMES, LANDMARK_COLORS, OBJECT_KINDS, WorldSpec
from worldgen.terrain import BIOME_LIST, biome_index, height

KIND_WEIGHTS = {"tree": 0.45, "rock": 0.25, "building": 0.12, "pillar": 0.18}
TOWER = "tower"
_SALT_OBJECTS, _SALT_LANDMARK = 21, 33
_MAX_OBJECTS_PER_CHUNK = 64


@dataclass(frozen=True)
class Obstacle:
    """One object: `kind`, base centre (x, z), footprint half-extents (hx, hz) and height, colour seed.

    Circles (trees, rocks, pillars, towers) collide as discs of radius hx; buildings as axis-aligned boxes.
    """

    kind: str
    x: float
    z: float
    hx: float
    hz: float
    height: float
    variant: int

    @property
    def is_box(self) -> bool:
        return self.kind == "building"


def _landmarks_in_chunk(seed: int, spec: WorldSpec, cx: int, cz: int) -> list[Obstacle]:
    if spec.landmark_spacing <= 0:
        return []
    s, size = spec.landmark_spacing, spec.chunk_size
    x0, z0 = cx * size, cz * size
    found = []
    for lx in range(int(np.floor(x0 / s)), int(np.floor((x0 + size) / s)) + 1):
        for lz in range(int(np.floor(z0 / s)), int(np.floor((z0 + size) / s)) + 1):
            rng = chunk_rng(seed, _SALT_LANDMARK, lx, lz)
            x, z = (lx + rng.uniform(0.25, 0.75)) * s, (lz + rng.uniform(0.25, 0.75)) * s
            if x0 <= x < x0 + size and z0 <= z < z0 + size:
                colour = int(hash_u64(seed, _SALT_LANDMARK + 1, lx, lz) % np.uint64(len(LANDMARK_COLORS)))
                found.append(Obstacle(TOWER, x, z, 1.2, 1.2, float(rng.uniform(14, 22)), colour))
    return found


def chunk_layout(seed: int, spec: WorldSpec, cx: int, cz: int) -> tuple[Obstacle, ...]:
    """All obstacles whose base lies in chunk (cx, cz), landmarks first, deterministic per chunk."""
    placed = _landmarks_in_chunk(seed, spec, cx, cz)
    kinds = [k for k in OBJECT_KINDS if k in spec.object_kinds]
    if not kinds or spec.object_density <= 0:
        return tuple(placed)
    rng = chunk_rng(seed, _SALT_OBJECTS, cx, cz)
    size = spec.chunk_size
    weights = np.array([KIND_WEIGHTS[k] for k in kinds])
    count = min(int(rng.poisson(spec.object_density / 100.0 * size * size)), _MAX_OBJECTS_PER_CHUNK)
    biome = BIOMES[BIOME_LIST[int(biome_index(seed, spec, (cx + 0.5) * size, (cz + 0.5) * size))]]
    for _ in range(count):
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        x, z = (cx + rng.uniform(0.05, 0.95)) * size, (cz + rng.uniform(0.05, 0.95)) * size
        variant = int(rng.integers(0, 1 << 16))
        if kind == "tree":
            r = 0.3
            h = biome.tree_height * rng.uniform(0.7, 1.3)
            hx = hz = r
        elif kind == "rock":
            hx = hz = float(rng.uniform(0.5, 1.4))
            h = hx * rng.uniform(0.6, 1.1)
        elif kind == "building":
            hx, hz = float(rng.uniform(1.5, 3.5)), float(rng.uniform(1.5, 3.5))
            h = rng.uniform(3.0, 6.0)
        else:
            hx = hz = float(rng.uniform(0.35, 0.7))
            h = rng.uniform(3.0, 7.0)
        candidate = Obstacle(kind, float(x), float(z), hx, hz, float(h), variant)
        if all(_clearance(candidate, other) > 1.2 for other in placed):
            placed.append(candidate)
    return tuple(placed)


def _clearance(a: Obstacle, b: Obstacle) -> float:
    """Gap in metres between two footprints, treating each as a disc around its larger half-extent."""
    return float(np.hypot(a.x - b.x, a.z - b.z)) - max(a.hx, a.hz) - max(b.hx, b.hz)


# --- meshes -------------------------------------------------------------------------------------

_Z_UP_TO_Y_UP = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])


@functools.cache
def _template(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit shapes with their base at y=0, centred on the y axis, outward-wound."""
    if name == "box":
        m = trimesh.creation.box(extents=(2, 1, 2))
        m.apply_translation((0, 0.5, 0))
        return np.asarray(m.vertices), np.asarray(m.faces)
    if name == "prism":
        m = trimesh.creation.cylinder(radius=1.0, height=1.0, sections=6)
        m.apply_translation((0, 0, 0.5))
    elif name == "cone":
        m = trimesh.creation.cone(radius=1.0, height=1.0, sections=7)
    elif name == "pyramid":
        m = trimesh.creation.cone(radius=1.0, height=1.0, sections=4)
        m.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 4, [0, 0, 1]))
    elif name == "rock":
        m = trimesh.creation.icosahedron()
        m.apply_translation((0, 0, 0.6))
    else:
        raise KeyError(name)
    m.apply_transform(_Z_UP_TO_Y_UP)
    return np.asarray(m.vertices), np.asarray(m.faces)


def _part(name, scale, offset, colour):
    v, f = _template(name)
    return v * np.asarray(scale) + np.asarray(offset), f, np.asarray(colour, dtype=np.float64)


def object_parts(seed: int, spec: WorldSpec, ob: Obstacle):
    """Mesh parts (vertices, faces, RGB colour) of one obstacle standing on the terrain."""
    base = float(height(seed, spec, ob.x, ob.z)) - 0.2
    biome = BIOMES[BIOME_LIST[int(biome_index(seed, spec, ob.x, ob.z))]]
    at = np.array([ob.x, base, ob.z])
    v = ob.variant
    if ob.kind == "tree":
        trunk_h = ob.height * 0.4
        crown_r = ob.height * (0.25 + 0.05 * (v % 3))
        return [_part("prism", (ob.hx, trunk_h + 0.2, ob.hx), at, biome.trunk),
                _part("cone", (crown_r, ob.height * 0.75, crown_r), at + (0, trunk_h, 0),
                      biome.foliage[v % len(biome.foliage)])]
    if ob.kind == "rock":
        shade = 0.85 + 0.3 * ((v >> 3) % 8) / 8
        return [_part("rock", (ob.hx, ob.height / 1.6, ob.hz), at, np.clip(np.array(biome.rock) * shade, 0, 1))]
    if ob.kind == "building":
        roof_h = 0.6 + 1.4 * ((v >> 2) % 4) / 3
        return [_part("box", (ob.hx, ob.height, ob.hz), at, biome.wall[v % len(biome.wall)]),
                _part("pyramid", (ob.hx * 1.45, roof_h, ob.hz * 1.45), at + (0, ob.height, 0), biome.roof)]
    if ob.kind == "pillar":
        return [_part("prism", (ob.hx, ob.height, ob.hx), at, biome.pillar),
                _part("box", (ob.hx * 1.3, 0.35, ob.hx * 1.3), at + (0, ob.height, 0), biome.pillar)]
    colour = LANDMARK_COLORS[ob.variant]
    return [_part("prism", (ob.hx, ob.height, ob.hx), at, colour),
            _part("rock", (ob.hx * 1.8, ob.hx * 1.8, ob.hx * 1.8), at + (0, ob.height, 0), colour)]
