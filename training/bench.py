"""`worldgen bench train`: samples/s and achieved GFLOP/s of the world model's jitted train step."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from training.fit import FitConfig, build_optimizer, make_train_step
from training.objective import loss_fn
from training.objective import TEACHER_TARGETS as TARGETS_PER_WINDOW
from worldgen.benchmarks import matmul_peak_gflops, peak_memory_row, table
from worldgen.model.config import preset
from worldgen.model.store import load_model
from worldgen.model.world_model import WorldModel
from worldgen.camera import intrinsics_matrix


def bench_train(model: str | None = None, batch_size: int = 8, steps: int = 5) -> str:
    """Train-step speed of a model folder (or 'bundled'), else of a fresh model of the small preset."""
    if model is None:
        name, model = "preset small", WorldModel(preset("small"), rngs=nnx.Rngs(0))
    else:
        name, model = f"model {model}", load_model(model)
    config = model.config
    graphdef, state = nnx.split((model, build_optimizer(model, FitConfig())))
    res, t = config.resolution, config.context + TARGETS_PER_WINDOW
    rng = np.random.default_rng(0)
    batch = {"frames_BTHWC": rng.integers(0, 255, (batch_size, t, res, res, 3), dtype=np.uint8),
             "actions_BT": rng.integers(0, config.num_actions, (batch_size, t)).astype(np.int32),
             "depth_BTHW": rng.uniform(1, 30, (batch_size, t, res, res)).astype(np.float32),
             "poses_BT44": np.broadcast_to(np.eye(4, dtype=np.float32), (batch_size, t, 4, 4)).copy()}
    intr = jnp.asarray(intrinsics_matrix(res))
    step = make_train_step(graphdef, lambda m, b, k: loss_fn(m, b, intr, k))
    key = jax.random.key(0)
    cost = step.lower(state, batch, key).compile().cost_analysis()
    flops = (cost[0] if isinstance(cost, list) else cost).get("flops", float("nan"))
    state, metrics = step(state, batch, key)  # compile + first step
    jax.block_until_ready(metrics)
    t0 = time.perf_counter()
    for i in range(steps):
        state, metrics = step(state, batch, jax.random.fold_in(key, i))
    jax.block_until_ready(metrics)
    dt = (time.perf_counter() - t0) / steps
    samples = batch_size * TARGETS_PER_WINDOW
    peak = matmul_peak_gflops()
    return table([(f"train step, {name}", f"{dt * 1000:.0f} ms/step, batch {batch_size} windows x "
                                                          f"{TARGETS_PER_WINDOW} targets"),
                  ("samples/s", f"{samples / dt:.1f}"),
                  ("achieved GFLOP/s", f"{flops / dt / 1e9:.1f} ({flops / dt / 1e9 / peak:.0%} of the "
                                       f"{peak:.0f} GFLOP/s matmul peak)"),
                  peak_memory_row()])
