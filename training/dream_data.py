"""Dream data: the network's inputs met in the model's own long rollouts, stored beside the true frames.

Training on the model's own rollouts online (`objective.own_rollout`) re-rolls a whole window for every
step and scores a few of its steps: about 10 s a step on a 2-core CPU. Here a model is rolled out once over
every training episode of a long recording (true actions and camera poses, frames sampled and written
through the world memory as at inference), and every step's network input is kept with its true frame.
Training then scores stored steps as cheaply as teacher-forced ones (`worldgen train --dream DIR`); collect
again with the newer model for another round (DAgger-style).

Dimension keys: N stored steps, B batch, R dream steps per batch row, T time, H, W, C.

A dream-data folder (written whole or not at all; meta.json is written last):
  cond_rgb.npy  uint8   (N,H,W,9)  memory drawing RGB (premultiplied by coverage), last RGB, previous RGB
  cond_geo.npy  float16 (N,H,W,G)  memory disparity, memory coverage, last disparity (G = 3), and for
                                   provenance models which memory pixels are real (G = 4)
  action.npy    int32   (N,)       the action of the step
  target.npy    uint8   (N,H,W,3)  the true frame
  target_disp.npy float16 (N,H,W)  the true disparity
  shown.npy     bool    (N,H,W)    the pixels the frame showed from memory, not from the network (all False
                                   unless the model has ModelConfig.show_memory); training does not score them
  last_pose.npy float32 (N,4,4)    the true camera pose before the step, and
  pose.npy      float32 (N,4,4)    after it: with the dream's own last disparity (cond_geo) they train the
                                   camera head where the dream's disparity, not the truth's, is what it reads
  meta.json     {"format": FORMAT, "model_config", "model", "data", "episodes", "steps", "seed"}
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from training.objective import DREAM_CAMERA_KEYS, DREAM_KEYS, rollout_conds
from worldgen.dataset import EpisodeDataset, ensure_writable_dir
from worldgen.errors import DataError
from worldgen.files import write_atomic
from worldgen.model.config import ModelConfig
from worldgen.model.geometry import depth_to_disparity
from worldgen.model.world_model import WorldModel, cond_channels
from worldgen.xla import jit

FORMAT = "worldgen-dream-data-3"
RGB_CHANNELS = (0, 1, 2, 5, 6, 7, 8, 9, 10)  # of the conditioning channels (world_model.conditioning)
GEO_CHANNELS = (3, 4, 11, 12)  # the rest; channel 12 only with ModelConfig.provenance


def _arrays(config: ModelConfig) -> dict:
    """name -> (dtype, shape of one stored step)."""
    r = config.resolution
    return {"cond_rgb": (np.uint8, (r, r, 9)), "cond_geo": (np.float16, (r, r, cond_channels(config) - 9)),
            "action": (np.int32, ()), "target": (np.uint8, (r, r, 3)), "target_disp": (np.float16, (r, r)),
            "shown": (np.bool_, (r, r)), "last_pose": (np.float32, (4, 4)), "pose": (np.float32, (4, 4))}


def _uint8(signed):
    return np.clip(np.round((np.asarray(signed) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def collect(model: WorldModel, data: EpisodeDataset, out: Path, *, batch: int = 16, episodes: int | None = None,
            seed: int = 0, model_name: str = "", progress: bool = True) -> dict:
    """Roll `model` out over (the first `episodes` of) `data` and write a dream-data folder to `out`."""
    config = model.config
    if not config.geometry or not data.has_geometry:
        raise DataError("dream data needs a geometry model and recorded depth and poses")
    if data.resolution != config.resolution:
        raise DataError(f"{data.folder} is {data.resolution}x{data.resolution} but the model works at "
                        f"{config.resolution}x{config.resolution}")
    if data.steps <= config.context:
        raise DataError(f"{data.folder} episodes have {data.steps} steps: no step follows the model's "
                        f"{config.context} context frames")
    out = ensure_writable_dir(out)
    if (out / "meta.json").exists():
        raise DataError(f"{out} already holds dream data: choose a new folder")
    n_ep = len(data) if episodes is None else min(episodes, len(data))
    if n_ep < 1:
        raise DataError("--episodes must be at least 1")
    k, t, res = config.context, data.steps, config.resolution
    n = n_ep * (t - k)
    layout, geo = _arrays(config), list(GEO_CHANNELS[:cond_channels(config) - 9])
    tmp = {name: out / f"{name}.npy.partial" for name in layout}
    arrays = {name: np.lib.format.open_memmap(tmp[name], "w+", dtype, (n,) + shape)
              for name, (dtype, shape) in layout.items()}
    graphdef, params = nnx.split(model)
    intrinsics = jnp.asarray(data.intrinsics)
    roll = jit(lambda p, f, d, q, a, key: rollout_conds(nnx.merge(graphdef, p), f, d, q, a, intrinsics, key))
    key = jax.random.key(seed)
    for start in tqdm(range(0, n_ep, batch), desc="dreaming", unit="batch", disable=not progress):
        ids = np.arange(start, start + batch) % n_ep  # the last batch is padded (one compilation)
        eps = [data.episode(int(i)) for i in ids]
        stack = lambda name: np.stack([e[name] for e in eps])
        frames, depth, poses, actions = (stack("frames"), stack("depth").astype(np.float32), stack("poses"),
                                         stack("actions"))
        conds, shown = map(np.asarray, roll(params, frames, depth, poses, actions, jax.random.fold_in(key, start)))
        keep = min(batch, n_ep - start)
        episode_major = lambda x: np.moveaxis(x, 0, 1)[:keep].reshape((-1,) + x.shape[2:])
        conds = episode_major(conds)
        rows = slice(start * (t - k), (start + keep) * (t - k))
        arrays["cond_rgb"][rows] = _uint8(conds[..., RGB_CHANNELS])
        arrays["cond_geo"][rows] = conds[..., geo].astype(np.float16)
        arrays["action"][rows] = actions[:keep, k:].reshape(-1)
        arrays["target"][rows] = frames[:keep, k:].reshape((-1, res, res, 3))
        disp = np.asarray(depth_to_disparity(jnp.asarray(depth[:keep, k:])))
        arrays["target_disp"][rows] = disp.reshape((-1, res, res)).astype(np.float16)
        arrays["shown"][rows] = episode_major(shown)
        arrays["last_pose"][rows] = poses[:keep, k - 1:-1].reshape(-1, 4, 4)
        arrays["pose"][rows] = poses[:keep, k:].reshape(-1, 4, 4)
    for name, arr in arrays.items():
        arr.flush()
        del arr
        tmp[name].replace(out / f"{name}.npy")
    meta = {"format": FORMAT, "model_config": config.to_dict(), "model": model_name, "data": str(data.folder),
            "episodes": n_ep, "steps": n, "seed": seed}
    write_atomic(out / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=1)))
    return meta


class DreamData:
    """A dream-data folder, checked against the model that trains on it; `batch` serves random stored steps."""

    def __init__(self, folder: Path, config: ModelConfig):
        folder = Path(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except FileNotFoundError:
            raise DataError(f"{folder} holds no dream data (no meta.json; `worldgen dream-data` writes it)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{folder / 'meta.json'} is not valid JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise DataError(f"{folder} is not dream data of format {FORMAT}"
                            + (f" (it is {found!r}: collect it again with `worldgen dream-data`)" if found else ""))
        stored = meta.get("model_config")
        if isinstance(stored, dict) and bool(stored.get("fill", False)) != config.fill:
            raise DataError(f"{folder} holds the inputs of a model with fill={bool(stored.get('fill'))}, but this "
                            f"model has fill={config.fill}: collect dream data with a model like it")
        res = config.resolution
        self.arrays = {}
        for name, (dtype, shape) in _arrays(config).items():
            try:
                arr = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise DataError(f"{folder / (name + '.npy')}: cannot read it ({e})") from None
            want = (meta.get("steps"),) + shape
            if arr.dtype != dtype or arr.shape != want:
                raise DataError(f"{folder / (name + '.npy')} is {arr.dtype} {arr.shape}, expected "
                                f"{np.dtype(dtype)} {want} for a {res}x{res} model")
            self.arrays[name] = arr
        bad = self.arrays["action"]
        if len(bad) and (bad.min() < 0 or bad.max() >= config.num_actions):
            raise DataError(f"{folder} has actions outside 0..{config.num_actions - 1} of this model")
        self.meta = meta

    def __len__(self) -> int:
        return len(self.arrays["action"])

    def _read(self, name: str, idx: np.ndarray) -> np.ndarray:
        """Stored `name` at steps `idx` (an int array of any shape): sorted reads from the memory map, then
        back in the asked order."""
        order = np.argsort(np.argsort(idx.reshape(-1), kind="stable"), kind="stable")
        got = self.arrays[name][np.sort(idx.reshape(-1))][order]
        return got.reshape(idx.shape + got.shape[1:])

    def steps(self, idx) -> dict:
        """Stored steps `idx` (an int array of any shape) as the arrays named in objective.DREAM_KEYS."""
        idx = np.asarray(idx)
        get = lambda name: self._read(name, idx)
        rgb, geo = get("cond_rgb").astype(np.float32) / 127.5 - 1.0, get("cond_geo").astype(np.float32)
        cond = np.concatenate([rgb[..., :3], geo[..., :2], rgb[..., 3:], geo[..., 2:]], axis=-1)  # channel order
        return dict(zip(DREAM_KEYS, (cond, get("action"), get("target"), get("target_disp").astype(np.float32),
                                     get("shown"))))

    def camera_steps(self, idx) -> dict:
        """Stored steps `idx` as the camera head's inputs and target (objective.DREAM_CAMERA_KEYS): the dream's
        own last disparity, the action, and the true poses before and after the step."""
        idx = np.asarray(idx)
        last_disp = self._read("cond_geo", idx)[..., GEO_CHANNELS.index(11)].astype(np.float32)
        return dict(zip(DREAM_CAMERA_KEYS, (last_disp, *(self._read(name, idx) for name in ("action", "last_pose",
                                                                                             "pose")))))

    def batch(self, batch: int, per_row: int, seed: int, step: int, rows: slice = slice(None),
              camera: bool = False) -> dict:
        """Batch number `step` of random stored steps (a pure function of (seed, step)), `per_row` per row.
        With `rows`, only those rows of the global batch; with `camera`, only what the camera head reads."""
        idx = np.random.default_rng([seed, step, 1]).integers(0, len(self), size=(batch, per_row))[rows]
        return self.camera_steps(idx) if camera else self.steps(idx)
