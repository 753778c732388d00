"""Goal-reaching in the engine: walk to the view that N random moves from the start lead to.

Dimension keys: H, W, C.

An episode (`goal_episode`): a held-out world, the recorder's spawn, and a goal: the pose after N random moves
(forward, back, turns, strafes; never noop) from it, and the frame seen there. A policy gets the current
frame (with depth and camera pose, which only the pixel planner uses) and has N + SLACK steps; success =
ending within SUCCESS_M metres and SUCCESS_DEG degrees of the goal pose.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldgen import player
from worldgen.actions import NUM_ACTIONS
from worldgen.dataset import ensure_writable_dir, is_heldout
from worldgen.errors import WorldgenError
from worldgen.files import write_atomic, write_video
from worldgen.env import WorldEnv

GOAL_SEEDS = tuple(range(3000, 4000, 10))  # held-out worlds (seed % 10 == 0), never recorded for training
SUCCESS_M, SUCCESS_DEG = 1.5, 20.0
SLACK = 8  # steps a policy gets beyond the N moves that made the goal
MAX_GOAL_STEPS = 128


@dataclass
class GoalEpisode:
    seed: int  # the world; the episode starts at its recorder spawn
    start: player.PlayerState
    goal: player.PlayerState
    goal_rgb: np.ndarray  # (H, W, 3) uint8
    budget: int


def goal_episode(seed: int, n: int, env: WorldEnv) -> GoalEpisode:
    """World `seed`, its recorder spawn, and the goal N random moves away (a pure function of seed and N),
    walked in the free-walking engine env `env`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_GOAL_STEPS:
        raise WorldgenError(f"goal steps N = {n!r}: expected 1..{MAX_GOAL_STEPS}")
    env.reset(seed=int(seed))
    start = env.player
    for a in np.random.default_rng([int(seed), int(n), 11]).integers(1, NUM_ACTIONS, int(n)):
        obs = env.step(int(a))[0]
    return GoalEpisode(int(seed), start, env.player, obs["rgb"], int(n) + SLACK)


def pose_error(a: player.PlayerState, b: player.PlayerState) -> tuple[float, float]:
    """(metres, degrees) between two player states."""
    yaw = (a.yaw - b.yaw + math.pi) % (2 * math.pi) - math.pi
    return math.hypot(a.x - b.x, a.z - b.z), abs(math.degrees(yaw))


def run_episode(ep: GoalEpisode, policy, env: WorldEnv, keep_frames: bool = False) -> dict:
    """Walk `policy(obs) -> action` (obs: the engine env's rgb, depth, pose) for ep.budget steps from the start;
    the frames with the goal beside."""
    obs, _ = env.reset(seed=ep.seed)
    frames, think = [], []
    for _ in range(ep.budget):
        if keep_frames:
            frames.append(np.concatenate([obs["rgb"], ep.goal_rgb], 1))
        t0 = time.perf_counter()
        action = int(policy(obs))
        think.append(time.perf_counter() - t0)
        obs = env.step(action)[0]
    if keep_frames:
        frames.append(np.concatenate([obs["rgb"], ep.goal_rgb], 1))
    metres, degrees = pose_error(env.player, ep.goal)
    start_m, start_deg = pose_error(ep.start, ep.goal)
    return {"world_seed": ep.seed, "reached": metres <= SUCCESS_M and degrees <= SUCCESS_DEG,
            "end_m": metres, "end_deg": degrees, "start_m": start_m, "start_deg": start_deg, "steps": ep.budget,
            "seconds_per_action": float(np.mean(think[1:] or think)), "frames": frames}


def make_policy(name: str, cfg=None, seed: int = 0):
    """(policy(obs), set_goal(image), resolution or None) for 'random', 'still', 'latent:FOLDER' or
    'pixel:MODEL'; obs is the engine env's observation (rgb, depth, pose)."""
    from worldgen.planner import LatentPlanner, PixelPlanner, PlanConfig
    cfg = cfg or PlanConfig()
    kind, _, where = name.partition(":")
    if kind == "random":
        rng = np.random.default_rng(seed)
        return (lambda o: int(rng.integers(0, NUM_ACTIONS))), (lambda g: None), None
    if kind == "still":
        return (lambda o: 0), (lambda g: None), None
    if kind == "latent" and where:
        from worldgen.latent import load_latent
        planner = LatentPlanner(load_latent(where), cfg, seed)
        return (lambda o: planner.act(o["rgb"])[0]), planner.set_goal, planner.model.config.resolution
    if kind == "pixel" and where:
        from worldgen.camera import intrinsics_matrix
        from worldgen.model.runner import Generator
        from worldgen.model.store import load_model
        gen = Generator(load_model(where))
        planner, res = PixelPlanner(gen, cfg, seed), gen.config.resolution
        def act(o):
            return planner.act(o["rgb"], o["depth"], o["pose"], intrinsics_matrix(res))[0]
        return act, planner.set_goal, res
    raise WorldgenError(f"unknown policy {name!r}: expected random, still, latent:FOLDER or pixel:MODEL")


def plan_walks(policy_name: str, goal_steps: int, seeds, out: Path | None = None, cfg=None, videos: int = 1,
               resolution: int = 64, progress: bool = True) -> dict:
    """Run a policy on goal episodes in worlds `seeds`; with `out`, write plan.json and plan.mp4 there."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise WorldgenError("no worlds to plan in")
    if out is not None:
        out = ensure_writable_dir(Path(out))
    policy, set_goal, res = make_policy(policy_name, cfg)
    with WorldEnv(res or resolution, task=None) as env:
        results, frames = [], []
        for i, seed in enumerate(tqdm(seeds, desc=f"{policy_name} N={goal_steps}", disable=not progress)):
            ep = goal_episode(seed, goal_steps, env)
            set_goal(ep.goal_rgb)
            r = run_episode(ep, policy, env, keep_frames=out is not None and i < videos)
            frames += r.pop("frames")
            results.append(r)
    summary = {"policy": policy_name, "goal_steps": goal_steps, "episodes": len(results),
               "heldout_worlds": all(is_heldout(s) for s in seeds),
               "success_rate": float(np.mean([r["reached"] for r in results])),
               "mean_end_m": float(np.mean([r["end_m"] for r in results])),
               "mean_end_deg": float(np.mean([r["end_deg"] for r in results])),
               "mean_start_m": float(np.mean([r["start_m"] for r in results])),
               "seconds_per_action": float(np.mean([r["seconds_per_action"] for r in results])),
               "per_episode": results}
    if out is not None:
        write_atomic(out / "plan.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=1)))
        if frames:
            write_video(out / "plan.mp4", frames, fps=6)
    return summary
