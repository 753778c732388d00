"""`worldgen agent train|eval` and `worldgen bench agents`: PPO in the dream or the engine, judged in the engine.

Dimension keys: N environments.

A run folder holds checkpoints/ (orbax, with the PPO config; `--resume` continues the newest), metrics.jsonl
(one line per update) and policy/ (the exported policy: config.json + params). Evaluation always walks the
engine, on held-out worlds (seed % 10 == 0) the policy never trained in.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from training import checkpoint
from training.fit import trim_log
from training.ppo import POLICY_KEYS, PPOConfig, Policy, act, build, engine_rollout, make_dream_rollout, make_update
from worldgen import task as nav
from worldgen.actions import NUM_ACTIONS
from worldgen.dataset import ensure_writable_dir, is_heldout
from worldgen.errors import WorldgenError
from worldgen.files import write_atomic, write_video
from worldgen.model.store import export_model, load_module
from worldgen.xla import jit

ENVS = ("dream", "engine")
EVAL_SEEDS = tuple(range(2000, 3000, 10))  # held-out worlds (seed % 10 == 0), never recorded for training


def _policy_fn(graphdef):
    @jit
    def fn(state, obs, key):
        policy, _ = nnx.merge(graphdef, state)
        return act(policy, {k: jnp.asarray(obs[k]) for k in POLICY_KEYS}, key)
    return fn


def train_agent(env: str, workdir: Path, config: PPOConfig, updates: int, task: nav.TaskConfig | None = None,
                model: str = "bundled", data: Path | None = None, resume: bool = False, seed: int = 0,
                checkpoint_every: int = 10, progress: bool = True, minutes: float | None = None) -> dict:
    """PPO for `updates` updates of num_envs x rollout_steps env steps, or until `minutes` of wall time
    have passed (then it checkpoints and exports as at the end). Returns the last update's metrics."""
    if env not in ENVS:
        raise WorldgenError(f"unknown env {env!r}: expected dream or engine")
    task = task or nav.TaskConfig()
    workdir = ensure_writable_dir(Path(workdir))
    policy, opt = build(config, seed)
    graphdef, state = nnx.split((policy, opt))
    update = make_update(graphdef, config)
    key = jax.random.key(seed)
    if env == "dream":
        from worldgen.dream_env import DreamEnv, DreamParams, starts_from_data
        from worldgen.model.store import load_model
        if data is None:
            raise WorldgenError("the dream env starts from recorded frames: pass --data (a `worldgen record` folder)")
        world_model = load_model(model)
        if world_model.config.resolution != config.resolution:
            raise WorldgenError(f"the world model works at {world_model.config.resolution}x"
                                f"{world_model.config.resolution}, the policy at {config.resolution}")
        dream = DreamEnv(world_model, starts_from_data(data, world_model.config.context, task))
        params = DreamParams(horizon=task.horizon, goal_radius=task.goal_radius)
        rollout = make_dream_rollout(dream, graphdef, config)
        obs, env_state = jax.vmap(dream.reset, in_axes=(0, None))(
            jax.random.split(jax.random.fold_in(key, 1), config.num_envs), params)
    else:
        from worldgen.env import make_vector_env
        vec = make_vector_env(config.num_envs, config.resolution, task, split="train")
        first = [w for w in range(seed * 100_003 + 1, seed * 100_003 + 2 * config.num_envs + 2) if not is_heldout(w)]
        obs, _ = vec.reset(seed=first[:config.num_envs])  # training worlds; later resets draw from the split
        policy_fn = _policy_fn(graphdef)
    mngr = checkpoint.manager(workdir / "checkpoints")
    start = 0
    if resume:
        restored = checkpoint.restore_latest(mngr, state, config)
        if restored is not None:
            state, meta = restored
            start = int(meta["update"])
            if meta.get("env") != env:
                raise WorldgenError(f"{workdir} holds a policy trained in the {meta.get('env')} env, not {env}")
    elif mngr.latest_step() is not None:
        raise WorldgenError(f"{workdir} already has checkpoints: pass --resume to continue, or use a new folder")
    meta = {"model_config": config.to_dict(), "env": env, "task": vars(task), "world_model": model}
    trim_log(workdir / "metrics.jsonl", start)
    log = open(workdir / "metrics.jsonl", "a")
    bar = tqdm(range(start, updates), initial=start, total=updates, desc=f"PPO ({env})", disable=not progress)
    last, t0 = {}, time.time()
    try:
        for u in bar:
            k_roll, k_upd = jax.random.split(jax.random.fold_in(key, 1000 + u))
            if env == "dream":
                env_state, obs, traj, last_value = rollout(state, env_state, obs, k_roll, params)
            else:
                obs, traj, last_value = engine_rollout(vec, lambda o, k: policy_fn(state, o, k), obs, k_roll, config)
            state, metrics = update(state, traj, last_value, k_upd)
            done = np.asarray(traj.done)
            reached = done & (np.asarray(traj.reward) > nav.SUCCESS / 2)
            last = {k: float(v) for k, v in jax.device_get(metrics).items()}
            last.update(step=u, update=u + 1, env_steps=(u + 1) * config.num_envs * config.rollout_steps,
                        time=time.time() - t0, episodes=int(done.sum()),
                        success_rate=float(reached.sum() / max(done.sum(), 1)),
                        mean_reward=float(np.asarray(traj.reward).mean()))
            log.write(json.dumps(last) + "\n")
            log.flush()
            bar.set_postfix(success=f"{last['success_rate']:.2f}", reward=f"{last['mean_reward']:.3f}")
            out_of_time = minutes is not None and time.time() - t0 > 60 * minutes
            if (u + 1) % checkpoint_every == 0 or u + 1 == updates or out_of_time:
                checkpoint.save(mngr, u + 1, state, dict(meta, update=u + 1))
            if out_of_time:
                break
    finally:
        bar.close()
        log.close()
        mngr.close()
        if env == "engine":
            vec.close()
    policy, _ = nnx.merge(graphdef, state)
    export_model(policy, workdir / "policy", {"agent": meta})
    return last


def load_policy(directory: Path) -> Policy:
    """The policy exported by `worldgen agent train` (its folder's policy/, or that folder itself)."""
    directory = Path(directory)
    if (directory / "policy").is_dir():
        directory = directory / "policy"
    return load_module(directory, "PPO policy", lambda saved: Policy(PPOConfig.from_dict(saved), rngs=nnx.Rngs(0)))


def eval_agent(policy: str, out: Path, episodes: int = 20, task: nav.TaskConfig | None = None,
               videos: int = 2, resolution: int = 64, progress: bool = True) -> dict:
    """Run a policy folder (or 'random') in the engine on held-out worlds: success rate, return, an MP4."""
    from worldgen.env import WorldEnv
    if not 1 <= episodes <= len(EVAL_SEEDS):
        raise WorldgenError(f"episodes = {episodes}: expected 1..{len(EVAL_SEEDS)}")
    out = ensure_writable_dir(Path(out))
    task = task or nav.TaskConfig()
    rng = np.random.default_rng(0)
    if policy == "random":
        choose = lambda obs, k: int(rng.integers(0, NUM_ACTIONS))
    else:
        net = load_policy(Path(policy))
        resolution = net.config.resolution
        graphdef, state = nnx.split(net)
        apply = jit(lambda s, o, k: act(nnx.merge(graphdef, s), o, k)[0])
        choose = lambda obs, k: int(apply(state, {n: jnp.asarray(obs[n])[None] for n in POLICY_KEYS}, k)[0])
    env = WorldEnv(resolution, task)
    results, frames = [], []
    key = jax.random.key(0)
    for i, seed in enumerate(tqdm(EVAL_SEEDS[:episodes], desc="episodes", disable=not progress)):
        obs, info = env.reset(seed=seed)
        total, start_distance, clip = 0.0, info["distance"], [obs["rgb"]]
        while True:
            action = choose(obs, jax.random.fold_in(key, i * 10_000 + info["step"]))
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            if i < videos:
                clip.append(obs["rgb"])
            if terminated or truncated:
                break
        results.append({"seed": seed, "reached": bool(terminated), "return": total, "steps": info["step"],
                        "start_distance": start_distance, "end_distance": info["distance"]})
        frames += clip if i < videos else []
    env.close()
    summary = {"policy": policy, "episodes": episodes, "task": vars(task),
               "success_rate": float(np.mean([r["reached"] for r in results])),
               "mean_return": float(np.mean([r["return"] for r in results])),
               "mean_steps": float(np.mean([r["steps"] for r in results])), "per_episode": results}
    write_atomic(out / "agent_eval.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=1)))
    if frames:
        write_video(out / "agent.mp4", frames, fps=10)
    return summary
