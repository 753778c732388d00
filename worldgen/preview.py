"""Pictures of worlds for people: one view with its depth, and contact sheets of many seeds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from worldgen.env import WorldEnv
from worldgen.files import write_atomic
from worldgen.spec import WorldSpec


def depth_to_rgb(depth_HW: np.ndarray, far: float = 60.0) -> np.ndarray:
    """Near = bright, far = dark, sky = black."""
    d = np.clip(depth_HW / far, 0, 1)
    v = np.where(depth_HW > 0, 1 - d, 0) * 255
    return np.repeat(v[..., None], 3, axis=2).astype(np.uint8)


def save_png(image: np.ndarray, path: Path) -> Path:
    return write_atomic(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))


def view_image(seed: int, spec: WorldSpec, resolution: int) -> np.ndarray:
    """RGB and depth of the spawn view side by side."""
    with WorldEnv(resolution, task=None, spec=spec) as env:
        obs, _ = env.reset(seed=seed)  # the spawn of the world's first recorded episode
    return np.concatenate([obs["rgb"], depth_to_rgb(obs["depth"])], axis=1)


def contact_sheet(seeds, spec: WorldSpec, resolution: int = 64, columns: int = 4, scale: int = 2) -> np.ndarray:
    """A grid of spawn views, one per seed, each labelled with its seed, upscaled `scale` times."""
    seeds = list(seeds)
    tile = resolution * scale
    rows = -(-len(seeds) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + 14)), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    with WorldEnv(resolution, task=None, spec=spec) as env:
        for i, seed in enumerate(seeds):
            img = Image.fromarray(env.reset(seed=seed)[0]["rgb"]).resize((tile, tile), Image.NEAREST)
            x, y = (i % columns) * tile, (i // columns) * (tile + 14)
            sheet.paste(img, (x, y))
            draw.text((x + 3, y + tile + 1), f"seed {seed}", fill=(230, 230, 230))
    return np.asarray(sheet)
