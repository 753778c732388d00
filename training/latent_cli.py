"""`worldgen latent train|probe`, `worldgen plan` and `worldgen bench plan` (see docs/planning.md)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _train(args):
    from training.fit import FitConfig
    from training.latent import LatentLoss, train_latent
    from worldgen.dataset import ensure_writable_dir
    ensure_writable_dir(args.workdir)
    cfg = FitConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                    warmup_steps=min(args.warmup, args.steps), checkpoint_every=args.checkpoint_every, seed=args.seed)
    loss = LatentLoss(horizon=args.horizon, var_weight=args.var_weight, cov_weight=args.cov_weight,
                      idm_weight=args.idm_weight, ema=args.ema)
    _, info = train_latent(args.data, args.workdir, args.preset, cfg, loss, resume=args.resume,
                           stop_after=args.stop_after, latent=args.latent)
    m = info["final_metrics"]
    print(f"trained {info['stopped_after'] or info['steps']} steps; prediction error {m['pred_mse']:.4f} "
          f"({m['pred_vs_still']:.2f} of 'nothing changes'), latent std {m['z_std']:.2f}, inverse-dynamics "
          f"accuracy {m['idm_acc']:.2f}; model in {args.workdir / 'model'}")


def _probe(args):
    from training.latent import probe
    from worldgen.latent import load_latent
    print(json.dumps(probe(load_latent(args.model), args.data, args.pairs), indent=1))


def _plan(args):
    from training.plan import GOAL_SEEDS, plan_walks
    from worldgen.planner import PlanConfig
    cfg = PlanConfig(horizon=args.horizon, candidates=args.candidates, iterations=args.iterations,
                     elites=args.elites or max(1, args.candidates // 8))
    policy = args.policy or f"latent:{args.model}"
    if args.goal is not None:
        return _plan_to_image(args, policy, cfg)
    seeds = [args.seed] if args.seed is not None else GOAL_SEEDS[:args.episodes]
    s = plan_walks(policy, args.goal_steps, seeds, args.out, cfg, videos=args.videos)
    print(f"{policy}, goals {args.goal_steps} random moves away: reached {s['success_rate']:.0%} of "
          f"{s['episodes']} (ending {s['mean_end_m']:.2f} m / {s['mean_end_deg']:.0f} deg from the goal pose on "
          f"average; it started {s['mean_start_m']:.2f} m away); {s['seconds_per_action'] * 1000:.0f} ms per "
          f"action; wrote {args.out}/plan.json and plan.mp4")


def _plan_to_image(args, policy_name, cfg):
    """Walk toward a picture (no goal pose is known, so no success is scored): frames and the MP4 only."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from training.plan import GoalEpisode, make_policy, run_episode
    from worldgen.dataset import ensure_writable_dir
    from worldgen.env import WorldEnv
    from worldgen.errors import WorldgenError
    from worldgen.files import write_video
    try:
        with Image.open(args.goal) as im:
            goal = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise WorldgenError(f"--goal {args.goal}: not a readable image ({type(e).__name__})") from None
    seed = 3000 if args.seed is None else args.seed
    out = ensure_writable_dir(args.out)
    policy, set_goal, res = make_policy(policy_name, cfg)
    set_goal(goal)  # a picture of another size is refused here, by name
    with WorldEnv(res or 64, task=None) as env:
        env.reset(seed=seed)
        ep = GoalEpisode(seed, env.player, env.player, goal, args.steps)
        r = run_episode(ep, policy, env, keep_frames=True)
    write_video(out / "plan.mp4", r["frames"], fps=6)
    print(f"walked {args.steps} steps toward {args.goal} in world {seed}; wrote {out}/plan.mp4")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latent", help="a JEPA-style latent world model: train it, probe what it knows")
    verbs = p.add_subparsers(dest="verb", required=True)
    t = verbs.add_parser("train", help="train the encoder and latent predictor on recorded episodes")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--workdir", type=Path, required=True, help="checkpoints, metrics.jsonl, model/")
    t.add_argument("--preset", default="small", help="tiny | small")
    t.add_argument("--latent", type=int, default=None, help="latent dimensions (default: the preset's)")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--checkpoint-every", type=int, default=250)
    t.add_argument("--horizon", type=int, default=4, help="predicted steps per training window")
    t.add_argument("--var-weight", type=float, default=1.0)
    t.add_argument("--cov-weight", type=float, default=0.04)
    t.add_argument("--idm-weight", type=float, default=1.0, help="inverse-dynamics term (0: off)")
    t.add_argument("--ema", type=float, default=0.0,
                   help="predict the latents of an EMA copy of the encoder with this decay, e.g. 0.99 "
                        "(0: the encoder's own)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--stop-after", type=int, default=None)
    t.add_argument("--resume", action="store_true")
    t.set_defaults(func=_train)
    r = verbs.add_parser("probe", help="linear read-out of relative pose from latents, and latent spread")
    r.add_argument("--model", type=Path, required=True)
    r.add_argument("--data", type=Path, required=True, help="recorded episodes with poses (train + held-out)")
    r.add_argument("--pairs", type=int, default=4000)
    r.set_defaults(func=_probe)

    p = sub.add_parser("plan", help="walk to a goal view in the engine by planning in a latent model (MPC)")
    p.add_argument("--model", default="bundled", help="a latent model (run folder or its model/), or 'bundled'")
    p.add_argument("--policy", default=None, help="instead of --model: random, still, latent:DIR or pixel:MODEL")
    p.add_argument("--goal-steps", type=int, default=16, help="the goal is the view N random moves away")
    p.add_argument("--goal", type=Path, default=None, help="or walk toward this picture (no success scored)")
    p.add_argument("--steps", type=int, default=24, help="with --goal: steps to walk")
    p.add_argument("--seed", type=int, default=None, help="one world (default: --episodes held-out worlds)")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--videos", type=int, default=1, help="episodes in plan.mp4")
    p.add_argument("--horizon", type=int, default=4, help="planning horizon (actions)")
    p.add_argument("--candidates", type=int, default=256)
    p.add_argument("--elites", type=int, default=None, help="default: an eighth of --candidates")
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_plan)


def bench_plan(model: str | None = None, worlds: int = 20, pixel_worlds: int = 3) -> str:
    """Goal reaching at N = 8, 16, 32 on held-out worlds: random, still, the latent planner (`model`, default
    the bundled one), and
    at N = 16 the same planner scoring pixel-world-model dreams (bundled model; fewer worlds, smaller search)."""
    from training.plan import GOAL_SEEDS, plan_walks
    from worldgen.benchmarks import peak_memory_row, table
    from worldgen.planner import PlanConfig
    model = model or "bundled"
    rows = []
    for n in (8, 16, 32):
        for name in ("random", "still", f"latent:{model}"):
            s = plan_walks(name, n, GOAL_SEEDS[:worlds], progress=False)
            rows.append((f"N={n} {name.split(':')[0]} ({worlds} worlds)",
                         f"{s['success_rate']:.0%} reached, {s['mean_end_m']:.2f} m / {s['mean_end_deg']:.0f} deg "
                         f"left, {s['seconds_per_action'] * 1000:.0f} ms/action"))
    small = PlanConfig(horizon=4, candidates=32, elites=6, iterations=2)
    s = plan_walks("pixel:bundled", 16, GOAL_SEEDS[:pixel_worlds], cfg=small, progress=False)
    rows.append((f"N=16 pixel world model ({pixel_worlds} worlds, 32 x 4 x 2 search)",
                 f"{s['success_rate']:.0%} reached, {s['mean_end_m']:.2f} m / {s['mean_end_deg']:.0f} deg left, "
                 f"{s['seconds_per_action'] * 1000:.0f} ms/action"))
    rows.append(peak_memory_row())
    return table([("goal reaching", f"latent model {model}")] + rows)
