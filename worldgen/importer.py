"""`worldgen import`: bring your own game. A folder of frames plus an actions file become a dataset.

Input:
  frames folder  image files (PNG, JPEG, BMP, WebP, GIF first frame), all of one size, taken in
                 file-name order (use zero-padded numbers: 000001.png, 000002.png, ...);
  actions file   one integer action per frame, either one per line (blank lines and '#' comments
                 ignored) or a JSON list. Action i is the action that produced frame i; use 0 for the first.
Frames are centre-cropped to a square and resized to --resolution. The frame stream is cut into
episodes of --steps frames (a trailing remainder shorter than that is dropped, and reported). Each
episode gets a pseudo world seed equal to its index, which drives the train/held-out split.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from worldgen.actions import MAX_ACTIONS
from worldgen.dataset import ensure_writable_dir, write_shard
from worldgen.errors import DataError, WorldgenError
from worldgen.render import check_resolution

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")
EPISODES_PER_SHARD = 16


def read_actions(path: Path) -> np.ndarray:
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read actions file {path}: {e}") from None
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: invalid JSON list of actions ({e})") from None
    else:
        values = []
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                values.append(int(line))
            except ValueError:
                raise DataError(f"{path}, line {lineno}: expected one integer action, got {line!r}") from None
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise DataError(f"{path}: every action must be an integer")
    bad = next((v for v in values if not 0 <= v < MAX_ACTIONS), None)
    if bad is not None:
        raise DataError(f"{path}: action {bad} is outside 0..{MAX_ACTIONS - 1}")
    return np.asarray(values, dtype=np.int64)


def _load_frame(path: Path, resolution: int, expected_size: tuple[int, int] | None):
    try:
        with Image.open(path) as im:
            im.seek(0)
            size = im.size
            if expected_size is not None and size != expected_size:
                raise DataError(f"{path}: frame is {size[0]}x{size[1]} but earlier frames are "
                                f"{expected_size[0]}x{expected_size[1]}; all frames must have one size")
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from None
    w, h = size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(rgb.crop(box).resize((resolution, resolution), Image.BILINEAR), dtype=np.uint8), size


def import_frames(frames_dir: Path, actions_file: Path, out: Path, resolution: int = 64, steps: int = 32,
                  action_names: list[str] | None = None) -> dict:
    """Convert frames + actions into shards in `out`. Returns a summary dict."""
    resolution = check_resolution(resolution)
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise DataError(f"frames folder {frames_dir} does not exist")
    paths = sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{frames_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    actions = read_actions(actions_file)
    if len(actions) != len(paths):
        raise DataError(f"{actions_file} has {len(actions)} actions but {frames_dir} has {len(paths)} frames; "
                        "expected one action per frame")
    num_actions = len(action_names) if action_names else int(actions.max()) + 1
    names = list(action_names) if action_names else [f"action_{i}" for i in range(num_actions)]
    if actions.max() >= num_actions:
        raise DataError(f"{actions_file}: action {int(actions.max())} but only {num_actions} action names given")
    if steps < 2:
        raise WorldgenError(f"steps per episode must be at least 2, got {steps}")
    n_episodes = len(paths) // steps
    if n_episodes == 0:
        raise DataError(f"{frames_dir} has {len(paths)} frames, fewer than one episode of {steps} steps")
    out = ensure_writable_dir(Path(out))
    if list(out.glob("shard-*.npz")):
        raise WorldgenError(f"{out} already holds shards; import into an empty folder")
    frames, size = [], None
    for p in paths[: n_episodes * steps]:
        frame, size = _load_frame(p, resolution, size)
        frames.append(frame)
    frames_ETHWC = np.stack(frames).reshape(n_episodes, steps, resolution, resolution, 3)
    actions_ET = actions[: n_episodes * steps].reshape(n_episodes, steps).astype(np.int32)
    actions_ET[:, 0] = 0
    meta = {"source": "import", "num_actions": num_actions, "action_names": names, "spec": None,
            "resolution": resolution, "steps": steps}
    written = []
    for first in range(0, n_episodes, EPISODES_PER_SHARD):
        sl = slice(first, min(first + EPISODES_PER_SHARD, n_episodes))
        ids = np.arange(sl.start, sl.stop, dtype=np.int64)
        written.append(write_shard(out / f"shard-import{first:06d}.npz", meta, {
            "frames": frames_ETHWC[sl], "actions": actions_ET[sl], "seeds": ids, "episode_ids": ids}))
    return {"episodes": n_episodes, "dropped_frames": len(paths) - n_episodes * steps, "shards": written,
            "num_actions": num_actions}
