"""A short explorer walk saved as an animated GIF (RGB | depth): the quickest look at a world."""
from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from worldgen.errors import WorldgenError
from worldgen.preview import depth_to_rgb
from worldgen.record import record_episode
from worldgen.render import Renderer
from worldgen.spec import WorldSpec
from worldgen.world import World


def run_demo(seed: int, spec: WorldSpec, steps: int, out: Path, resolution: int = 128) -> Path:
    out = Path(out)
    if not out.parent.is_dir():
        raise WorldgenError(f"cannot write {out}: folder {out.parent} does not exist")
    with Renderer(resolution) as r:
        frames, depth, *_ = record_episode(World(seed, spec), r, np.random.default_rng([seed, 0, 7]), steps)
    tiles = np.concatenate([frames, np.stack([depth_to_rgb(d.astype(np.float32)) for d in depth])], axis=2)
    iio.imwrite(out, tiles, duration=80, loop=0)
    return out
