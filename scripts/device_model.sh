#!/usr/bin/env bash
# The bundled model's recipe at GPU scale, on a lent device machine (bare and offline). Here, first:
#   bash scripts/device_prepare.sh          # wheels into .whl/, EGL libraries into .gl/ (git-ignored)
# then through the device tool:  run(command="bash scripts/device_model.sh", carry=[".whl", ".gl"], timeout_s=600)
# It records the data there, runs scripts/bundled_model.sh from `record` on at the scale below (UNTIL: its last
# stage, default the last training stage; the finished model goes to $RUNS/final/model), stops by BUDGET_S seconds
# whatever stage it is in, and leaves in $OUT: models.tar.gz (every finished stage's model folder with its
# metrics.jsonl and train_summary.json) and log.txt. Session 35 on one H200: recording 320 worlds 31 s, `small`
# 140 s, `sky` 62 s, `fill` 56 s, each camera stage of 6000 steps 42-47 s; the budget stopped it in `outcomes`.
# Back here, the rest of the recipe runs on the CPU from the first stage that did not finish, e.g.:
#   mkdir -p runs && tar xzf /work/.device/.../models.tar.gz -C runs
#   worldgen record --seeds 0:160 --episodes-per-world 4 --steps 48 --resolution 64 --out data/explore
#   FROM=outcomes POSE_STEPS=6000 MODEL=runs/gpu-model EVAL=runs/gpu-eval bash scripts/bundled_model.sh
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1 \
  XLA_PYTHON_CLIENT_PREALLOCATE=false  # the recorder's worker processes and the trainer share one GPU
export PRESET=${PRESET:-small} BATCH=${BATCH:-64} MAIN_STEPS=${MAIN_STEPS:-4000} TUNE_STEPS=${TUNE_STEPS:-2000} \
  POSE_STEPS=${POSE_STEPS:-6000}
export SEEDS=${SEEDS:-0:320} WORKERS=${WORKERS:-16} DATA=/tmp/data RUNS=/tmp/runs EVAL= UNTIL=${UNTIL:-varied-pose} \
  MODEL=/tmp/runs/final/model
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import jax, flax, optax, orbax.checkpoint; print('jax', jax.__version__, jax.devices())" || exit 1
budget=$(( ${BUDGET_S:-540} - ($(date +%s) - start) ))
echo "recipe: PRESET=$PRESET BATCH=$BATCH MAIN_STEPS=$MAIN_STEPS TUNE_STEPS=$TUNE_STEPS POSE_STEPS=$POSE_STEPS" \
  "SEEDS=$SEEDS, until $UNTIL, within ${budget}s"
timeout --signal=KILL "$budget" bash scripts/bundled_model.sh
echo "recipe exit status $? after $(( $(date +%s) - start ))s (137: stopped at the budget)"
finished=()
for d in "$RUNS"/*/model; do [ -f "$d/config.json" ] && finished+=("${d#"$RUNS"/}"); done
extras=()
for f in "$RUNS"/*/metrics.jsonl "$RUNS"/*/train_summary.json; do [ -f "$f" ] && extras+=("${f#"$RUNS"/}"); done
echo "finished stages: ${finished[*]:-none}"
[ ${#finished[@]} -gt 0 ] && tar czf "$OUT/models.tar.gz" -C "$RUNS" "${finished[@]}" "${extras[@]}"
ls -la "$OUT"
