"""Long-walk drift: PSNR of the dream against the engine's rendered truth over a 200-step walk
(70% forward, 10% each turn, 5% each strafe) in 8 unseen worlds, started from 4 real frames. A sharpness
ratio above 1 means more fine detail than the truth: speckle.

    python bench/long_walk.py [MODEL]     # MODEL: a model folder or 'bundled' (default)
"""
import sys

import jax
import numpy as np

from training.metrics import pooled_psnr, sharpness_ratio
from worldgen import World
from worldgen.actions import Action
from worldgen.model.runner import Generator
from worldgen.model.store import load_model
from worldgen.player import camera_pose, spawn, step
from worldgen.render import Renderer

STEPS, CONTEXT, SEEDS = 200, 4, range(1000, 1008)
SPANS = ((1, 10), (11, 50), (51, 100), (101, 200))


def main(model: str = "bundled") -> None:
    gen = Generator(load_model(model))
    rng = np.random.default_rng(0)
    frames, depth, poses, actions = [], [], [], []
    with Renderer(gen.config.resolution) as r:
        for seed in SEEDS:
            world = World(seed)
            player = spawn(world, np.random.default_rng(seed))
            acts = [0] * CONTEXT + list(rng.choice([1, 3, 4, 5, 6], size=STEPS, p=[0.7, 0.1, 0.1, 0.05, 0.05]))
            walk = []
            for a in acts:
                player, _ = step(world, player, Action(int(a)))
                walk.append(r.render(world, camera_pose(world, player)))
            frames.append([f.rgb_HWC for f in walk])
            depth.append([f.depth_HW for f in walk])
            poses.append([f.pose for f in walk])
            actions.append(acts)
        intrinsics = r.intrinsics
    frames, depth, poses, actions = map(np.asarray, (frames, depth, poses, actions))
    state = gen.init(frames[:, :CONTEXT], depth[:, :CONTEXT], poses[:, :CONTEXT], intrinsics)
    _, out = gen.rollout(state, actions[:, CONTEXT:], jax.random.key(0))
    pred, truth = np.asarray(out["rgb"]), frames[:, CONTEXT:]
    psnr = [pooled_psnr(pred[:, t], truth[:, t]) for t in range(STEPS)]
    sharp = [sharpness_ratio(pred[:, t], truth[:, t]) for t in range(STEPS)]
    print(f"{'dreamed steps':>14}{'PSNR (dB)':>11}{'sharpness':>11}")
    for lo, hi in SPANS:
        print(f"{f'{lo}-{hi}':>14}{np.mean(psnr[lo - 1:hi]):>11.1f}{np.mean(sharp[lo - 1:hi]):>11.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
