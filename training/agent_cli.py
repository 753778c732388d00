"""`worldgen agent train|eval` (registered through the worldgen.commands entry point) and `worldgen bench agents`."""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def _task(args):
    from worldgen.task import TaskConfig
    return TaskConfig(goal_steps=args.goal_steps, horizon=args.horizon)


def _train(args):
    from training.agent import train_agent
    from training.ppo import PPOConfig
    config = PPOConfig(resolution=args.resolution, num_envs=args.num_envs, rollout_steps=args.rollout_steps,
                       lr=args.lr)
    last = train_agent(args.env, args.workdir, config, args.updates, _task(args), model=args.model, data=args.data,
                       resume=args.resume, seed=args.seed, minutes=args.minutes)
    print(f"trained {last.get('update', 0)} updates ({last.get('env_steps', 0)} env steps); last success rate "
          f"{last.get('success_rate', float('nan')):.2f}; policy in {args.workdir / 'policy'}")


def _eval(args):
    from training.agent import eval_agent
    s = eval_agent(args.policy, args.out, args.episodes, _task(args), resolution=args.resolution)
    print(f"{args.policy}: success {s['success_rate']:.0%} over {s['episodes']} held-out worlds, mean return "
          f"{s['mean_return']:.2f}, mean steps {s['mean_steps']:.1f}; wrote {args.out}/agent_eval.json")


def _task_args(p):
    p.add_argument("--goal-steps", type=int, default=16, help="explorer steps from the start to the goal")
    p.add_argument("--horizon", type=int, default=64, help="steps before an episode is truncated")
    p.add_argument("--resolution", type=int, default=64)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="PPO agents: train in the dream or the engine, evaluate in the engine")
    verbs = p.add_subparsers(dest="verb", required=True)
    t = verbs.add_parser("train", help="train a PPO policy on the navigation task (see docs/agents.md)")
    t.add_argument("--env", choices=("dream", "engine"), required=True)
    t.add_argument("--workdir", type=Path, required=True, help="checkpoints, metrics.jsonl, policy/")
    t.add_argument("--updates", type=int, default=100)
    t.add_argument("--minutes", type=float, default=None, help="stop (checkpoint, export) after this wall time")
    t.add_argument("--num-envs", type=int, default=16)
    t.add_argument("--rollout-steps", type=int, default=32)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--model", default="bundled", help="the world model of the dream env")
    t.add_argument("--data", type=Path, default=None, help="recorded episodes the dream starts from")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --workdir")
    _task_args(t)
    t.set_defaults(func=_train)
    e = verbs.add_parser("eval", help="run a policy (or 'random') in the engine on held-out worlds")
    e.add_argument("--policy", required=True, help="a policy folder of `agent train`, or 'random'")
    e.add_argument("--out", type=Path, required=True, help="agent_eval.json and agent.mp4 go here")
    e.add_argument("--episodes", type=int, default=20)
    _task_args(e)
    e.set_defaults(func=_eval)


def bench_agents(model: str = "bundled") -> str:
    """Env steps/s: the dream env (jitted, vmapped, one scan) at batch 1, 64 and 256; the engine env."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from worldgen.benchmarks import peak_memory_row, table
    from worldgen.camera import intrinsics_matrix
    from worldgen.dream_env import DreamEnv, Starts
    from worldgen.env import make_vector_env
    from worldgen.model.store import load_model
    from worldgen.xla import jit

    wm = load_model(model)
    c = wm.config
    rows = []
    vec = make_vector_env(1, c.resolution)
    vec.reset(seed=1)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(200):
        vec.step(rng.integers(0, 7, 1))
    rows.append(("engine env, 1 env", f"{200 / (time.perf_counter() - t0):.0f} steps/s"))
    obs, _ = vec.reset(seed=1)
    vec.close()
    k = c.context
    starts = Starts(frames_SKHWC=jnp.asarray(np.repeat(obs["rgb"][:, None], k, 1)),
                    depth_SKHW=jnp.asarray(np.repeat(obs["depth"][:, None], k, 1)),
                    poses_SK44=jnp.asarray(np.repeat(obs["pose"][:, None], k, 1)),
                    goals_S2=jnp.asarray(obs["pose"][:, [0, 2], 3] + 5.0),
                    intrinsics_33=jnp.asarray(intrinsics_matrix(c.resolution)))
    env = DreamEnv(wm, starts)
    params = env.default_params
    steps = 8
    for n in (1, 64, 256):
        @jit
        def run(key):
            obs, st = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n), params)

            def body(st, kk):
                a = jax.random.randint(kk, (n,), 0, 7)
                _, st, r, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(kk, n), st, a, params)
                return st, r
            return jax.lax.scan(body, st, jax.random.split(key, steps))[1]

        jax.block_until_ready(run(jax.random.key(0)))
        t0 = time.perf_counter()
        jax.block_until_ready(run(jax.random.key(1)))
        rows.append((f"dream env, batch {n}", f"{n * steps / (time.perf_counter() - t0):.0f} steps/s"))
    rows.append(peak_memory_row())
    return table([(f"agents, world model {model}", f"{c.resolution}x{c.resolution}")] + rows)
