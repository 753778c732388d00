"""`worldgen bench render`: render and recording throughput, and peak memory, as a table."""
from __future__ import annotations

import resource
import tempfile
import time

import numpy as np

from worldgen.actions import Action
from worldgen.player import camera_pose, spawn, step
from worldgen.record import record
from worldgen.render import Renderer
from worldgen.world import World


def render_fps(resolution: int, frames: int = 400, seed: int = 1) -> float:
    """Frames/s rendering a walk (so chunks stream in), excluding the first warm-up frame."""
    world = World(seed)
    state = spawn(world, np.random.default_rng(0))
    poses = []
    for i in range(frames):
        state, _ = step(world, state, Action.TURN_LEFT if i % 9 == 0 else Action.FORWARD)
        poses.append(camera_pose(world, state))
    with Renderer(resolution) as r:
        r.render(world, poses[0])
        t0 = time.perf_counter()
        for pose in poses:
            r.render(world, pose)
        return frames / (time.perf_counter() - t0)


def record_fps(resolution: int = 64, worlds: int = 2, steps: int = 128) -> float:
    """Frames/s of a full recording (world generation, explorer, physics, render, shard writing)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        record(range(1000, 1000 + worlds), 2, steps, resolution, tmp, progress=False)
        return worlds * 2 * steps / (time.perf_counter() - t0)


def bench_render() -> str:
    rows = [(f"render {res}x{res}", f"{render_fps(res):.0f} frames/s") for res in (64, 128, 256)]
    rows.append(("record 64x64 (full pipeline)", f"{record_fps():.0f} frames/s"))
    rows.append(("peak memory (RSS)", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"))
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{'benchmark':<{width}}result", "-" * (width + 16)]
    lines += [f"{name:<{width}}{value}" for name, value in rows]
    return "\n".join(lines)
