"""Long walks: how a dream holds up over hundreds of steps on unseen worlds, against the rendered truth.

Dimension keys: B walks, T steps, H, W, C.

The recorder's curious explorer (`worldgen.policy.Explorer`) walks each unseen world; the model gets the first
`context` rendered frames (RGB, depth, pose) and then only the explorer's actions. With `hold` (an action), the walk
starts as the viewer's does, from the spawn looking around (`WorldEnv.look_around`), and the player then holds that
key, as a user holding W in the viewer does: the truth stops and slides at walls, and the dream must too. Per span
of dreamed steps (1-10, 11-50, 51-100, 101-200, ...) we report PSNR against the truth, the PSNR of repeating the
last real frame (copy-last) and of a picture made without a model (each row the mean colour of that row in the real
start frames: the camera is level, so a row is an elevation, sky above and ground below) and of the truth with only
the obstacles the real start frames show (`shown_obstacles`), terrain and sky exact, rendered from the true camera:
what a model would score that knew exactly what it was shown and invented nothing (a reference, not a ceiling: where
unseen objects stand, a model that hedges does better than bare terrain), the dream's PSNR on the pixels where that
reference is exact (the sky, the terrain and the shown objects: what a model could get right), the sharpness ratio
(1 = as sharp as the truth, > 1 = speckle), the colour-histogram distance to the truth (0 = the same colours, 1 =
none in common) for the dream, for copy-last and for the shown reference (the colours of a model that invented
nothing: unseen objects missing, terrain and sky exact), how far the dream's camera is from the true one (metres,
horizontal: the camera head's moves, summed), and how many moves an obstacle stopped (the eye moved under
`STOPPED_M`) in the truth, in the dream and in both: a dream that walks through what stops the player, or stops
where the player walks on, is off from then on (docs/model.md, session 33). The revisit test walks 16 moves out and
their inverses back and compares the dream on return with the rendered truth there. Each world takes the first of
eight variants of the route (its four mirror images, left/right and forward/back swapped, each with its moves as
given or turned a quarter: forward -> strafe left -> back -> strafe right) that no obstacle blocks, so the player
truly comes back to the start frame; `revisit_returned` counts the worlds where one did (elsewhere the truth at the
route's end is a nearby view, not the start).
Where the dream's error lies (`error_sources`): per span, by what memory knew of each pixel when the frame was
made (`world_model.SOURCES`: a real start frame at full resolution, the dream's own content written before, only
magnified points, nothing), the share of the pixels, the share of the squared error and the PSNR there.
With `follow`, the dream is given the player's true camera at every step (`Generator.rollout`'s poses, as the
viewer's "follow the player"): only the frames are dreamed, which measures the painter and its memory alone.
Each walk is dreamed with KEYS sampling keys by default and the figures pool the dreams (`long_walk`); the text,
plots and files of a report are `training.long_walk_report`'s.
"""
from __future__ import annotations


import jax
import numpy as np

from training import metrics as M
from worldgen.actions import INVERSE, Action
from worldgen.errors import WorldgenError
from worldgen.model.geometry import MIN_DEPTH
from worldgen.model.runner import Generator
from worldgen.model.world_model import SOURCES
from worldgen.describe import varied_spec
from worldgen.env import WorldEnv
from worldgen.objects import object_parts
from worldgen.player import camera_pose, step
from worldgen.record import record_episode
from worldgen.world import World

SEEDS = tuple(range(1000, 1000 + 10 * 64, 10))  # never recorded for training; held out by seed % 10 as well
WALKS = 24  # walks a report takes by default: 8 left a span's sharpness 0.1-0.3 apart between walk sets
HOLD_WALKS = 16  # walks with W held that `worldgen eval` takes by default (the walks' first 16 worlds)
KEYS = 3  # sampling keys each walk is dreamed with by default: one key moves the late spans by up to 0.16 dB
MAX_KEYS = 8
STRIP_STEPS = (1, 10, 25, 50, 100, 200, 500)
SAMPLE_SPACING = 0.25  # metres between the surface points `shown_obstacles` tests
STOPPED_M = 0.01  # metres: a move that shifts the eye less than this on the ground was stopped by an obstacle
FROZEN_STEPS = 20  # steps on end: a dream that stood still this long where the player walked on froze
MOVES = (Action.FORWARD, Action.BACK, Action.STRAFE_LEFT, Action.STRAFE_RIGHT)
REVISIT_OUT = (Action.FORWARD, Action.FORWARD, Action.TURN_LEFT, Action.FORWARD, Action.FORWARD,
               Action.STRAFE_RIGHT, Action.FORWARD, Action.TURN_RIGHT, Action.TURN_RIGHT, Action.FORWARD,
               Action.FORWARD, Action.STRAFE_LEFT, Action.TURN_LEFT, Action.FORWARD, Action.FORWARD, Action.FORWARD)
_MIRROR = {Action.TURN_LEFT: Action.TURN_RIGHT, Action.TURN_RIGHT: Action.TURN_LEFT,
           Action.STRAFE_LEFT: Action.STRAFE_RIGHT, Action.STRAFE_RIGHT: Action.STRAFE_LEFT}
_FLIP = {Action.FORWARD: Action.BACK, Action.BACK: Action.FORWARD}
_QUARTER = {Action.FORWARD: Action.STRAFE_LEFT, Action.STRAFE_LEFT: Action.BACK, Action.BACK: Action.STRAFE_RIGHT,
            Action.STRAFE_RIGHT: Action.FORWARD}


def _there_and_back(out) -> tuple[Action, ...]:
    return tuple(out) + tuple(INVERSE[a] for a in reversed(out))


REVISIT = _there_and_back(REVISIT_OUT)
REVISIT_ROUTES = tuple(_there_and_back([swap.get(turn.get(a, a), turn.get(a, a)) for a in REVISIT_OUT])
                       for turn in ({}, _QUARTER) for swap in ({}, _MIRROR, _FLIP, {**_MIRROR, **_FLIP}))


def stopped_moves(poses_BT44: np.ndarray, start_B44: np.ndarray, actions_BT: np.ndarray) -> np.ndarray:
    """(B, T) bool: the moves after which the eye stood less than STOPPED_M from where it stood before (the
    pose before the first is `start_B44`)."""
    xz = np.concatenate([start_B44[:, None], poses_BT44], 1)[..., [0, 2], 3]
    return np.isin(actions_BT, MOVES) & (np.linalg.norm(np.diff(xz, axis=1), axis=-1) < STOPPED_M)


def longest_freeze(dream_stop_BT: np.ndarray, true_stop_BT: np.ndarray) -> np.ndarray:
    """(B,) int: each walk's longest run of consecutive steps on which the dream's camera stood still where the
    player walked on: a dream frozen in place while the truth slides along a wall (docs/model.md, session 47)."""
    run = np.zeros(dream_stop_BT.shape[0], int)
    longest = run.copy()
    for frozen in (dream_stop_BT & ~true_stop_BT).T:
        run = np.where(frozen, run + 1, 0)
        longest = np.maximum(longest, run)
    return longest


def spans(steps: int) -> list[tuple[int, int]]:
    """(first, last) dreamed step of each reported span: 1-10, 11-50, 51-100, 101-200, 201-500, ... up to steps."""
    edges = [e for e in (10, 50, 100, 200, 500, 1000) if e < steps] + [steps]
    return [(lo + 1, hi) for lo, hi in zip([0] + edges[:-1], edges)]


def check_walks(n_walks: int, steps: int, keys: int = 1) -> None:
    if not 1 <= n_walks <= len(SEEDS):
        raise WorldgenError(f"long walks: expected 1..{len(SEEDS)} walks, got {n_walks}")
    if not 10 <= steps <= 1000:
        raise WorldgenError(f"long walks: expected 10..1000 dreamed steps, got {steps}")
    if not 1 <= keys <= MAX_KEYS:
        raise WorldgenError(f"long walks: expected 1..{MAX_KEYS} sampling keys, got {keys}")


def _surface_samples(world: World, ob) -> np.ndarray:
    """Points (N, 3) on every face of an obstacle's mesh: each face cut into up to 64 parts along its longest
    edge, at most SAMPLE_SPACING apart (faces longer than 64 of them get 64)."""
    points = []
    for v, f, _ in object_parts(world.seed, world.spec, ob):
        tri_F33 = v[f]
        longest_F = np.linalg.norm(tri_F33 - np.roll(tri_F33, 1, 1), axis=-1).max(-1)
        cuts_F = np.clip(np.ceil(longest_F / SAMPLE_SPACING), 1, 64).astype(int)
        for n in np.unique(cuts_F):
            i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
            keep = i + j <= n
            bary_S3 = np.stack([i[keep], j[keep], n - i[keep] - j[keep]], -1) / n
            points.append(np.einsum("sk,fkc->fsc", bary_S3, tri_F33[cuts_F == n]).reshape(-1, 3))
    return np.concatenate(points)


def shown_obstacles(world: World, depth_VHW: np.ndarray, poses_V44: np.ndarray, intrinsics: np.ndarray) -> frozenset:
    """The obstacles that real frames (depth, camera-to-world poses) show: an obstacle the renderer draws there
    (in the chunks around the camera, nearer than the far plane) with a point of its surface inside a frame and
    not behind what the frame shows at that pixel or one beside it (anti-aliased edges show a little of what
    lies beside the pixel's centre)."""
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    h, w = depth_VHW.shape[1:]
    far = 1.5 * world.spec.view_distance  # the renderer's far plane
    padded = np.pad(np.where(depth_VHW > 0, depth_VHW, np.inf), ((0, 0), (1, 1), (1, 1)), constant_values=0.0)
    beside_VHW = np.max([padded[:, 1 + dv:1 + dv + h, 1 + du:1 + du + w] for dv in (-1, 0, 1) for du in (-1, 0, 1)], 0)
    shown, samples = set(), {}
    for beside_HW, pose in zip(beside_VHW, poses_V44):
        drawn = {o for key in world.chunks_within(pose[0, 3], pose[2, 3], world.spec.view_distance)
                 for o in world.layout(*key)}
        for ob in drawn - shown:
            if ob not in samples:
                samples[ob] = _surface_samples(world, ob)
            cam_N3 = (samples[ob] - pose[:3, 3]) @ pose[:3, :3]
            d = -cam_N3[:, 2]
            safe = np.where(d > MIN_DEPTH, d, 1.0)
            u = np.floor(cx + fx * cam_N3[:, 0] / safe).astype(int)
            v = np.floor(cy - fy * cam_N3[:, 1] / safe).astype(int)
            ok = (d > MIN_DEPTH) & (d < far) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
            if (d[ok] <= 1.05 * beside_HW[v[ok], u[ok]] + 0.1).any():
                shown.add(ob)
    return frozenset(shown)


def held_walk(env: WorldEnv, seed: int, context: int, steps: int, hold: Action):
    """World `seed` as the viewer starts it (the spawn of episode 0 and `context` views looking around from there,
    `WorldEnv.look_around`), then `hold` for `steps` steps: frames, depth, actions (NOOP for the start views) and
    poses, as `record_episode` gives them."""
    frames, depth, actions, poses = record_episode(env, seed, 0, 1 + steps, hold, hold_from=1)[:4]
    env.reset(seed=seed, options={"episode": 0})
    start = env.look_around(context)
    then = lambda key, walk: np.concatenate([np.stack([o[key] for o in start]).astype(walk.dtype), walk[1:]])
    return (then("rgb", frames), then("depth", depth), np.concatenate([np.zeros(context, actions.dtype), actions[1:]]),
            then("pose", poses))


def _world_env(base: WorldEnv, seed: int, vary: bool) -> WorldEnv:
    """`base`, or with `vary` an env of world `seed`'s own varied spec (`record --vary`) on base's renderer."""
    return WorldEnv(base.resolution, task=None, spec=varied_spec(seed), renderer=base.renderer) if vary else base


def render_walks(resolution: int, n_walks: int, steps: int, context: int, hold: Action | None = None,
                 vary: bool = False):
    """Explorer walks (or, with `hold`, the viewer's start then that action held, `held_walk`) of context + steps
    frames on unseen worlds (with `vary`, each of its own random description, as `worldgen record --vary` draws
    them): frames, depth, poses, actions, intrinsics, and the dreamed steps' truth with only the obstacles the
    real start frames show ("shown", B, steps, H, W, 3)."""
    check_walks(n_walks, steps)
    eps, shown = [], []
    with WorldEnv(resolution, task=None) as base:
        for seed in SEEDS[:n_walks]:
            env = _world_env(base, seed, vary)
            eps.append(record_episode(env, seed, 0, context + steps) if hold is None
                       else held_walk(env, seed, context, steps, hold))
            _, d, _, p = eps[-1][:4]
            world = env.world.only(shown_obstacles(env.world, d[:context].astype(np.float32), p[:context],
                                                   env.intrinsics))
            shown.append(np.stack([env.renderer.render(world, pose).rgb_HWC for pose in p[context:]]))
        intrinsics = base.intrinsics
    frames, depth, actions, poses = (np.stack([e[i] for e in eps]) for i in range(4))
    return frames, depth.astype(np.float32), poses, actions, intrinsics, np.stack(shown)


def render_revisits(resolution: int, n_walks: int, context: int, vary: bool = False, held: bool = False):
    """Per walk, after its real start frames (the explorer's, or with `held` the viewer's start, as
    `render_walks` draws them), the first REVISIT_ROUTES entry no obstacle blocks (else the one blocked least):
    actions (B, 32), the rendered truth at its end (B, H, W, 3), whether it came back, and the player's camera at
    each of its steps (B, 32, 4, 4). Routes are tried with the player's physics alone; only the chosen one's end
    is rendered."""
    routes, ends, back, cameras = [], [], [], []
    with WorldEnv(resolution, task=None) as base:
        for seed in SEEDS[:n_walks]:
            env = _world_env(base, seed, vary)
            if held:  # the player stands where the real start frames' last was taken
                env.reset(seed=seed, options={"episode": 0})
            else:
                record_episode(env, seed, 0, context)
            tried = []
            for route in REVISIT_ROUTES:
                state, blocked, states = env.player, 0, []
                for action in route:
                    state, hit = step(env.world, state, action)
                    blocked, states = blocked + hit, states + [state]
                tried.append((blocked, route, states))
                if not blocked:
                    break
            blocked, route, states = min(tried, key=lambda x: x[0])
            routes.append(route)
            ends.append(env.place(states[-1])["rgb"])
            back.append(blocked == 0)
            cameras.append([camera_pose(env.world, st) for st in states])
    return np.array(routes, np.int32), np.stack(ends), np.array(back), np.array(cameras, np.float32)


def long_walk(gen: Generator, n_walks: int = WALKS, steps: int = 200, seed: int = 0, keys: int = KEYS,
              hold: Action | None = None, vary: bool = False, walks: tuple | None = None,
              follow: bool = False) -> tuple[dict, dict]:
    """(figures for metrics.json, arrays for the plots, the filmstrip and another model's walks: the arrays'
    "walks" is `render_walks`'s output, which `walks` takes to dream the same walks without rendering them
    again, "stats" each walk's `walk_stats` (the mean over keys) and "pred" the dream of the first key).
    The walks are dreamed with the sampling keys `seed` .. `seed + keys - 1` and every figure pools all of
    them, as if each walk were walked once per key: after step 50 one key's figures move by up to 0.16 dB
    (docs/model.md, session 41). The revisit is dreamed with `seed`. `hold`, `vary`, `follow`: see the module
    docstring (with `follow` the revisit too walks the player's camera)."""
    check_walks(n_walks if walks is None else len(walks[0]), steps, keys)
    k = gen.config.context
    if not gen.config.geometry:
        raise WorldgenError("long walks start from rendered frames with depth: this model has no geometry")
    walks = walks or render_walks(gen.config.resolution, n_walks, steps, k, hold, vary)
    frames, depth, poses, actions, intr, shown = walks
    if frames.shape[2] != gen.config.resolution or frames.shape[1] != k + steps:
        raise WorldgenError(f"these walks are {frames.shape[2]}x{frames.shape[2]} with {frames.shape[1]} frames; "
                            f"this model dreams {gen.config.resolution}x{gen.config.resolution} from {k} real "
                            f"frames, {steps} steps: {k + steps} frames")
    state = gen.init(frames[:, :k], depth[:, :k], poses[:, :k], intr)
    dreamed_actions = actions[:, k:]
    true_poses = poses[:, k:] if follow else None
    outs = [gen.rollout(state, dreamed_actions, jax.random.key(seed + i), true_poses)[1] for i in range(keys)]
    dreamed = lambda name: np.concatenate([np.asarray(o[name]) for o in outs])  # (keys * B, ...), key-major
    each = lambda a: np.concatenate([a] * keys)  # a walk's truth beside each of its dreams
    pred, truth, last = dreamed("rgb"), each(frames[:, k:]), each(frames[:, k - 1])
    rows = np.broadcast_to(frames[:, :k].mean((1, 3), keepdims=True, dtype=np.float32)[:, 0], frames[:, 0].shape)
    rows = np.round(rows).astype(np.uint8)
    dream_poses = dreamed("pose")
    off_m = np.linalg.norm((dream_poses - each(poses[:, k:]))[..., [0, 2], 3], axis=-1)  # (keys * B, T)
    true_stop = stopped_moves(poses[:, k:], poses[:, k - 1], dreamed_actions)
    dream_stop = stopped_moves(dream_poses, each(poses[:, k - 1]), each(dreamed_actions))
    dream_stop = dream_stop.reshape(keys, *true_stop.shape)  # (keys, B, T)
    stats = {name: v.reshape(keys, -1, steps).mean(0)  # per walk, the mean over its keys
             for name, v in walk_stats(pred, truth, last).items()}
    pooled = {name: v.mean(0) for name, v in stats.items()}  # per step over walks, as metrics.pooled_psnr pools
    per_step = {
        "psnr": [float(db) for db in _psnr(pooled["mse"])],
        "copy_last_psnr": [float(db) for db in _psnr(pooled["copy_mse"])],
        "start_rows_psnr": [M.pooled_psnr(rows, frames[:, k + t]) for t in range(steps)],
        "shown_psnr": [M.pooled_psnr(shown[:, t], frames[:, k + t]) for t in range(steps)],
        "knowable_psnr": [M.pooled_psnr(pred[:, t], truth[:, t], each((shown[:, t] == frames[:, k + t]).all(-1)))
                          for t in range(steps)],
        "camera_off_m": [float(off_m[:, t].mean()) for t in range(steps)],
        "sharpness_ratio": [float(r) for r in _sharpness(pooled["energy"], pooled["true_energy"])],
        "colour_distance": [M.colour_distance(pred[:, t], truth[:, t]) for t in range(steps)],
        "copy_last_colour_distance": [M.colour_distance(last, truth[:, t]) for t in range(steps)],
        "shown_colour_distance": [M.colour_distance(shown[:, t], frames[:, k + t]) for t in range(steps)],
    }
    table = {f"{lo}-{hi}": {name: float(np.mean(v[lo - 1:hi])) for name, v in per_step.items()}
             for lo, hi in spans(steps)}
    for span, (gain_se, sharpness_se) in zip(table, jackknife_se(stats)):
        table[span]["gain_se"], table[span]["sharpness_se"] = float(gain_se), float(sharpness_se)
    sources, per_step["error_share"] = error_sources(pred, truth, dreamed("source"))
    routes, route_ends, returned, route_poses = render_revisits(gen.config.resolution, len(frames), k, vary,
                                                                held=hold is not None)
    _, back = gen.rollout(gen.init(frames[:, :k], depth[:, :k], poses[:, :k], intr), routes, jax.random.key(seed),
                          route_poses if follow else None)
    result = {"walks": int(len(frames)), "steps": int(steps), "seeds": list(SEEDS[:len(frames)]), "keys": keys,
              "first_key": seed,
              "actions": "explorer" if hold is None else f"hold {Action(hold).name.lower()}", "spans": table,
              "camera": "the player's (followed)" if follow else "the dream's own",
              "sources": sources,
              "worlds": "varied (record --vary)" if vary else "default spec",
              "revisit_psnr": M.pooled_psnr(np.asarray(back["rgb"])[:, -1], route_ends),
              "revisit_returned": int(returned.sum()),
              "stopped": {"moves": int(np.isin(dreamed_actions, MOVES).sum()), "truth": int(true_stop.sum()),
                          "dream": _per_key(dream_stop), "both": _per_key(true_stop & dream_stop),
                          **_freezes(np.concatenate([longest_freeze(d, true_stop) for d in dream_stop]))},
              "revisit_actions": [Action(a).name.lower() for a in REVISIT], "per_step": per_step}
    return result, {"pred": pred[:len(frames)], "truth": frames[:, k:], "walks": walks, "stats": stats}


def _freezes(longest_D: np.ndarray) -> dict:
    """Each dream's longest freeze (`longest_freeze`), over all its walks and keys: the mean, the most, and how many
    dreams froze for FROZEN_STEPS or more steps on end."""
    return {"freeze_mean": round(float(longest_D.mean()), 1), "freeze_most": int(longest_D.max()),
            "frozen_dreams": int((longest_D >= FROZEN_STEPS).sum()), "dreams": int(longest_D.size)}


def _per_key(stopped_KBT: np.ndarray) -> int | float:
    """Moves stopped, summed over walks and steps: a count for one key, the mean over keys (to 0.1) for several."""
    n = stopped_KBT.sum() / len(stopped_KBT)
    return int(n) if len(stopped_KBT) == 1 else round(float(n), 1)


def walk_stats(pred_BTHWC: np.ndarray, truth_BTHWC: np.ndarray, last_BHWC: np.ndarray) -> dict:
    """Each walk's share of the figures the table pools over walks, per step (B, T): the dream's and copy-last's
    mean squared error, and the dream's and the truth's high-frequency energy (`metrics.high_frequency_energy`)."""
    sq = lambda a, b: np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=(-3, -2, -1))
    energy = lambda frames: np.array([[M.high_frequency_energy(f[None]) for f in walk] for walk in frames])
    return {"mse": sq(pred_BTHWC, truth_BTHWC), "copy_mse": sq(last_BHWC[:, None], truth_BTHWC),
            "energy": energy(pred_BTHWC), "true_energy": energy(truth_BTHWC)}


def _psnr(mse):
    """`metrics.psnr_of_mse` over an array."""
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))


def _sharpness(energy, true_energy):
    """`metrics.sharpness_ratio` from the energies it compares."""
    return energy / np.maximum(true_energy, 1e-10)


def pooled_figures(stats: dict, keep_B: np.ndarray) -> np.ndarray:
    """The table's gain over copy-last and sharpness ratio per span (S, 2), pooled over the walks `keep_B` selects
    as the table pools them (per step over walks, then the mean over the span's steps)."""
    mean = {k: v[keep_B].mean(0) for k, v in stats.items()}
    gain_T = _psnr(mean["mse"]) - _psnr(mean["copy_mse"])
    sharp_T = _sharpness(mean["energy"], mean["true_energy"])
    return np.array([[gain_T[lo - 1:hi].mean(), sharp_T[lo - 1:hi].mean()] for lo, hi in spans(len(gain_T))])


def jackknife_se(stats: dict, base: dict | None = None) -> np.ndarray:
    """The jackknife standard error over walks (leave one walk out) of `pooled_figures` (S, 2), or of their
    difference from `base`'s on the same walks: how much the figures move with the walks drawn."""
    n = len(stats["mse"])
    if n < 2:
        return np.zeros((len(spans(stats["mse"].shape[1])), 2))
    figures = lambda keep: pooled_figures(stats, keep) - (pooled_figures(base, keep) if base else 0)
    left_out = np.stack([figures(np.arange(n) != i) for i in range(n)])
    return np.sqrt((n - 1) / n * ((left_out - left_out.mean(0)) ** 2).sum(0))



def error_sources(pred_BTHWC: np.ndarray, truth_BTHWC: np.ndarray, source_BTHW: np.ndarray) -> tuple[dict, dict]:
    """Where the dream's error lies, by what memory knew of each pixel (`world_model.SOURCES`): per span, each
    source's share of the pixels, share of the squared error and PSNR there (None where it drew no pixel); and
    per step each source's share of the squared error (for the plot)."""
    steps = pred_BTHWC.shape[1]
    sq_BTHW = np.mean((pred_BTHWC.astype(np.float32) - truth_BTHWC.astype(np.float32)) ** 2, axis=-1)
    total_T = np.maximum(sq_BTHW.sum((0, 2, 3)), 1e-12)
    per_step = {name: [float(v) for v in np.where(source_BTHW == i, sq_BTHW, 0).sum((0, 2, 3)) / total_T]
                for i, name in enumerate(SOURCES)}
    table = {}
    for lo, hi in spans(steps):
        sq, src = sq_BTHW[:, lo - 1:hi], source_BTHW[:, lo - 1:hi]
        table[f"{lo}-{hi}"] = by_source = {}
        for i, name in enumerate(SOURCES):
            there = sq[src == i]
            by_source[name] = {"pixels": there.size / sq.size, "error": float(there.sum() / max(sq.sum(), 1e-12)),
                               "psnr": M.psnr_of_mse(there.mean()) if there.size else None}
    return table, per_step


