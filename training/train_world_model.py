"""`worldgen train`: build data, model and objective, then call the shared `fit` loop."""
from __future__ import annotations

import json
import time
from pathlib import Path

import jax.numpy as jnp
from flax import nnx

from training.evaluate import evaluate
from training.fit import FitConfig, fit
from training.objective import loss_fn
from worldgen.dataset import EpisodeDataset
from worldgen.errors import DataError
from worldgen.model.config import preset
from worldgen.model.runner import Generator
from worldgen.model.store import export_model
from worldgen.model.world_model import WorldModel
from worldgen.render import intrinsics_matrix

TARGETS_PER_WINDOW = 4


def train_world_model(data: Path, workdir: Path, preset_name: str = "small", fit_cfg: FitConfig = FitConfig(),
                      resume: bool = False, out: Path | None = None, eval_episodes: int = 8,
                      progress: bool = True) -> tuple[WorldModel, dict]:
    train = EpisodeDataset(data, "train")
    config = preset(preset_name, num_actions=train.num_actions, geometry=train.has_geometry)
    if train.resolution != config.resolution:
        raise DataError(f"{data} is {train.resolution}x{train.resolution} but preset '{preset_name}' works at "
                        f"{config.resolution}x{config.resolution}: record the data at that resolution")
    window = config.context + TARGETS_PER_WINDOW
    if train.steps < window:
        raise DataError(f"{data} episodes have {train.steps} steps; training needs windows of {window}")
    try:
        heldout = EpisodeDataset(data, "heldout")
    except DataError:
        heldout = None  # no held-out worlds: train without periodic evaluation
    model = WorldModel(config, rngs=nnx.Rngs(fit_cfg.seed))
    intrinsics = jnp.asarray(train.intrinsics if train.has_geometry else intrinsics_matrix(config.resolution))

    def eval_fn(m):
        horizons = tuple(h for h in (1, 4, 8) if config.context + h <= heldout.steps)
        result, _ = evaluate(Generator(m), heldout, eval_episodes, horizons)
        return {"psnr": result["psnr"], "baseline_psnr": result["baseline_psnr"]}

    t0 = time.time()
    last = fit(model, lambda m, b, k: loss_fn(m, b, intrinsics, k),
               lambda step: train.windows(fit_cfg.batch_size, window, fit_cfg.seed, step), fit_cfg, workdir,
               meta={"data": str(data), "preset": preset_name}, resume=resume, progress=progress,
               eval_fn=eval_fn if heldout is not None and eval_episodes else None)
    seeds = sorted({int(s) for s in train.seeds})
    info = {"preset": preset_name, "data": str(data), "train_seeds": f"{seeds[0]}..{seeds[-1]} ({len(seeds)} worlds)",
            "steps": fit_cfg.steps, "batch_size": fit_cfg.batch_size, "final_metrics": last,
            "wall_seconds_this_run": round(time.time() - t0, 1)}
    export_model(model, out or Path(workdir) / "model", extra={"training": info})
    (Path(workdir) / "train_summary.json").write_text(json.dumps(info, indent=1))
    return model, info
