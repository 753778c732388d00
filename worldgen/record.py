"""`worldgen record`: render explorer episodes of many worlds into shards, resumable after a kill.

Dimension keys: T steps, H height, W width.

One shard per world seed (`shard-seed<seed>.npz`) holds all of that world's episodes. Shards are written
atomically, so on restart every shard already on disk is whole; it is checked and skipped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldgen.actions import ACTION_NAMES, NUM_ACTIONS, Action
from worldgen.dataset import DataError, ensure_writable_dir, read_shard, write_shard
from worldgen.errors import WorldgenError
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


def record_episode(env: WorldEnv, seed: int, episode: int, steps: int):
    """Episode `episode` of world `seed` through a free-walking engine env: the curious explorer, drawing from
    the episode's random stream after its spawn (`env.episode_rng`); the first action is NOOP.
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
            actions[t] = explorer.act(info["blocked"])
            obs, _, _, _, info = env.step(actions[t])
            if actions[t] not in (Action.NOOP, Action.TURN_LEFT, Action.TURN_RIGHT):
                moves += 1
                n_blocked += int(info["blocked"])
        frames[t], depth[t], poses[t] = obs["rgb"], obs["depth"], obs["pose"]
    return frames, depth, actions, poses, n_blocked, moves


def shard_path(out: Path, seed: int) -> Path:
    return Path(out) / f"shard-seed{seed:08d}.npz"


def _meta(spec: WorldSpec, resolution: int, steps: int) -> dict:
    return {"source": "worldgen", "num_actions": NUM_ACTIONS, "action_names": list(ACTION_NAMES),
            "spec": json.loads(spec.to_json()),
            "resolution": resolution, "steps": steps}


def record(seeds, episodes_per_world: int, steps: int, resolution: int, out: Path,
           spec: WorldSpec | None = None, progress: bool = True) -> RecordSummary:
    spec = spec or WorldSpec()
    resolution = check_resolution(resolution)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise WorldgenError("no world seeds to record: give --seeds A:B with B > A")
    if episodes_per_world < 1 or steps < 2:
        raise WorldgenError(f"need at least 1 episode per world and 2 steps, got {episodes_per_world} and {steps}")
    out = ensure_writable_dir(Path(out))
    for stale in out.glob(".shard-*.tmp-*"):
        stale.unlink()  # remains of a killed writer; finished shards are never under this name
    meta = _meta(spec, resolution, steps)
    todo, skipped = [], []
    for seed in seeds:
        path = shard_path(out, seed)
        if not path.exists():
            todo.append(seed)
            continue
        shard = read_shard(path)
        same = {k: shard.meta.get(k) for k in meta} == meta and len(shard.arrays["seeds"]) == episodes_per_world
        if not same:
            raise DataError(f"{path} was recorded with other settings (steps, resolution, spec or episodes); "
                            "record into another folder, or delete it to re-record")
        skipped.append(path)
    written, all_actions, blocked, moves = [], [], 0, 0
    bar = tqdm(total=len(todo) * episodes_per_world, desc="recording", unit="episode", disable=not progress)
    with WorldEnv(resolution, task=None, spec=spec) as env:
        for seed in todo:
            eps = [record_episode(env, seed, e, steps) for e in _tick(range(episodes_per_world), bar)]
            arrays = {"frames": np.stack([e[0] for e in eps]), "depth": np.stack([e[1] for e in eps]),
                      "actions": np.stack([e[2] for e in eps]), "poses": np.stack([e[3] for e in eps]),
                      "intrinsics": env.intrinsics, "seeds": np.full(episodes_per_world, seed, np.int64),
                      "episode_ids": np.arange(episodes_per_world, dtype=np.int64)}
            written.append(write_shard(shard_path(out, seed), meta, arrays))
            all_actions.append(arrays["actions"][:, 1:].ravel())
            blocked += sum(e[4] for e in eps)
            moves += sum(e[5] for e in eps)
    bar.close()
    actions = np.concatenate(all_actions) if all_actions else np.zeros(0, np.int32)
    return RecordSummary(written, skipped, actions, blocked, moves)


def _tick(items, bar):
    for item in items:
        yield item
        bar.update(1)
