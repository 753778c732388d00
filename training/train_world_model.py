"""`worldgen train`: build data, model and objective, then call the shared `fit` loop."""
from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx

from training import checkpoint
from training.dream_data import DreamData
from training.evaluate import evaluate
from training.fit import FitConfig, build_optimizer, fit
from training.objective import TEACHER_TARGETS, loss_fn, pose_loss_fn
from worldgen.dataset import EpisodeDataset
from worldgen.errors import DataError
from worldgen.model.config import ModelConfig, preset
from worldgen.model.runner import Generator
from worldgen.model.store import export_model, load_model, read_config
from worldgen.model.world_model import CAMERA, COLOUR, RULES, WorldModel, deepen, with_options
from worldgen.camera import intrinsics_matrix
from worldgen.files import write_atomic

STAGES = {"all": nnx.Param, "pose": CAMERA, "colour": COLOUR}  # stage: the parameters it trains


def train_world_model(data: Path, workdir: Path, preset_name: str | None = None, fit_cfg: FitConfig = FitConfig(),
                      resume: bool = False, out: Path | None = None, eval_episodes: int = 8,
                      progress: bool = True, stage: str = "all", init: Path | None = None,
                      rollout: float = 0.0, window: int | None = None,
                      rollout_targets: int = 32, stop_after: int | None = None, dream: Path | None = None,
                      dream_weight: float = 1.0, dream_per_row: int = 2,
                      provenance: bool = False, fill: bool = False,
                      noise_level: bool = False, move_outcomes: bool = False,
                      rules: dict | None = None, painted_only: bool = False,
                      deepen_by: int | None = None) -> tuple[WorldModel, dict]:
    """stage "all": every part with the full objective. stage "pose": only the camera-motion head, with
    its own loss (yaw weighted up), starting from the model folder `init` (the rest stays untouched). stage
    "colour": only the colour network, with the full objective, from `init` (the camera head stays untouched).
    With `rollout` > 0, windows of `window` frames (default: whole episodes) also train on the model's own
    rollout through its world memory (`objective.own_rollout`), `rollout_targets` steps per batch.
    With `dream` (a folder from `worldgen dream-data`), each batch row also scores `dream_per_row` stored steps
    of a model's own long rollouts, weighted `dream_weight` (`training.dream_data`); in the pose stage, the
    camera head learns the true move from the dream's own disparity at those steps (weighted as the windows, so
    a `dream_weight` other than 1 is refused there).
    With `provenance`, the model gets the input that marks memory pixels from real frames (an `init` model
    without it gets it grafted on, zero-weighted: `world_model.with_options`). With `fill`, the network
    starts from the memory drawing with its holes filled (`ModelConfig.fill`; switched on for an `init` model).
    With `noise_level`, the network is told the context's noise level (`ModelConfig.noise_level`; grafted on).
    With `deepen_by` (a width), the `init` model's U-Net gets one more level at the bottom (`world_model.deepen`).
    With `move_outcomes`, the camera head classifies a move's outcome (`ModelConfig.move_outcomes`; grafted on,
    and trained by either stage). `rules` sets the trained model's inference rules (`world_model.RULES`, e.g.
    {"show_memory": True, "palette_rows": 4}; they use no weights, apply to its own rollouts in training and are
    kept for inference; the rest stay `init`'s). With `painted_only`, the teacher-forced colour loss scores only
    the pixels a `show_memory` model paints (`objective.loss_fn`).
    The model is `init`'s, else a new one of preset `preset_name` (default small); naming both, they must agree."""
    if stage not in STAGES:
        raise DataError(f"unknown training stage {stage!r}: expected one of {', '.join(STAGES)}")
    options = {"provenance": provenance, "fill": fill, "noise_level": noise_level, "move_outcomes": move_outcomes,
               **(rules or {})}
    if stage == "pose" and dream is not None and dream_weight != 1.0:
        raise DataError("the pose stage weighs --dream steps like the recorded windows: --dream-weight is for "
                        "--stage all")
    if painted_only and stage == "pose":
        raise DataError("--painted-only weighs the colour loss, which the pose stage does not train: use --stage all")
    if stage == "colour" and move_outcomes:
        raise DataError("--move-outcomes adds a camera head part, which the colour stage does not train: use "
                        "--stage pose or all")
    if deepen_by is not None and (init is None or stage == "pose"):
        raise DataError("--deepen grows the colour network of a trained model: pass --init MODEL_DIR, with --stage "
                        "all or colour")
    if stage == "pose" and (provenance or fill or noise_level):
        raise DataError("--provenance, --fill and --noise-level change what the network sees, which the pose stage "
                        "does not train: use them with --stage all (the pose stage keeps the --init model's setting)")
    train = EpisodeDataset(data, "train")
    if init is not None:
        base = with_options(load_model(init), **options)
        base = base if deepen_by is None else deepen(base, deepen_by)
        config = base.config
        if (train.num_actions, train.has_geometry) != (config.num_actions, config.geometry):
            raise DataError(f"{data} has {train.num_actions} actions (geometry: {train.has_geometry}) but the model "
                            f"in {init} has {config.num_actions} (geometry: {config.geometry})")
        named = preset_name and preset(preset_name, num_actions=config.num_actions, geometry=config.geometry,
                                       provenance=config.provenance, fill=config.fill,
                                       noise_level=config.noise_level, move_outcomes=config.move_outcomes,
                                       **{k: getattr(config, k) for k in RULES})
        if named and named != config:
            raise DataError(f"--preset {preset_name} does not describe the model in {init}: leave --preset out "
                            f"to keep training that model as it is")
    elif stage != "all":
        raise DataError(f"the {stage} stage refines a trained model: pass --init MODEL_DIR")
    else:
        preset_name = preset_name or "small"
        config = preset(preset_name, num_actions=train.num_actions, geometry=train.has_geometry, **options)
    if painted_only and not (config.show_memory and config.geometry):
        raise DataError("--painted-only scores the pixels a model paints where memory does not know them: the model "
                        "must show its memory (--show-memory) and have geometry (depth and poses in the data)")
    if stage == "pose" and not train.has_geometry:
        raise DataError(f"{data} has no poses: the pose stage needs recorded depth and poses")
    if train.resolution != config.resolution:
        model_name = f"preset '{preset_name}'" if init is None else str(init)
        raise DataError(f"{data} is {train.resolution}x{train.resolution} but {model_name} works at "
                        f"{config.resolution}x{config.resolution}: record the data at that resolution")
    window = window or (train.steps if rollout else config.context + TEACHER_TARGETS)
    if rollout and not train.has_geometry:
        raise DataError(f"{data} has no depth/poses: training on own rollouts needs the world memory")
    if window < config.context + TEACHER_TARGETS:
        raise DataError(f"--window {window} is too short: the model needs {config.context} context frames "
                        f"and {TEACHER_TARGETS} targets")
    if train.steps < window:
        raise DataError(f"{data} episodes have {train.steps} steps; training needs windows of {window}")
    try:
        heldout = EpisodeDataset(data, "heldout")
    except DataError:
        heldout = None  # no held-out worlds: train without periodic evaluation
    dreams = DreamData(dream, config) if dream is not None else None
    model = base if init is not None else WorldModel(config, rngs=nnx.Rngs(fit_cfg.seed))
    intrinsics = jnp.asarray(train.intrinsics if train.has_geometry else intrinsics_matrix(config.resolution))

    def eval_fn(m):
        horizons = tuple(h for h in (1, 4, 8) if config.context + h <= heldout.steps)
        result, _ = evaluate(Generator(m), heldout, eval_episodes, horizons)
        return {"psnr": result["psnr"], "baseline_psnr": result["baseline_psnr"]}

    t0 = time.time()
    if stage != "pose":
        objective = partial(loss_fn, rollout_weight=rollout, rollout_targets=rollout_targets,
                            dream_weight=dream_weight, painted_only=painted_only)
        length = window
    else:
        objective, length = pose_loss_fn, 2

    def batches(step, rows):
        out = train.windows(fit_cfg.batch_size, length, fit_cfg.seed, step, rows)
        if dreams is not None:
            out.update(dreams.batch(fit_cfg.batch_size, dream_per_row, fit_cfg.seed, step, rows, stage == "pose"))
        return out

    last = fit(model, lambda m, b, k: objective(m, b, intrinsics, k), batches, fit_cfg, workdir,
               meta={"data": str(data), "preset": preset_name, "stage": stage}, resume=resume, progress=progress,
               stop_after=stop_after, trains=STAGES[stage],
               eval_fn=eval_fn if heldout is not None and eval_episodes else None)
    seeds = sorted({int(s) for s in train.seeds})
    info = {"preset": preset_name, "stage": stage, "rollout": rollout, "window": length,
            "dream": None if dreams is None else {"folder": str(dream), "weight": dream_weight,
                                                  "per_row": dream_per_row, **dreams.meta},
            "init": str(init) if init else None,
            "data": str(data), "train_seeds": f"{seeds[0]}..{seeds[-1]} ({len(seeds)} worlds)",
            "painted_only": painted_only, "deepened_by": deepen_by, "steps": fit_cfg.steps,
            "stopped_after": stop_after,
            "batch_size": fit_cfg.batch_size, "final_metrics": last,
            "wall_seconds_this_run": round(time.time() - t0, 1)}
    if init is not None:
        info["init_training"] = read_config(init)[1].get("training")
    export_model(model, out or Path(workdir) / "model", extra={"training": info})
    if jax.process_index() == 0:
        write_atomic(Path(workdir) / "train_summary.json", lambda tmp: tmp.write_text(json.dumps(info, indent=1)))
    return model, info


def export_checkpoint(workdir: Path, out: Path) -> Path:
    """Export the newest checkpoint of a training run as a model folder (e.g. to use a run before it ends)."""
    mngr = checkpoint.manager(Path(workdir) / "checkpoints")
    step = mngr.latest_step()
    if step is None:
        raise DataError(f"{workdir} has no checkpoints")
    meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    config = ModelConfig.from_dict(meta["model_config"])
    model = WorldModel(config, rngs=nnx.Rngs(0))
    # A checkpoint written before stages trained only their own parameters has every parameter's moments.
    optimizer = build_optimizer(model, FitConfig(**meta["fit_config"]), STAGES[meta.get("stage", "all")])
    graphdef, state = nnx.split((model, optimizer))
    state, _ = checkpoint.restore_latest(mngr, state, config)
    model, _ = nnx.merge(graphdef, state)
    mngr.close()
    return export_model(model, out, extra={"training": {"from_checkpoint": str(workdir), "step": step, **meta}})
