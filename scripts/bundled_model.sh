#!/usr/bin/env bash
# Reproduce the bundled model in assets/world_model on a 2-core CPU. Safe to re-run after an interruption:
# recording keeps finished shards, each training stage resumes from its newest checkpoint.
# Stages: main training (3500 steps), a camera-motion refinement, a fine-tune at a lower learning rate
# (1500 steps), a camera-motion refinement, the fill fine-tune (1500 steps: the network starts from the
# memory drawing with its holes filled, see docs/model.md, session 8), a camera-motion refinement, and a
# one that adds the move-outcome classifier (--move-outcomes, session 13: a step it is sure of is exact), and a
# last one where the camera head also learns from the disparity the dream itself painted, on stored steps of the
# model's own long rollouts (`worldgen dream-data`, then `--dream`; session 14).
# The model shows its memory wherever memory knows a pixel (--show-memory, session 11) and samples at
# temperature 0.5 (--sample-temperature, session 12), and paints with the nearest colours of its real start
# frames within 4 rows (--palette-rows, session 15), and stores no dreamed content within 5 m of the eye above
# the ground (--transient-near, session 16): inference settings without weights, which training
# without --rollout or --dream does not use.
# About 3 h 15 min of wall time on 2 cores.
# The bundled weights ran the first three stages on data recorded before the explorer pushed on against
# walls (sessions 1-4); the stages after them ran on today's data, as a re-run does.
set -euo pipefail
cd "$(dirname "$0")/.."
worldgen record --seeds 0:160 --episodes-per-world 4 --steps 48 --resolution 64 --out data/explore
worldgen train --data data/explore --workdir runs/small --preset small --steps 3500 --batch-size 8 --lr 1e-3 \
  --warmup 100 --checkpoint-every 100 --eval-every 500 --eval-episodes 8 --resume --out runs/small/model
pose_stage() {  # camera-motion head only: pose_stage INIT WORKDIR OUT [OPTIONS]
  worldgen train --data data/explore --workdir "$2" --stage pose --init "$1" --steps 8000 --batch-size 128 \
    --lr 1e-3 --warmup 20 --weight-decay 0 --eval-episodes 0 --checkpoint-every 1000 --resume --out "$3" "${@:4}"
}
pose_stage runs/small/model runs/small-pose runs/small-pose/model
worldgen train --data data/explore --workdir runs/sky --init runs/small-pose/model --steps 1500 \
  --batch-size 8 --lr 3e-4 --warmup 50 --checkpoint-every 100 --eval-episodes 8 --resume --out runs/sky/model
pose_stage runs/sky/model runs/sky-pose runs/sky-pose/model
worldgen train --data data/explore --workdir runs/fill --init runs/sky-pose/model --fill --show-memory \
  --sample-temperature 0.5 --steps 1500 --batch-size 8 --lr 3e-4 --warmup 50 --checkpoint-every 100 \
  --eval-episodes 0 --resume --out runs/fill/model
pose_stage runs/fill/model runs/fill-pose runs/fill-pose/model
pose_stage runs/fill-pose/model runs/outcomes runs/outcomes/model --move-outcomes
worldgen record --seeds 0:160 --episodes-per-world 2 --steps 96 --resolution 64 --out data/long
[ -f runs/dd-outcomes/meta.json ] || worldgen dream-data --model runs/outcomes/model --data data/long --out runs/dd-outcomes
pose_stage runs/outcomes/model runs/pose-dream assets/world_model --move-outcomes --dream runs/dd-outcomes --dream-per-row 1 \
  --palette-rows 4 --transient-near 5
worldgen eval --model assets/world_model --data data/explore --out docs/eval --episodes 32
cp docs/eval/metrics.json assets/world_model/metrics.json
worldgen model-card --model assets/world_model --metrics docs/eval/metrics.json
