"""Benchmarks that print a table: `worldgen bench render` and `worldgen bench generate`.

Other packages add benchmarks through the `worldgen.benchmarks` entry-point group (name -> function
returning the table as a string).
"""
from __future__ import annotations

import resource
import tempfile
import time
from typing import NamedTuple

import numpy as np

from worldgen.actions import Action
from worldgen.env import WorldEnv
from worldgen.record import record


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{'benchmark':<{width}}result", "-" * (width + 24)]
    return "\n".join(lines + [f"{name:<{width}}{value}" for name, value in rows])


def peak_memory_row() -> tuple[str, str]:
    return ("peak memory (RSS)", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def render_fps(resolution: int, frames: int = 400, seed: int = 1) -> float:
    """Steps/s of the engine env (physics and render) on a walk (so chunks stream in), excluding the reset."""
    with WorldEnv(resolution, task=None) as env:
        env.reset(seed=seed)
        t0 = time.perf_counter()
        for i in range(frames):
            env.step(Action.TURN_LEFT if i % 9 == 0 else Action.FORWARD)
        return frames / (time.perf_counter() - t0)


def record_fps(resolution: int = 64, worlds: int = 2, steps: int = 128) -> float:
    """Frames/s of a full recording (world generation, explorer, physics, render, shard writing)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        record(range(1000, 1000 + worlds), 2, steps, resolution, tmp, progress=False)
        return worlds * 2 * steps / (time.perf_counter() - t0)


def bench_render() -> str:
    rows = [(f"engine step {res}x{res} (physics + render)", f"{render_fps(res):.0f} frames/s")
            for res in (64, 128, 256)]
    rows.append(("record 64x64 (full pipeline)", f"{record_fps():.0f} frames/s"))
    return table(rows + [peak_memory_row()])


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """This machine's measured float32 matmul throughput through XLA."""
    import jax.numpy as jnp

    from worldgen.xla import jit
    a = jnp.ones((n, n), jnp.float32)
    f = jit(lambda x: x @ x)
    f(a).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(repeats):
        f(a).block_until_ready()
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e9


def cpu_seconds() -> float:
    """CPU seconds this process has used so far, all its threads together."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


class StepTime(NamedTuple):
    seconds: float  # wall time per step
    cpu_seconds: float  # CPU time per step, all threads of this process
    stepped: tuple  # the (state, actions, key) it stepped


def step_seconds(gen, batch: int = 1, n: int | None = None) -> StepTime:
    """Wall and CPU seconds per `Generator.step` at `batch` (compiled first), and what it stepped."""
    import jax

    c = gen.config
    state = gen.init(np.zeros((batch, c.context, c.resolution, c.resolution, 3), np.uint8),
                     np.full((batch, c.context, c.resolution, c.resolution), 5.0, np.float32),
                     np.broadcast_to(np.eye(4, dtype=np.float32), (batch, c.context, 4, 4)))
    actions, key = np.ones(batch, np.int32), jax.random.key(0)
    for _ in range(2):  # compile; the second call sees device-committed inputs
        state, out = gen.step(state, actions, key)
    jax.block_until_ready(out)
    n = n or (30 if batch == 1 else 4)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    for _ in range(n):
        state, out = gen.step(state, actions, key)
    jax.block_until_ready(out)
    return StepTime((time.perf_counter() - t0) / n, (cpu_seconds() - cpu0) / n, (state, actions, key))


def alternating_ms(gens: dict, rounds: int = 3, n: int = 30) -> dict[str, list[float]]:
    """Milliseconds per `Generator.step` at batch 1 of each named generator, measured in `rounds` alternating
    rounds of `n` steps, so that a machine whose speed drifts (by tens of percent here) drifts for all alike."""
    ms = {name: [] for name in gens}
    for _ in range(rounds):
        for name, gen in gens.items():
            ms[name].append(step_seconds(gen, 1, n).seconds * 1000)
    return ms


def bench_generate(model: str = "bundled") -> str:
    """Frames/s of the world model: interactive (batch 1) at 64 and 128 pixels, and batch 64 rollouts; another
    model than the bundled one is also timed against the bundled one at batch 1, in alternating rounds (issue 9:
    a new model is no slower than the bundled one, measured in the same run)."""
    import dataclasses

    from flax import nnx

    from worldgen.model.runner import Generator
    from worldgen.model.store import load_model
    from worldgen.model.world_model import WorldModel

    base = load_model(model)
    peak = matmul_peak_gflops()
    rows = [("float32 matmul peak (measured)", f"{peak:.0f} GFLOP/s")]
    own = Generator(base)  # one generator for every row at the model's resolution: each shape compiles once
    if model != "bundled":
        ms = alternating_ms({"this": own, "bundled": Generator(load_model("bundled"))})
        this, bundled = (float(np.median(v)) for v in ms.values())
        rows.append(("generate batch 1: this model / bundled (3 alternating rounds, median)",
                     f"{this:.1f} / {bundled:.1f} ms/step ({this / bundled:.2f}x)"))
    for res, batch in ((base.config.resolution, 1), (128, 1), (base.config.resolution, 64)):
        if res == base.config.resolution:
            gen = own
        else:  # same architecture at another resolution: speed does not depend on the weights
            gen = Generator(WorldModel(dataclasses.replace(base.config, resolution=res), rngs=nnx.Rngs(0)))
        dt, _, (state, actions, key) = step_seconds(gen, batch)
        camera = gen.camera(state, None, (batch,))  # the camera head's pose: none given
        cost = gen._step.lower(gen.param_leaves, state, actions, key, *camera).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        gflop = cost.get("flops", float("nan")) / 1e9 / batch
        label = f"generate {res}x{res}, batch {batch}"
        rows.append((label, f"{batch / dt:.1f} frames/s, {dt * 1000:.1f} ms/step, {gflop:.2f} GFLOP/frame, "
                            f"{gflop * batch / dt / peak:.0%} of peak"))
    return table(rows + [peak_memory_row()])


BENCHMARKS = {"render": bench_render, "generate": bench_generate}
