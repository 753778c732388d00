"""Deterministic integer hashing and value noise: the same (seed, position) gives the same bits on every run.

Everything random in a world derives from `hash_u64(seed, salt, ix, iz)` or from `chunk_rng`, so chunks
can be generated in any order, independently, and always agree along their seams.
"""
from __future__ import annotations

import numpy as np

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_u64(seed: int, salt: int, ix, iz) -> np.ndarray:
    """Hash integer lattice coordinates (arrays or scalars) to uint64."""
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(salt + 1))
        h = _mix(h ^ np.asarray(ix, dtype=np.int64).astype(np.uint64))
        h = _mix(h ^ (np.asarray(iz, dtype=np.int64).astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)))
    return h


def hash_unit(seed: int, salt: int, ix, iz) -> np.ndarray:
    """Hash lattice coordinates to floats uniform in [0, 1)."""
    return (hash_u64(seed, salt, ix, iz) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def value_noise(seed: int, salt: int, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Smooth value noise in [0, 1) with unit lattice spacing, C1-continuous everywhere."""
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    x0, z0 = np.floor(x), np.floor(z)
    fx, fz = x - x0, z - z0
    ix, iz = x0.astype(np.int64), z0.astype(np.int64)
    sx, sz = fx * fx * (3 - 2 * fx), fz * fz * (3 - 2 * fz)
    v00 = hash_unit(seed, salt, ix, iz)
    v10 = hash_unit(seed, salt, ix + 1, iz)
    v01 = hash_unit(seed, salt, ix, iz + 1)
    v11 = hash_unit(seed, salt, ix + 1, iz + 1)
    top = v00 + (v10 - v00) * sx
    bottom = v01 + (v11 - v01) * sx
    return top + (bottom - top) * sz


def fbm(seed: int, salt: int, x: np.ndarray, z: np.ndarray, octaves: int, gain: float) -> np.ndarray:
    """Fractal sum of value noise, normalised to roughly [-1, 1]."""
    total = np.zeros(np.broadcast(x, z).shape)
    amplitude, norm, freq = 1.0, 0.0, 1.0
    for octave in range(octaves):
        total += amplitude * (value_noise(seed, salt + 17 * octave, x * freq, z * freq) * 2 - 1)
        norm += amplitude
        amplitude *= gain
        freq *= 2.0
    return total / norm


def chunk_rng(seed: int, salt: int, cx: int, cz: int) -> np.random.Generator:
    """An independent numpy Generator for one chunk (or landmark cell)."""
    return np.random.default_rng(int(hash_u64(seed, salt, cx, cz)))
