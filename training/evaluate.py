"""`worldgen eval`: honest autoregressive evaluation on held-out worlds.

Dimension keys: B episodes, T steps, H, W, C.

The model gets `context` real frames (with their depth and poses when it uses geometry) and the true
actions, and rolls out to step 32 on its own predictions. Metrics at horizons 1, 4, 8, 16, 32 are
pooled over all episodes; the baseline repeats the last real frame. See README "Evaluation".
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from training import metrics as M
from worldgen.actions import INVERSE, Action
from worldgen.dataset import EpisodeDataset
from worldgen.errors import DataError, WorldgenError
from worldgen.model.runner import Generator
from worldgen.files import write_atomic

HORIZONS = (1, 4, 8, 16, 32)
LOOP_OUT = (Action.FORWARD, Action.FORWARD, Action.TURN_LEFT, Action.TURN_LEFT,
            Action.FORWARD, Action.FORWARD, Action.TURN_RIGHT, Action.TURN_RIGHT)
LOOP = LOOP_OUT + tuple(INVERSE[a] for a in reversed(LOOP_OUT))


def check_compatible(gen: Generator, data: EpisodeDataset, horizon: int) -> None:
    cfg = gen.config
    if data.resolution != cfg.resolution:
        raise DataError(f"{data.folder} is {data.resolution}x{data.resolution} but the model works at "
                        f"{cfg.resolution}x{cfg.resolution}")
    if data.num_actions != cfg.num_actions:
        raise DataError(f"{data.folder} has {data.num_actions} actions ({', '.join(data.action_names)}) but the "
                        f"model was trained on {cfg.num_actions}")
    if cfg.geometry and not data.has_geometry:
        raise DataError(f"{data.folder} has no depth/poses, but the model uses geometry")
    if data.steps < cfg.context + horizon:
        raise DataError(f"{data.folder} episodes have {data.steps} steps; evaluation needs context "
                        f"{cfg.context} + horizon {horizon}")


def _start(gen: Generator, data: EpisodeDataset, eps: np.ndarray):
    k = gen.config.context
    a = data.arrays
    if gen.config.geometry:
        return gen.init(a["frames"][eps, :k], a["depth"][eps, :k], a["poses"][eps, :k], data.intrinsics)
    return gen.init(a["frames"][eps, :k])


def evaluate(gen: Generator, data: EpisodeDataset, n_episodes: int = 32, horizons=HORIZONS, seed: int = 0,
             model_name: str = "model") -> tuple[dict, dict]:
    """(metrics dict as written to metrics.json, arrays for plots and video)."""
    horizon = max(horizons)
    check_compatible(gen, data, horizon)
    k = gen.config.context
    eps = np.arange(min(n_episodes, len(data)))
    truth = data.arrays["frames"][eps, k:k + horizon]
    actions = data.arrays["actions"][eps, k:k + horizon]
    key = jax.random.key(seed)
    _, out = gen.rollout(_start(gen, data, eps), actions, key)
    pred = np.asarray(out["rgb"])
    last_real = data.arrays["frames"][eps, k - 1]
    rng = np.random.default_rng(seed)
    random_actions = rng.integers(0, gen.config.num_actions, size=actions.shape)
    _, out_rand = gen.rollout(_start(gen, data, eps), random_actions, key)
    pred_rand = np.asarray(out_rand["rgb"])
    loop = np.broadcast_to(np.array(LOOP, np.int32), (len(eps), len(LOOP)))
    _, out_loop = gen.rollout(_start(gen, data, eps), loop, key)
    result = {"horizons": list(horizons), "psnr": {}, "ssim": {}, "baseline_psnr": {}, "baseline_ssim": {},
              "sharpness_ratio": {}, "depth_absrel": {}}
    for h in horizons:
        p, t = pred[:, h - 1], truth[:, h - 1]
        result["psnr"][str(h)] = M.pooled_psnr(p, t)
        result["ssim"][str(h)] = M.ssim(p, t)
        result["baseline_psnr"][str(h)] = M.pooled_psnr(last_real, t)
        result["baseline_ssim"][str(h)] = M.ssim(last_real, t)
        result["sharpness_ratio"][str(h)] = M.sharpness_ratio(p, t)
        result["depth_absrel"][str(h)] = (M.depth_absrel(np.asarray(out["depth"])[:, h - 1],
                                                         data.arrays["depth"][eps, k + h - 1].astype(np.float32))
                                          if gen.config.geometry else None)
    result["delta_psnr"] = {str(h): result["psnr"][str(h)] - M.pooled_psnr(pred_rand[:, h - 1], truth[:, h - 1])
                            for h in (8, 16) if h <= horizon}
    result["loop_psnr"] = M.pooled_psnr(np.asarray(out_loop["rgb"])[:, -1], last_real)
    result["loop_actions"] = [Action(a).name.lower() for a in LOOP]
    result["n_episodes"] = int(len(eps))
    result["context_frames"] = int(k)
    result["model"] = model_name
    result["model_config"] = gen.config.to_dict()
    return result, {"truth": truth, "pred": pred}


def summary_table(result: dict) -> str:
    lines = [f"{'horizon':>8}{'PSNR':>8}{'copy-last':>11}{'SSIM':>7}{'sharp':>7}{'AbsRel':>8}"]
    for h in map(str, result["horizons"]):
        d = result["depth_absrel"][h]
        lines.append(f"{h:>8}{result['psnr'][h]:>8.2f}{result['baseline_psnr'][h]:>11.2f}{result['ssim'][h]:>7.3f}"
                     f"{result['sharpness_ratio'][h]:>7.2f}{'' if d is None else f'{d:>8.3f}'}")
    gain = np.mean([result["psnr"][h] - result["baseline_psnr"][h] for h in ("1", "4", "8", "16")
                    if h in result["psnr"]])
    lines.append(f"mean PSNR gain over copy-last at 1/4/8/16: {gain:+.2f} dB; delta_psnr: "
                 + ", ".join(f"{h}: {v:+.2f}" for h, v in result["delta_psnr"].items())
                 + f"; loop_psnr: {M.psnr_text(result['loop_psnr'])} over {len(result['loop_actions'])} actions")
    return "\n".join(lines)


def write_report(result: dict, arrays: dict, out: Path) -> list[Path]:
    """metrics.json, one PNG plot per metric against horizon, and a GIF/MP4 of truth | model | error."""
    import imageio.v3 as iio
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorldgenError(f"cannot create output folder {out}: {e.strerror}") from None
    paths = [out / "metrics.json"]
    write_atomic(paths[0], lambda tmp: tmp.write_text(json.dumps(result, indent=1)))
    hs = result["horizons"]
    for name, base in (("psnr", "baseline_psnr"), ("ssim", "baseline_ssim"), ("sharpness_ratio", None),
                       ("depth_absrel", None)):
        values = [result[name][str(h)] for h in hs]
        if any(v is None for v in values):
            continue
        fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
        ax.plot(hs, values, "o-", label=result["model"])
        if base:
            ax.plot(hs, [result[base][str(h)] for h in hs], "s--", label="copy last real frame")
        ax.set_xscale("log", base=2)
        ax.set_xticks(hs, [str(h) for h in hs])
        ax.set_xlabel("steps after the last real frame")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        paths.append(out / f"{name}.png")
        write_atomic(paths[-1], lambda tmp: fig.savefig(tmp, format="png"))
        plt.close(fig)
    truth, pred = arrays["truth"][:4], arrays["pred"][:4]
    err = np.abs(truth.astype(np.int16) - pred.astype(np.int16)).astype(np.uint8)
    rows = np.concatenate([truth, pred, err], axis=3)  # (B, T, H, 3W, C)
    video = np.concatenate(list(rows), axis=1).repeat(2, axis=1).repeat(2, axis=2)
    write_atomic(out / "rollout.gif", lambda tmp: iio.imwrite(tmp, video, extension=".gif", duration=150, loop=0))
    paths.append(out / "rollout.gif")
    try:
        mp4 = lambda tmp: iio.imwrite(tmp, video, extension=".mp4", fps=6, codec="libx264", macro_block_size=1)
        write_atomic(out / "rollout.mp4", mp4)
        paths.append(out / "rollout.mp4")
    except Exception as e:  # no ffmpeg plugin: the GIF is still there
        print(f"note: MP4 not written ({type(e).__name__}: {e})")
    return paths
