"""A short explorer walk saved as an animated GIF (RGB | depth): the quickest look at a world."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from worldgen.errors import WorldgenError
from worldgen.files import output_file, write_atomic
from worldgen.env import WorldEnv
from worldgen.preview import depth_to_rgb
from worldgen.record import record_episode
from worldgen.spec import WorldSpec


def run_demo(seed: int, spec: WorldSpec, steps: int, out: Path, resolution: int = 128) -> Path:
    if not 1 <= steps <= 10_000:
        raise WorldgenError(f"demo steps = {steps}: expected 1..10000")
    out = output_file(out)
    with WorldEnv(resolution, task=None, spec=spec) as env:
        frames, depth, *_ = record_episode(env, seed, 0, steps)
    tiles = np.concatenate([frames, np.stack([depth_to_rgb(d.astype(np.float32)) for d in depth])], axis=2)
    return write_atomic(out, lambda tmp: iio.imwrite(tmp, tiles, extension=".gif", duration=80, loop=0))
