"""Terrain: a continuous height field and biome map over the whole plane, meshed one chunk at a time.

Heights and colours are pure functions of (seed, spec, x, z), so neighbouring chunks meet without seams.
Coordinates: x east, y up, z south; the ground is the x-z plane.
"""
from __future__ import annotations

import numpy as np

from worldgen.noise import fbm, hash_unit, value_noise
from worldgen.spec import BIOMES, WorldSpec

BIOME_LIST = tuple(BIOMES)  # index order used in biome maps
_SALT_HEIGHT, _SALT_BIOME, _SALT_TINT = 1, 5, 9


def height(seed: int, spec: WorldSpec, x, z) -> np.ndarray:
    """Ground height in metres at world positions (x, z)."""
    octaves = 2 + int(round(4 * spec.roughness))
    gain = 0.25 + 0.35 * spec.roughness
    base = fbm(seed, _SALT_HEIGHT, np.asarray(x) / 48.0, np.asarray(z) / 48.0, octaves, gain)
    return spec.terrain_height * base


def biome_index(seed: int, spec: WorldSpec, x, z) -> np.ndarray:
    """Index into BIOME_LIST of the biome at (x, z); constant unless the spec's biome is 'mixed'."""
    shape = np.broadcast(np.asarray(x), np.asarray(z)).shape
    if spec.biome != "mixed":
        return np.full(shape, BIOME_LIST.index(spec.biome), dtype=np.int64)
    v = value_noise(seed, _SALT_BIOME, np.asarray(x) / 90.0, np.asarray(z) / 90.0)
    return np.digitize(v, (0.4, 0.6)).astype(np.int64).reshape(shape)


def cells_per_chunk(spec: WorldSpec) -> int:
    return max(4, int(round(spec.chunk_size / 2.0)))


def terrain_mesh(seed: int, spec: WorldSpec, cx: int, cz: int):
    """Vertices (V,3), faces (F,3) and RGB face colours (F,3) of one chunk's ground, wound to face up."""
    n = cells_per_chunk(spec)
    size = spec.chunk_size
    ii = np.arange(n + 1)
    # Integer global lattice indices keep neighbouring chunks bit-identical along seams.
    gx = (cx * n + ii)[None, :].repeat(n + 1, 0)
    gz = (cz * n + ii)[:, None].repeat(n + 1, 1)
    x, z = gx * (size / n), gz * (size / n)
    y = height(seed, spec, x, z)
    vertices = np.stack([x, y, z], -1).reshape(-1, 3)
    idx = np.arange((n + 1) * (n + 1)).reshape(n + 1, n + 1)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    # a-b along +x, a-c along +z; (a, c, b) is counter-clockwise seen from above (+y).
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])

    centroid = vertices[faces].mean(1)
    cell_x = np.concatenate([gx[:-1, :-1].ravel()] * 2)
    cell_z = np.concatenate([gz[:-1, :-1].ravel()] * 2)
    tri = np.repeat([0, 1], n * n)
    biome = biome_index(seed, spec, centroid[:, 0], centroid[:, 2])
    low = np.array([BIOMES[b].ground_low for b in BIOME_LIST])[biome]
    high = np.array([BIOMES[b].ground_high for b in BIOME_LIST])[biome]
    t = np.clip(centroid[:, 1] / max(spec.terrain_height, 1e-6) * 0.5 + 0.5, 0, 1)[:, None]
    jitter = (hash_unit(seed, _SALT_TINT, cell_x * 2 + tri, cell_z) - 0.5)[:, None] * 0.08
    colors = np.clip(low + (high - low) * t + jitter, 0, 1)
    return vertices.astype(np.float32), faces.astype(np.int64), colors.astype(np.float32)
