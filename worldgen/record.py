"""`worldgen record`: render explorer episodes of many worlds into shards, resumable after a kill.

Dimension keys: T steps, H height, W width.

One shard per world seed (`shard-seed<seed>.npz`) holds all of that world's episodes. Shards are written
atomically, so on restart every shard already on disk is whole; it is checked and skipped.
"""
from __future__ import annotations

import ctypes
import json
import multiprocessing
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldgen.actions import ACTION_NAMES, NUM_ACTIONS, Action
from worldgen.dataset import DEPTH_AT_CENTRES, DataError, ensure_writable_dir, read_shard, write_shard
from worldgen.errors import SpecError, WorldgenError
from worldgen.describe import random_description, varied_spec
from worldgen.env import WorldEnv
from worldgen.policy import Explorer, action_statistics
from worldgen.render import check_resolution
from worldgen.spec import WorldSpec


@dataclass
class RecordSummary:
    written: list[Path]
    skipped: list[Path]
    actions: np.ndarray
    blocked: int
    moves: int

    def report(self) -> str:
        head = f"wrote {len(self.written)} shard(s), kept {len(self.skipped)} finished shard(s)"
        if not self.moves and not self.actions.size:
            return head
        return head + "\n" + action_statistics(self.actions, self.blocked, self.moves)


def record_episode(env: WorldEnv, seed: int, episode: int, steps: int, hold: Action | None = None,
                   hold_from: int = 0):
    """Episode `episode` of world `seed` through a free-walking engine env: the curious explorer, drawing from
    the episode's random stream after its spawn (`env.episode_rng`); the first action is NOOP. With `hold`, the
    player holds that action from step `hold_from` on instead (a user holding a key).
    Returns frames_THWC, depth_THW, actions_T, poses_T44, blocked count, move count."""
    res = env.resolution
    frames = np.empty((steps, res, res, 3), np.uint8)
    depth = np.empty((steps, res, res), np.float16)
    poses = np.empty((steps, 4, 4), np.float32)
    actions = np.zeros(steps, np.int32)
    moves = n_blocked = 0
    obs, info = env.reset(seed=seed, options={"episode": episode})
    explorer = Explorer(env.episode_rng)
    for t in range(steps):
        if t > 0:
            actions[t] = hold if hold is not None and t >= hold_from else explorer.act(info["blocked"])
            obs, _, _, _, info = env.step(actions[t])
            if actions[t] not in (Action.NOOP, Action.TURN_LEFT, Action.TURN_RIGHT):
                moves += 1
                n_blocked += int(info["blocked"])
        frames[t], depth[t], poses[t] = obs["rgb"], obs["depth"], obs["pose"]
    return frames, depth, actions, poses, n_blocked, moves


def shard_path(out: Path, seed: int) -> Path:
    return Path(out) / f"shard-seed{seed:08d}.npz"


def _meta(spec: WorldSpec, resolution: int, steps: int, description: str | None = None) -> dict:
    meta = {"source": "worldgen", "num_actions": NUM_ACTIONS, "action_names": list(ACTION_NAMES),
            "spec": json.loads(spec.to_json()), "resolution": resolution, "steps": steps, DEPTH_AT_CENTRES: True}
    return meta if description is None else {**meta, "description": description}


def world_meta(seed: int, spec: WorldSpec, resolution: int, steps: int, vary: bool) -> dict:
    """A world's shard meta: with `vary`, its spec is `spec` with what `random_description(seed)` says on top."""
    if not vary:
        return _meta(spec, resolution, steps)
    return _meta(varied_spec(seed, spec), resolution, steps, random_description(seed))


def stored_spec(meta: dict) -> WorldSpec | None:
    """The WorldSpec a shard's meta names (None for imported recordings): a field added to WorldSpec since it
    was recorded takes its default, which leaves every world recorded before it as it was."""
    return None if meta.get("spec") is None else WorldSpec.from_dict(meta["spec"])


def _changed_settings(shard, meta: dict, episodes: int) -> list[str]:
    """The settings in which a finished shard differs from what recording it now would write: each key of
    `meta` (the spec compared as WorldSpec values, so an older shard's spec is the same world) and the episodes."""
    changed = [k for k in meta if k != "spec" and shard.meta.get(k) != meta[k]]
    try:
        if stored_spec(shard.meta) != stored_spec(meta):
            changed.append("spec")
    except SpecError as e:  # a spec this version does not know (a newer one's field, a value out of range)
        changed.append(f"spec ({e})")
    if len(shard.arrays["seeds"]) != episodes:
        changed.append("episodes")
    return changed


def record(seeds, episodes_per_world: int, steps: int, resolution: int, out: Path,
           spec: WorldSpec | None = None, progress: bool = True, workers: int = 1, vary: bool = False) -> RecordSummary:
    """Record every world of `seeds` not already in `out`. With `workers` > 1 that many processes record
    whole worlds side by side, each with its own renderer; a world's shard is the same whichever records it.
    With `vary`, each world is `spec` with a random description drawn from its seed on top (`world_meta`)."""
    spec = spec or WorldSpec()
    resolution = check_resolution(resolution)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise WorldgenError("no world seeds to record: give --seeds A:B with B > A")
    if episodes_per_world < 1 or steps < 2:
        raise WorldgenError(f"need at least 1 episode per world and 2 steps, got {episodes_per_world} and {steps}")
    if not 1 <= workers <= 256:
        raise WorldgenError(f"--workers {workers}: expected 1 to 256 processes")
    out = ensure_writable_dir(Path(out))
    for stale in out.glob(".shard-*.tmp-*"):
        stale.unlink()  # remains of a killed writer; finished shards are never under this name
    todo, skipped = [], []
    for seed in seeds:
        path = shard_path(out, seed)
        if not path.exists():
            todo.append(seed)
            continue
        changed = _changed_settings(read_shard(path), world_meta(seed, spec, resolution, steps, vary),
                                    episodes_per_world)
        if changed:
            raise DataError(f"{path} was recorded with other settings ({', '.join(changed)} differ); "
                            "record into another folder, or delete it to re-record")
        skipped.append(path)
    bar = tqdm(total=len(todo) * episodes_per_world, desc="recording", unit="episode", disable=not progress)
    results = []
    for result in _recorded_worlds(todo, (episodes_per_world, steps, out, spec, vary), resolution, spec, workers):
        results.append(result)
        bar.update(episodes_per_world)
    bar.close()
    actions = np.concatenate([r[1] for r in results]) if results else np.zeros(0, np.int32)
    return RecordSummary(sorted(r[0] for r in results), skipped, actions, sum(r[2] for r in results),
                         sum(r[3] for r in results))


def _recorded_worlds(seeds: list[int], job: tuple, resolution: int, spec: WorldSpec, workers: int):
    """Each world's `_record_world` result as it is done: in this process, or in `workers` processes."""
    if workers == 1 or len(seeds) < 2:
        with WorldEnv(resolution, task=None, spec=spec) as env:
            for seed in seeds:
                yield _record_world(env, seed, *job)
        return
    ctx = multiprocessing.get_context("spawn")  # a fresh process per worker: GL contexts do not survive fork
    with ProcessPoolExecutor(min(workers, len(seeds)), mp_context=ctx, initializer=_start_worker,
                             initargs=(resolution, spec)) as pool:
        for done in as_completed([pool.submit(_worker_world, seed, *job) for seed in seeds]):
            yield done.result()


def _record_world(env: WorldEnv, seed: int, episodes_per_world: int, steps: int, out: Path, spec: WorldSpec,
                  vary: bool):
    """Record and write one world's shard: (path, its actions after the first, blocked moves, moves)."""
    meta = world_meta(seed, spec, env.resolution, steps, vary)
    if vary:  # this world's own spec, drawn by the env's renderer
        env = WorldEnv(env.resolution, task=None, spec=stored_spec(meta), renderer=env.renderer)
    eps = [record_episode(env, seed, e, steps) for e in range(episodes_per_world)]
    arrays = {"frames": np.stack([e[0] for e in eps]), "depth": np.stack([e[1] for e in eps]),
              "actions": np.stack([e[2] for e in eps]), "poses": np.stack([e[3] for e in eps]),
              "intrinsics": env.intrinsics, "seeds": np.full(episodes_per_world, seed, np.int64),
              "episode_ids": np.arange(episodes_per_world, dtype=np.int64)}
    path = write_shard(shard_path(out, seed), meta, arrays)
    return path, arrays["actions"][:, 1:].ravel(), sum(e[4] for e in eps), sum(e[5] for e in eps)


_WORKER_ENV: WorldEnv | None = None


def _start_worker(resolution: int, spec: WorldSpec):
    global _WORKER_ENV
    if sys.platform.startswith("linux"):  # a killed `record` takes its workers with it (PR_SET_PDEATHSIG)
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    _WORKER_ENV = WorldEnv(resolution, task=None, spec=spec)


def _worker_world(seed: int, *job):
    return _record_world(_WORKER_ENV, seed, *job)
