"""On-disk episode format (version 1) and its reader. No pickle anywhere: arrays load with allow_pickle=False.

Dimension keys: E episodes, T steps, H height, W width, C=3 colour channels.

A dataset is a folder of shards `shard-<id>.npz` (uncompressed zip of .npy arrays). Each shard holds:
  format_version  int64 ()          FORMAT_VERSION
  meta            uint8 (bytes,)     UTF-8 JSON: {"source", "num_actions", "action_names", "spec" (or null),
                                     "resolution", "steps", and "description" for a world of `record --vary`;
                                     DEPTH_AT_CENTRES: true where the recorder took depth at pixel centres}
  frames          uint8   (E,T,H,W,C)
  actions         int32   (E,T)      actions[:, t] produced frames[:, t]; actions[:, 0] is 0 (noop)
  seeds           int64   (E,)       world seed of each episode (the split key)
  episode_ids     int64   (E,)       index of the episode within its world
  depth           float16 (E,T,H,W)  metric depth along the view axis, 0 = sky    [only with geometry]
  poses           float32 (E,T,4,4)  camera-to-world, OpenGL axes                 [only with geometry]
  intrinsics      float32 (3,3)      pixel intrinsics                             [only with geometry]
Shards are written to a temporary name and renamed, so a shard on disk is either whole or absent.
"""
from __future__ import annotations

import json
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worldgen.errors import DataError, WorldgenError

FORMAT_VERSION = 1
SHARD_GLOB = "shard-*.npz"
HELDOUT_MODULUS = 10  # world seeds with seed % 10 == 0 are held out from training
_REQUIRED = ("format_version", "meta", "frames", "actions", "seeds", "episode_ids")
_GEOMETRY = ("depth", "poses", "intrinsics")
# `worldgen record` says so in the meta of every shard whose depth it took at each pixel's centre, as
# `worldgen.camera`'s convention has it. Its shards without the key were recorded before the renderer did
# (docs/model.md, session 44): their depth lies 0.4 pixel below their colours, and the ground they show 0.02 to
# 0.12 m too high at 64x64. They still load, with a StaleDepthWarning.
DEPTH_AT_CENTRES = "depth_at_pixel_centres"


class StaleDepthWarning(UserWarning):
    """A dataset holds shards the recorder wrote before it took depth at pixel centres."""


def is_heldout(seed: int) -> bool:
    return int(seed) % HELDOUT_MODULUS == 0


@dataclass
class Shard:
    path: Path
    meta: dict
    arrays: dict[str, np.ndarray]

    @property
    def has_geometry(self) -> bool:
        return "depth" in self.arrays


def ensure_writable_dir(path: Path) -> Path:
    """Create `path` if needed and check we can write there, with an error that names it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorldgenError(f"cannot create output folder {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise WorldgenError(f"output folder {path} is not writable")
    return path


def write_shard(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Atomically write one shard (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    ensure_writable_dir(path.parent)
    missing = [k for k in _REQUIRED if k not in ("format_version", "meta") and k not in arrays]
    if missing:
        raise ValueError(f"shard arrays missing {missing}")
    payload = dict(arrays)
    payload["format_version"] = np.asarray(FORMAT_VERSION, dtype=np.int64)
    payload["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_shard(path: Path) -> Shard:
    """Load and validate one shard; any corruption or mismatch raises DataError naming the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such shard") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: corrupt or truncated shard ({type(e).__name__}: {e})") from None
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise DataError(f"{path}: not a worldgen shard (missing {', '.join(missing)})")
    version = arrays.pop("format_version")
    if version.shape != () or not np.issubdtype(version.dtype, np.integer):
        raise DataError(f"{path}: format_version must be one integer, got {version.dtype} {version.shape}")
    version = int(version)
    if version != FORMAT_VERSION:
        raise DataError(f"{path}: format version {version}, but this worldgen reads version {FORMAT_VERSION}")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable meta block ({e})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: the meta block must be a JSON object, got {type(meta).__name__}")
    _validate(path, meta, arrays)
    return Shard(path, meta, arrays)


def _validate(path: Path, meta: dict, a: dict[str, np.ndarray]) -> None:
    def fail(msg):
        raise DataError(f"{path}: {msg}")

    for key in ("num_actions", "action_names", "resolution", "steps", "source"):
        if key not in meta:
            fail(f"meta has no '{key}'")
    for key in ("num_actions", "resolution", "steps"):
        if type(meta[key]) is not int:
            fail(f"meta '{key}' must be an integer, got {meta[key]!r}")
    if not isinstance(meta["action_names"], list) or not all(isinstance(n, str) for n in meta["action_names"]):
        fail("meta 'action_names' must be a list of names")
    frames = a["frames"]
    if frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[-1] != 3:
        fail(f"frames must be uint8 (E,T,H,W,3), got {frames.dtype} {frames.shape}")
    e, t, h, w, _ = frames.shape
    if (h, w) != (meta["resolution"], meta["resolution"]) or t != meta["steps"]:
        fail(f"frames {frames.shape} disagree with meta resolution {meta['resolution']} / steps {meta['steps']}")
    expect = {"actions": ((e, t), np.int32), "seeds": ((e,), np.int64), "episode_ids": ((e,), np.int64)}
    present = [k for k in _GEOMETRY if k in a]
    if present and len(present) != len(_GEOMETRY):
        fail(f"has {present} but geometry needs all of {list(_GEOMETRY)}")
    if present:
        expect.update({"depth": ((e, t, h, w), np.float16), "poses": ((e, t, 4, 4), np.float32),
                       "intrinsics": ((3, 3), np.float32)})
    for key, (shape, dtype) in expect.items():
        if a[key].shape != shape or a[key].dtype != dtype:
            fail(f"{key} must be {np.dtype(dtype).name} {shape}, got {a[key].dtype} {a[key].shape}")
    n = meta["num_actions"]
    if len(meta["action_names"]) != n:
        fail(f"meta lists {len(meta['action_names'])} action names for {n} actions")
    if a["actions"].size and (a["actions"].min() < 0 or a["actions"].max() >= n):
        fail(f"actions outside 0..{n - 1}")


def shard_paths(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist")
    paths = sorted(folder.glob(SHARD_GLOB))
    if not paths:
        raise DataError(f"data folder {folder} holds no shards ({SHARD_GLOB}): record or import a dataset first")
    return paths


class EpisodeDataset:
    """All episodes of one split of a dataset folder, in memory, with window sampling.

    split: "train" (seeds not held out), "heldout" (seed % 10 == 0) or "all".
    """

    def __init__(self, folder: Path, split: str = "all"):
        if split not in ("train", "heldout", "all"):
            raise WorldgenError(f"unknown split {split!r}: expected train, heldout or all")
        self.folder = Path(folder)
        shards = [read_shard(p) for p in shard_paths(self.folder)]
        first = shards[0]
        for s in shards[1:]:
            for key in ("num_actions", "action_names", "resolution", "steps"):
                if s.meta[key] != first.meta[key]:
                    raise DataError(f"{s.path}: {key} = {s.meta[key]} but {first.path} has {first.meta[key]}; "
                                    "one dataset must hold one format")
            if s.has_geometry != first.has_geometry:
                raise DataError(f"{s.path}: mixes shards with and without depth/poses")
        self.meta = first.meta
        self.metas = {s.path.name: s.meta for s in shards}  # each shard's: `record --vary` worlds differ in spec
        self.stale_depth = [s.path.name for s in shards if s.has_geometry and s.meta["source"] == "worldgen"
                            and s.meta.get(DEPTH_AT_CENTRES) is not True]
        if self.stale_depth:
            warnings.warn(f"{self.folder}: {len(self.stale_depth)} of {len(shards)} shards were recorded before "
                          "worldgen took depth at pixel centres; their depth lies 0.4 pixel below their colours. "
                          "Record them again (`worldgen record` into a new folder) for exact depth.",
                          StaleDepthWarning, stacklevel=2)
        self.has_geometry = first.has_geometry
        self.num_actions = int(first.meta["num_actions"])
        self.action_names = tuple(first.meta["action_names"])
        self.resolution = int(first.meta["resolution"])
        self.steps = int(first.meta["steps"])
        self.intrinsics = first.arrays.get("intrinsics")
        keys = ["frames", "actions", "seeds", "episode_ids"] + (["depth", "poses"] if self.has_geometry else [])
        keep = [np.array([split == "all" or is_heldout(s) == (split == "heldout") for s in sh.arrays["seeds"]])
                for sh in shards]
        self.arrays = {k: np.concatenate([sh.arrays[k][m] for sh, m in zip(shards, keep)]) for k in keys}
        if len(self) == 0:
            seeds = sorted({int(s) for sh in shards for s in sh.arrays["seeds"]})
            raise DataError(f"{self.folder}: no episodes in split '{split}' (world seeds {seeds[:12]}...; "
                            f"held-out worlds are those with seed % {HELDOUT_MODULUS} == 0)")

    def __len__(self) -> int:
        return len(self.arrays["frames"])

    @property
    def seeds(self) -> np.ndarray:
        return self.arrays["seeds"]

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Whole episode i: frames_THWC, actions_T and, with geometry, depth_THW and poses_T44."""
        return {k: v[i] for k, v in self.arrays.items()}

    def windows(self, batch: int, length: int, seed: int, step: int,
                rows: slice = slice(None)) -> dict[str, np.ndarray]:
        """Batch number `step` of random windows, a pure function of (seed, step): resuming is exact.
        With `rows`, only those rows of it are read (one process's share of a global batch).

        Returns frames_BTHWC (uint8), actions_BT and, with geometry, depth_BTHW and poses_BT44.
        """
        if not 1 <= length <= self.steps:
            raise WorldgenError(f"window length {length} must be between 1 and the episode length {self.steps}")
        rng = np.random.default_rng([seed, step])
        ep = rng.integers(0, len(self), size=batch)[rows]
        start = rng.integers(0, self.steps - length + 1, size=batch)[rows]
        idx = start[:, None] + np.arange(length)[None, :]
        out = {"frames_BTHWC": self.arrays["frames"][ep[:, None], idx],
               "actions_BT": self.arrays["actions"][ep[:, None], idx]}
        if self.has_geometry:
            out["depth_BTHW"] = self.arrays["depth"][ep[:, None], idx].astype(np.float32)
            out["poses_BT44"] = self.arrays["poses"][ep[:, None], idx]
        return out
