"""`worldgen train` and `worldgen eval` (registered through the worldgen.commands entry point)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from worldgen.files import write_atomic


def _init_distributed():
    """jax.distributed.initialize() from the environment: a detected cluster (SLURM, TPU pod, ...) or
    JAX_COORDINATOR_ADDRESS with JAX_NUM_PROCESSES and JAX_PROCESS_ID."""
    import os

    import jax

    from worldgen.errors import WorldgenError
    kw = {}
    for var, name in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
        if var in os.environ:
            try:
                kw[name] = int(os.environ[var])
            except ValueError:
                raise WorldgenError(f"{var}={os.environ[var]!r}: expected an integer") from None
    try:
        jax.distributed.initialize(**kw)
    except (ValueError, RuntimeError) as e:
        raise WorldgenError(f"--distributed: could not join the cluster ({str(e).splitlines()[0]}); set "
                            "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID") from None
    # The processes leave initialize() together. Their CPU collectives connect at the first collective, which
    # gives up when one process comes 30 s after another (one that loaded or compiled more slowly did, in a busy
    # test run); connected now, a later collective waits for the slowest process instead.
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("worldgen: all processes joined")


def _load(args, **options):
    """(folder, model) of --model, with the inference rules given (`world_model.RULES`: --show-memory,
    --sample-steps, ...; a switch's "model" and an unset value keep the folder's) and `options` applied
    (`world_model.with_options`)."""
    from worldgen.model.store import load_model, resolve_model
    from worldgen.model.world_model import RULES, with_options
    path = resolve_model(args.model)
    for rule in RULES:
        value = getattr(args, rule)
        if value not in (None, "model"):
            options[rule] = value == "on" if isinstance(value, str) else value
    return path, with_options(load_model(path), **options)


def _add_inference_settings(p) -> None:
    p.add_argument("--show-memory", default="model", choices=("model", "on", "off"),
                   help="show the memory's drawing wherever it knows a pixel, the network's output elsewhere "
                        "(ModelConfig.show_memory; model: as the model folder says)")
    p.add_argument("--sample-steps", type=int, default=None,
                   help="network evaluations per frame of the flow sampler, 1..16 (ModelConfig.sample_steps; "
                        "default: as the model folder says)")
    p.add_argument("--sample-temperature", type=float, default=None,
                   help="scale of the sampler's starting noise, 0..2 (ModelConfig.sample_temperature; default: as "
                        "the model folder says)")
    p.add_argument("--palette-rows", type=int, default=None,
                   help="paint with the nearest colours of the real start frames within this many rows, 0 = off "
                        "(ModelConfig.palette_rows; default: as the model folder says)")
    p.add_argument("--palette-prior", type=float, default=None,
                   help="a painted colour goes to the likeliest palette colour of its row, given this much colour "
                        "error (signed RGB), 0 = the nearest (ModelConfig.palette_prior; default: as the model "
                        "folder says)")
    p.add_argument("--palette-reach", type=float, default=None,
                   help="a painted colour farther than this (signed RGB) from every palette colour of its row "
                        "keeps the network's colour, 0 = all go to the palette (ModelConfig.palette_reach; "
                        "default: as the model folder says)")
    p.add_argument("--transient-near", type=float, default=None,
                   help="dreamed content within this many metres of the eye, above the ground, is shown but not "
                        "stored, 0 = off (ModelConfig.transient_near; default: as the model folder says)")
    p.add_argument("--collide", default="model", choices=("model", "on", "off"),
                   help="a move into something the real start frames show is blocked as the player's is "
                        "(ModelConfig.collide; model: as the model folder says)")
    p.add_argument("--fill-behind", default="model", choices=("model", "on", "off"),
                   help="a hole in the memory's drawing between two known pixels of a row starts from the farther "
                        "of them (ModelConfig.fill_behind, needs a model with fill; model: as the model folder "
                        "says)")
    p.add_argument("--fill-edge", default="model", choices=("model", "on", "off"),
                   help="a strip at the frame's edge that memory does not know starts from its row's background "
                        "where the dream painted the pixel at its edge (ModelConfig.fill_edge, needs a model with "
                        "fill; model: as the model folder says)")
    p.add_argument("--real-surfaces", default="model", choices=("model", "on", "off"),
                   help="where the real start frames' points are magnified or leave holes, draw those frames as "
                        "whole surfaces (ModelConfig.real_surfaces; model: as the model folder says)")
    p.add_argument("--edge-share", default="model", choices=("model", "on", "off"),
                   help="a real frames' silhouette that the frame taken nearest the camera sees past takes the far "
                        "colour in the share of the frames that do (ModelConfig.edge_share; model: as the model "
                        "folder says)")
    p.add_argument("--ground-within", type=float, default=None,
                   help="a dreamed pixel said to be sky whose ray meets a level ground within this many metres is "
                        "that ground, 0 = off (ModelConfig.ground_within; default: as the model folder says)")
    p.add_argument("--sky-above", type=float, default=None,
                   help="a painted pixel said to be sky more than this many degrees over the horizon takes the real "
                        "start frames' sky colour, 0 = off (ModelConfig.sky_above; default: as the model folder says)")
    p.add_argument("--real-ground", default="model", choices=("model", "on", "off"),
                   help="where the real start frames show the ground all around the camera and its eye is more than "
                        "0.3 m off eye height over it, the eye stands there (ModelConfig.real_ground; model: as the "
                        "model folder says)")
    p.add_argument("--pyramid-levels", type=int, default=None,
                   help="levels of the pixel pyramid the memory splats its points into: a point is drawn at most "
                        "2^(levels-1) pixels wide (ModelConfig.pyramid_levels; default: as the model folder says)")


def _train_rules(args) -> dict:
    """The inference rules `worldgen train` sets on the model it trains (`world_model.RULES`): those given (a
    switch only when on)."""
    from worldgen.model.world_model import RULES
    given = {rule: getattr(args, rule) for rule in RULES}
    return {k: v for k, v in given.items() if v is not None and v is not False}


def _train(args):
    if args.distributed:
        _init_distributed()
    from training.fit import FitConfig
    from training.train_world_model import train_world_model
    from worldgen.dataset import ensure_writable_dir
    ensure_writable_dir(args.workdir)  # before minutes of set-up, not after
    cfg = FitConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                    warmup_steps=min(args.warmup, args.steps), checkpoint_every=args.checkpoint_every,
                    eval_every=args.eval_every, seed=args.seed, weight_decay=args.weight_decay)
    _, info = train_world_model(args.data, args.workdir, args.preset, cfg, resume=args.resume, out=args.out,
                                eval_episodes=args.eval_episodes, stage=args.stage, init=args.init,
                                rollout=args.rollout, window=args.window, rollout_targets=args.rollout_targets,
                                stop_after=args.stop_after, dream=args.dream, dream_weight=args.dream_weight,
                                dream_per_row=args.dream_per_row, provenance=args.provenance,
                                fill=args.fill, noise_level=args.noise_level, move_outcomes=args.move_outcomes,
                                deepen_by=args.deepen,
                                rules=_train_rules(args), painted_only=args.painted_only)
    print(f"trained {info['stopped_after'] or info['steps']} steps; final metrics {info['final_metrics']}; model in "
          f"{args.out or args.workdir / 'model'}")


def _dream_data(args):
    from training.dream_data import collect
    from worldgen.dataset import EpisodeDataset
    path, model = _load(args, provenance=args.provenance)
    meta = collect(model, EpisodeDataset(args.data, args.split), args.out, batch=args.batch,
                   episodes=args.episodes, seed=args.seed, model_name=str(path))
    print(f"wrote {meta['steps']} dreamed steps of {meta['episodes']} episodes to {args.out}")


def _export(args):
    from training.train_world_model import export_checkpoint
    print(f"exported {export_checkpoint(args.workdir, args.out)}")


def _card(args):
    from training.model_card import write_model_card
    print(f"wrote {write_model_card(args.model, args.metrics, args.command, args.notes)}")


def _eval(args):
    from training.evaluate import evaluate, summary_table, write_report
    from worldgen.dataset import EpisodeDataset
    from worldgen.model.runner import Generator
    from worldgen.dataset import ensure_writable_dir
    ensure_writable_dir(args.out)  # before minutes of evaluation, not after
    from training.long_walk import HOLD_WALKS, KEYS, WALKS, check_walks
    args.long_walks = WALKS if args.long_walks is None else args.long_walks
    args.hold_walks = HOLD_WALKS if args.hold_walks is None else args.hold_walks
    args.long_walk_keys = KEYS if args.long_walk_keys is None else args.long_walk_keys
    for n in (args.long_walks, args.hold_walks):
        if n:
            check_walks(n, args.long_steps, args.long_walk_keys)
    path, model = _load(args)
    gen = Generator(model)
    data = EpisodeDataset(args.data, args.split)
    result, arrays = evaluate(gen, data, args.episodes, model_name=args.model if args.model == "bundled" else str(path))
    paths = write_report(result, arrays, args.out)
    print(summary_table(result))
    from training.long_walk import long_walk
    from training.long_walk_report import table_text, write_long_walk_report
    from worldgen.actions import Action
    # the explorer's walks (issue 9's targets), then W held after the viewer's start (what a user does first)
    for key, n, hold, folder in (("long_walk", args.long_walks, None, args.out),
                                 ("hold_walk", args.hold_walks, Action.FORWARD, args.out / "hold_w")):
        if not n:
            continue
        walk, walk_arrays = long_walk(gen, n, args.long_steps, keys=args.long_walk_keys, hold=hold)
        paths += write_long_walk_report(walk, walk_arrays, folder)
        result[key] = {k: v for k, v in walk.items() if k != "per_step"}
        write_atomic(paths[0], lambda tmp: tmp.write_text(json.dumps(result, indent=1)))
        print(table_text(walk))
    print("wrote " + ", ".join(str(p) for p in paths))


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the world model on a recorded or imported dataset")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--workdir", type=Path, required=True, help="checkpoints, metrics.jsonl, model/")
    p.add_argument("--preset", default=None,
                   help="tiny | small | wide | base (default small; with --init, the model's own)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=8, help="windows per step (each gives 4 targets)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=0, help="0: evaluate only at the end")
    p.add_argument("--eval-episodes", type=int, default=8)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--stage", default="all",
                   help="all: the whole model; pose: refine only the camera-motion head of --init; colour: refine "
                        "only its colour network (the other part stays exactly as it is)")
    p.add_argument("--init", type=Path, default=None, help="start from this model folder")
    p.add_argument("--rollout", type=float, default=0.0,
                   help="weight of the loss on the model's own rollout through its world memory over each "
                        "window (0: off; see docs/model.md)")
    p.add_argument("--window", type=int, default=None,
                   help="frames per training window (default: the whole episode with --rollout, else 8)")
    p.add_argument("--rollout-targets", type=int, default=32, help="rollout steps scored per batch")
    p.add_argument("--dream", type=Path, default=None,
                   help="also train on stored steps of a model's own long rollouts (a `worldgen dream-data` folder)")
    p.add_argument("--dream-weight", type=float, default=1.0, help="weight of the --dream loss")
    p.add_argument("--provenance", action="store_true",
                   help="give the network the memory pixels that come from real frames (grafted onto --init)")
    p.add_argument("--fill", action="store_true",
                   help="start the network from the memory drawing with its holes filled, not from the last frame "
                        "(switched on for --init; see docs/model.md)")
    p.add_argument("--deepen", type=int, default=None, metavar="WIDTH",
                   help="give the --init model's U-Net one more level of WIDTH channels at the bottom (it sees "
                        "twice as far; grafted so that it makes the same frames until trained)")
    p.add_argument("--noise-level", action="store_true",
                   help="tell the network how noisy its context is in training (0 at inference), so it keeps clean "
                        "inputs sharp (grafted onto --init; see docs/model.md)")
    p.add_argument("--move-outcomes", action="store_true",
                   help="the camera head also classifies a move's outcome (full step, slide along world x or z, "
                        "blocked) and takes it where it is sure (grafted onto --init; works with --stage pose; "
                        "see docs/model.md)")
    p.add_argument("--show-memory", action="store_true",
                   help="the trained model shows its memory wherever memory knows a pixel (ModelConfig.show_memory, "
                        "an inference rule; it also applies to --rollout; switched on for --init)")
    p.add_argument("--sample-steps", type=int, default=None,
                   help="the trained model's flow-sampler steps per frame (1..16; default: --init's, else the "
                        "preset's)")
    p.add_argument("--sample-temperature", type=float, default=None,
                   help="the trained model's sampling temperature (0..2; default: --init's, else the preset's 1.0)")
    p.add_argument("--palette-rows", type=int, default=None,
                   help="the trained model's ModelConfig.palette_rows (0 = off; default: --init's, else 0)")
    p.add_argument("--palette-prior", type=float, default=None,
                   help="the trained model's ModelConfig.palette_prior (0 = the nearest colour; default: --init's, "
                        "else 0)")
    p.add_argument("--palette-reach", type=float, default=None,
                   help="the trained model's ModelConfig.palette_reach (0 = every painted colour goes to the "
                        "palette; default: --init's, else 0)")
    p.add_argument("--transient-near", type=float, default=None,
                   help="the trained model's ModelConfig.transient_near in metres (0 = off; default: --init's, "
                        "else 0)")
    p.add_argument("--ground-within", type=float, default=None,
                   help="the trained model's ModelConfig.ground_within in metres (0 = off; default: --init's, "
                        "else 0)")
    p.add_argument("--sky-above", type=float, default=None,
                   help="the trained model's ModelConfig.sky_above in degrees (0 = off; default: --init's, else 0)")
    p.add_argument("--collide", action="store_true",
                   help="the trained model blocks moves into what its real start frames show (ModelConfig.collide, "
                        "an inference rule; needs --move-outcomes or an --init that has them)")
    p.add_argument("--fill-behind", action="store_true",
                   help="a hole between two known pixels of a row of the memory's drawing starts from the farther "
                        "of them, in training and after (ModelConfig.fill_behind, an inference rule; needs --fill "
                        "or an --init that has it)")
    p.add_argument("--fill-edge", action="store_true",
                   help="a strip at the frame's edge that memory does not know starts from its row's background, in "
                        "training and after (ModelConfig.fill_edge, an inference rule; needs --fill or an --init "
                        "that has it)")
    p.add_argument("--real-surfaces", action="store_true",
                   help="the trained model draws its real start frames as whole surfaces where their points are "
                        "magnified (ModelConfig.real_surfaces, an inference rule)")
    p.add_argument("--edge-share", action="store_true",
                   help="the trained model draws its real frames' silhouettes as the frame taken nearest the camera "
                        "sees them (ModelConfig.edge_share, an inference rule)")
    p.add_argument("--real-ground", action="store_true",
                   help="the trained model stands its eye on the ground the real start frames show all around it "
                        "where the camera head puts it more than 0.3 m off (ModelConfig.real_ground, an inference "
                        "rule)")
    p.add_argument("--pyramid-levels", type=int, default=None,
                   help="the trained model's ModelConfig.pyramid_levels, in training's warps and after (default: "
                        "--init's, else 3)")
    p.add_argument("--painted-only", action="store_true",
                   help="score the colours of recorded windows only where the model paints (memory does not know "
                        "the pixel at full resolution); needs a model that shows its memory (see docs/model.md)")
    p.add_argument("--dream-per-row", type=int, default=2, help="--dream steps per batch row")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop once this many steps of the --steps schedule are done (resume later with --resume)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distributed", action="store_true",
                   help="multi-host: call jax.distributed.initialize() (see README, Multi-host training)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --workdir")
    p.add_argument("--out", type=Path, default=None, help="where to export the trained model (default WORKDIR/model)")
    p.set_defaults(func=_train)

    p = sub.add_parser("dream-data", help="roll a model out over recorded episodes and store its inputs "
                                          "and the true frames, to train on (`train --dream`)")
    p.add_argument("--model", default="bundled", help="a model folder, or 'bundled'")
    p.add_argument("--data", type=Path, required=True, help="recorded episodes, the longer the better")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", default="train", choices=("train", "all"))
    p.add_argument("--episodes", type=int, default=None, help="the first N episodes (default: all)")
    p.add_argument("--batch", type=int, default=16, help="episodes rolled out together")
    p.add_argument("--provenance", action="store_true",
                   help="store the provenance input too (grafted onto a model that lacks it; train --provenance)")
    _add_inference_settings(p)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_dream_data)

    p = sub.add_parser("export-checkpoint", help="turn the newest checkpoint of a training run into a model folder")
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_export)

    p = sub.add_parser("model-card", help="write MODEL_CARD.md for a model folder from an eval's metrics.json")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--command", default="bash scripts/bundled_model.sh")
    p.add_argument("--notes", default="")
    p.set_defaults(func=_card)

    p = sub.add_parser("eval", help="roll the model out on held-out worlds and write metrics.json + plots")
    p.add_argument("--model", default="bundled", help="a model folder, or 'bundled'")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--split", default="heldout", choices=("heldout", "train", "all"))
    p.add_argument("--long-walks", type=int, default=None,
                   help="explorer walks on unseen worlds for the long-walk test (default: training.long_walk.WALKS, "
                        "24; 0: skip)")
    p.add_argument("--hold-walks", type=int, default=None,
                   help="walks on unseen worlds with W held after the viewer's start (a look around from the "
                        "spawn), as a user first does in the viewer; written to OUT/hold_w (default: "
                        "training.long_walk.HOLD_WALKS, 16; 0: skip)")
    p.add_argument("--long-steps", type=int, default=200, help="dreamed steps per long walk")
    p.add_argument("--long-walk-keys", type=int, default=None,
                   help="sampling keys each long walk is dreamed with; the figures pool them (default: "
                        "training.long_walk.KEYS, 3: one key moves the figures after step 50 by up to 0.16 dB; "
                        "1 takes a third of the dreaming time)")
    _add_inference_settings(p)
    p.set_defaults(func=_eval)
