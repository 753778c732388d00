"""`fit`: the one training loop every model uses.

AdamW with warm-up + cosine decay + global-norm clipping; a jitted, donated step over the state of
(model, optimizer) on a ("data",) mesh of every device; metrics fetched one step late into a JSONL file
with a progress bar; periodic evaluation; orbax checkpoints holding model, optimizer, step and data
position; an exact `resume`; and a stop on NaN that names the step.

Multi-host: call `jax.distributed.initialize()` first (`worldgen train --distributed`); the mesh then
spans every device of every process, and each process loads only the rows of the global batch that its
own devices hold (`batches(step, rows)`), so no two processes read the same windows.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import jax
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm import tqdm

from training import checkpoint
from worldgen.errors import WorldgenError
from worldgen.files import write_atomic
from worldgen.xla import jit


class TrainingDiverged(RuntimeError):
    pass


@dataclass(frozen=True)
class FitConfig:
    steps: int = 1000
    batch_size: int = 8
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    clip_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    eval_every: int = 0  # 0: only at the end
    keep_checkpoints: int = 2

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise WorldgenError(f"FitConfig.{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.learning_rate < 1:
            raise WorldgenError(f"FitConfig.learning_rate = {self.learning_rate}: expected 0 < lr < 1")
        if self.warmup_steps < 0 or self.eval_every < 0:
            raise WorldgenError("FitConfig.warmup_steps and eval_every must be >= 0")


def build_optimizer(model: nnx.Module, cfg: FitConfig, trains=nnx.Param) -> nnx.Optimizer:
    """AdamW over the parameters the nnx filter `trains` selects (every parameter by default); the others stay
    exactly as they are, weight decay included."""
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.learning_rate, max(cfg.warmup_steps, 1),
                                                  max(cfg.steps, cfg.warmup_steps + 1), cfg.learning_rate * 0.05)
    tx = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), optax.adamw(schedule, weight_decay=cfg.weight_decay))
    return nnx.Optimizer(model, tx, wrt=trains)


def build_mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("data",))


def process_rows(sharding: NamedSharding, batch_size: int) -> slice:
    """The rows of a global batch that this process's devices hold (all of them on one process)."""
    spans = [idx[0] for idx in sharding.addressable_devices_indices_map((batch_size,)).values()]
    return slice(min(s.start or 0 for s in spans), max(batch_size if s.stop is None else s.stop for s in spans))


def shard_batch(local: dict, sharding: NamedSharding, batch_size: int) -> dict:
    """Global arrays of `batch_size` rows from this process's rows of them (see process_rows)."""
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v), (batch_size,) + np.shape(v)[1:])
            for k, v in local.items()}


def make_train_step(graphdef, loss_fn, trains=nnx.Param):
    def train_step(state, batch, key):
        model, optimizer = nnx.merge(graphdef, state)
        grad_fn = nnx.value_and_grad(lambda m: loss_fn(m, batch, key), argnums=nnx.DiffState(0, trains), has_aux=True)
        (_, metrics), grads = grad_fn(model)
        metrics["grad_norm"] = optax.tree.norm(grads)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), metrics

    return jit(train_step, donate_argnums=0)


def trim_log(path: Path, start: int) -> None:
    """Keep only the records of steps before `start` (where training resumes), so each step is logged once
    even when a run was killed after logging steps its last checkpoint does not hold."""
    if not path.exists():
        return

    def before(line: str) -> bool:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a kill
            return False
        return record["step"] <= start if "eval" in record else record["step"] < start

    keep = [line for line in path.read_text().splitlines() if line.strip() and before(line)]
    write_atomic(path, lambda tmp: tmp.write_text("".join(line + "\n" for line in keep)))


def fit(model: nnx.Module, loss_fn: Callable, batches: Callable[[int], dict], cfg: FitConfig, workdir: Path,
        *, meta: dict | None = None, eval_fn: Callable | None = None, resume: bool = False,
        progress: bool = True, stop_after: int | None = None, trains=nnx.Param) -> dict:
    """Train `model` in place for cfg.steps steps: the parameters the nnx filter `trains` selects (all by
    default). `batches(step, rows)` returns rows `rows` (a slice) of the global batch for a step (a pure
    function of the step, so the data position is just the step).
    Returns the last metrics.
    With `stop_after`, stop (with a checkpoint) once that many steps of the cfg.steps schedule are done;
    `resume` continues the same schedule later."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = build_mesh()
    if cfg.batch_size % mesh.size:
        raise WorldgenError(f"batch size {cfg.batch_size} must be divisible by the {mesh.size} devices")
    optimizer = build_optimizer(model, cfg, trains)
    graphdef, state = nnx.split((model, optimizer))
    # A copy: the step donates its input, and the caller's model must survive a crash.
    state = jax.device_put(state, NamedSharding(mesh, P()), may_alias=False)
    data_sharding = NamedSharding(mesh, P("data"))
    rows = process_rows(data_sharding, cfg.batch_size)
    mngr = checkpoint.manager(workdir / "checkpoints", cfg.keep_checkpoints)
    start = 0
    if resume:
        restored = checkpoint.restore_latest(mngr, state, model.config, (meta or {}).get("stage"))
        if restored is not None:
            state, saved = restored
            state = jax.device_put(state, NamedSharding(mesh, P()))
            start = int(saved["data_step"])
    elif mngr.latest_step() is not None:
        raise WorldgenError(f"{workdir} already has checkpoints: pass --resume to continue, or use a new folder")
    meta = dict(meta or {}, model_config=model.config.to_dict(), fit_config=asdict(cfg))
    step_fn = make_train_step(graphdef, loss_fn, trains)
    base_key = jax.random.key(cfg.seed)
    if jax.process_index() == 0:
        trim_log(workdir / "metrics.jsonl", start)
    log = open(workdir / "metrics.jsonl", "a") if jax.process_index() == 0 else open(os.devnull, "w")
    pending, last = None, {}

    def flush(item):
        step, metrics, t = item
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if not all(math.isfinite(v) for v in values.values()):
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            raise TrainingDiverged(f"training diverged at step {step}: {', '.join(bad)} became NaN/inf "
                                   f"(last checkpoint: step {mngr.latest_step()}, in {workdir / 'checkpoints'})")
        log.write(json.dumps({"step": step, "time": t, **values}) + "\n")
        log.flush()
        return values

    end = cfg.steps if stop_after is None else min(stop_after, cfg.steps)
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, desc="training", disable=not progress)
    try:
        for step in bar:
            batch = shard_batch(batches(step, rows), data_sharding, cfg.batch_size)
            state, metrics = step_fn(state, batch, jax.random.fold_in(base_key, step))
            if pending is not None:
                last = flush(pending)
                bar.set_postfix({k: f"{last[k]:.4g}" for k in ("loss", "psnr") if k in last},
                                refresh=False)  # drawn at tqdm's own pace, not once a step
            pending = (step, metrics, time.time())
            done = step + 1
            if done % cfg.checkpoint_every == 0 or done == end:
                last = flush(pending)
                pending = None
                checkpoint.save(mngr, done, state, dict(meta, step=done, data_step=done))
            if eval_fn is not None and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.steps):
                model_now, _ = nnx.merge(graphdef, state)
                scores = eval_fn(model_now)
                log.write(json.dumps({"step": done, "eval": scores}) + "\n")
                log.flush()
        if pending is not None:
            last = flush(pending)
    finally:
        bar.close()
        log.close()
        mngr.close()
    trained, _ = nnx.merge(graphdef, state)
    nnx.update(model, nnx.state(trained))
    return last
