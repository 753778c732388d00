"""What a long walk reports: the table `worldgen eval` and `python bench/long_walk.py` print, the comparison of
two dreams on the same walks, and the files written beside them (long_walk.json, long_walk.png, filmstrip.png).
The figures come from `training.long_walk`.

Dimension keys: B walks, T steps, H, W, C.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training import metrics as M
from training.long_walk import FROZEN_STEPS, STRIP_STEPS, jackknife_se, pooled_figures, spans
from worldgen.errors import WorldgenError
from worldgen.files import write_atomic
from worldgen.model.world_model import SOURCES


def paired_text(base: dict, other: dict, base_stats: dict, other_stats: dict, base_name: str,
                other_name: str) -> str:
    """`other`'s long walk against `base`'s on the same walks (`walk_stats` of each), per span: the difference in
    the gain over copy-last (so in PSNR) and in sharpness, each ± its jackknife standard error over walks, and the
    walks where `other`'s frame is nearer the truth on most of the span's steps."""
    same = lambda r: (r["seeds"], r["steps"], r["actions"], r.get("worlds"), r.get("keys", 1), r.get("first_key", 0))
    if same(base) != same(other):
        raise WorldgenError("paired long walks: the two results walked different worlds, steps or actions, or were "
                            "dreamed with different sampling keys")
    n = len(base_stats["mse"])
    diff = pooled_figures(other_stats, np.ones(n, bool)) - pooled_figures(base_stats, np.ones(n, bool))
    se = jackknife_se(other_stats, base_stats)
    rose_BT = other_stats["mse"] < base_stats["mse"]  # per walk and step: the other's frame nearer the truth
    lines = [f"{other_name} against {base_name} on the same {n} walks (difference ± jackknife standard error over "
             f"walks; walks where {other_name} is nearer the truth on most steps):",
             f"{'dreamed steps':>14}{'PSNR':>24}{'sharpness':>18}"]
    for i, (lo, hi) in enumerate(spans(base["steps"])):
        rose = int((rose_BT[:, lo - 1:hi].mean(1) > 0.5).sum())
        psnr, sharp = f"{diff[i, 0]:+.2f}±{se[i, 0]:.2f} ({rose}/{n})", f"{diff[i, 1]:+.3f}±{se[i, 1]:.3f}"
        lines.append(f"{f'{lo}-{hi}':>14}{psnr:>24}{sharp:>18}")
    return "\n".join(lines)


def source_text(entry: dict) -> str:
    """One source's figures of `error_sources`, for people: share of the pixels / share of the error / PSNR."""
    psnr = "-" if entry["psnr"] is None else f"{entry['psnr']:.1f}"
    return f"{entry['pixels']:.0%} / {entry['error']:.0%} / {psnr}"


def table_text(result: dict) -> str:
    head = (f"{'dreamed steps':>14}{'PSNR':>7}{'copy-last':>11}{'gain':>12}{'rows':>7}{'shown':>7}{'knowable':>10}"
            f"{'sharp':>11}{'colour':>8}{'copy-last':>11}{'shown':>7}{'camera m':>10}")
    camera = f", camera: {result['camera']}" if "camera" in result else ""  # reports before session 51 lack it
    lines = [f"long walk: {result['walks']} unseen worlds, actions: {result['actions']}{camera}, {result['steps']} "
             f"dreamed steps, {keys_text(result)} (gain = PSNR - copy-last, and sharp, each ± its jackknife "
             "standard error over the walks; rows "
             "= PSNR of the start frames' mean colour per row, no model; shown = PSNR of the truth "
             "with only the objects the real start frames show, exact terrain and sky, a reference; knowable = the "
             "dream's PSNR on the pixels where that reference is exact, which a model could get right; colour = "
             "colour-histogram distance to the truth, the dream's, copy-last's and the shown reference's; camera m = "
             "the dream's camera from the true one)", head]
    for span, v in result["spans"].items():
        se = lambda key: f"±{v[key]:.2f}" if key in v else ""  # reports written before session 40 lack it
        gain = f"{v['psnr'] - v['copy_last_psnr']:+.2f}{se('gain_se')}"
        sharp = f"{v['sharpness_ratio']:.2f}{se('sharpness_se')}"
        shown = f"{v['shown_colour_distance']:.3f}" if "shown_colour_distance" in v else "-"  # since session 50
        lines.append(f"{span:>14}{v['psnr']:>7.2f}{v['copy_last_psnr']:>11.2f}{gain:>12}"
                     f"{v['start_rows_psnr']:>7.2f}{v['shown_psnr']:>7.2f}{v['knowable_psnr']:>10.2f}"
                     f"{sharp:>11}{v['colour_distance']:>8.3f}"
                     f"{v['copy_last_colour_distance']:>11.3f}{shown:>7}{v['camera_off_m']:>10.2f}")
    lines.append(f"revisit ({len(result['revisit_actions']) // 2} moves out and back): "
                 f"{M.psnr_text(result['revisit_psnr'])} against the rendered truth on return "
                 f"({result['revisit_returned']} of {result['walks']} routes came back to the start unblocked)")
    lines.append("where the error lies, by what memory knew of the pixel (share of the pixels / share of the "
                 "squared error / PSNR there): real = a real start frame at full resolution, dreamed = the "
                 "dream's own content written before, magnified = only magnified points (repainted), "
                 "unknown = nothing (painted anew)")
    lines.append(f"{'dreamed steps':>14}" + "".join(f"{name:>24}" for name in SOURCES))
    for span, v in result["sources"].items():
        lines.append(f"{span:>14}" + "".join(f"{source_text(v[name]):>24}" for name in SOURCES))
    if "stopped" in result:  # reports written before session 33 lack it
        n = result["stopped"]
        per_key = "" if result.get("keys", 1) == 1 else ", the dream's counts a mean over keys"
        lines.append(f"moves an obstacle stopped: {n['truth']} in the truth, {n['dream']:g} in the dream, "
                     f"{n['both']:g} in both, of {n['moves']} (the dream walked through {n['truth'] - n['both']:g} "
                     f"and stopped where the player walked on {n['dream'] - n['both']:g} times{per_key})")
        if "freeze_mean" in n:  # reports written before session 47 lack it
            lines.append(freeze_text(n))
    return "\n".join(lines)


def freeze_text(stopped: dict) -> str:
    """The freezes of `long_walk`'s "stopped" figures in words."""
    return (f"the dream stood still where the player walked on for {stopped['freeze_mean']:g} steps on end at the "
            f"longest, a mean over its {stopped['dreams']} dreams (walks times keys); {stopped['frozen_dreams']} froze "
            f"for {FROZEN_STEPS} steps or more, the longest for {stopped['freeze_most']}")


def write_long_walk_report(result: dict, arrays: dict, out: Path) -> list[Path]:
    """long_walk.json, long_walk.png (PSNR, sharpness, colour distance, camera and where the error lies, per
    step) and filmstrip.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "long_walk.json", out / "long_walk.png", out / "filmstrip.png"]
    write_atomic(paths[0], lambda tmp: tmp.write_text(json.dumps(result, indent=1)))
    ps = result["per_step"]
    t = np.arange(1, result["steps"] + 1)
    fig, axes = plt.subplots(1, 5, figsize=(21, 3.4), dpi=100)
    for ax, (name, base, label) in zip(axes, (("psnr", "copy_last_psnr", "PSNR (dB)"),
                                              ("sharpness_ratio", None, "sharpness ratio (1 = truth)"),
                                              ("colour_distance", "copy_last_colour_distance",
                                               "colour-histogram distance"),
                                              ("camera_off_m", None, "dream camera from the true one (m)"))):
        ax.plot(t, ps[name], label="dream")
        if base:
            ax.plot(t, ps[base], "--", label="copy last real frame")
        if name == "psnr":
            ax.plot(t, ps["start_rows_psnr"], ":", label="start frames' mean rows (no model)")
            ax.plot(t, ps["shown_psnr"], "-.", label="truth with only the objects shown at the start")
            ax.plot(t, ps["knowable_psnr"], lw=0.8, label="dream, on the pixels where that is exact")
        if name == "colour_distance" and "shown_colour_distance" in ps:
            ax.plot(t, ps["shown_colour_distance"], "-.", label="truth with only the objects shown at the start")
        if name == "sharpness_ratio":
            ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("dreamed steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[4]
    ax.stackplot(t, *(ps["error_share"][name] for name in SOURCES), labels=SOURCES, alpha=0.8)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("dreamed steps")
    ax.set_ylabel("dream's squared error, share by what memory knew", fontsize=8)
    ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"long walk, {result['walks']} unseen worlds, {keys_text(result)}, actions: {result['actions']}; "
                 f"revisit {M.psnr_text(result['revisit_psnr'])}")
    fig.tight_layout()
    write_atomic(paths[1], lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    cols = [s for s in STRIP_STEPS if s <= result["steps"]]
    rows = []
    for b in range(min(3, len(arrays["pred"]))):
        rows.append(np.concatenate([arrays["truth"][b, s - 1] for s in cols], axis=1))
        rows.append(np.concatenate([arrays["pred"][b, s - 1] for s in cols], axis=1))
    strip = np.concatenate(rows, axis=0)
    big = Image.fromarray(strip).resize((strip.shape[1] * 2, strip.shape[0] * 2), Image.NEAREST)
    write_atomic(paths[2], lambda tmp: big.save(tmp, format="PNG"))
    return paths


def keys_text(result: dict) -> str:
    """How many sampling keys the walks were dreamed with (reports written before session 42 used one)."""
    keys = result.get("keys", 1)
    return "one sampling key" if keys == 1 else f"each dreamed with {keys} sampling keys, pooled"
