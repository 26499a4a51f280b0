#!/usr/bin/env bash
# Trains hdnet's networks for a wall-clock budget on a machine with a GPU and no Rust toolchain or
# network (the project's lent H200), with a carried release build (`--features vulkan`), and
# brings the checkpoints back: the normal stage, then the depth stage, each on synthetic people v2
# drawn on the fly (`--synthetic`). Given the folder of an earlier run (what this script wrote to
# OUT before), each stage continues it with `--resume`; otherwise it starts from the settings in
# tools/gpu_train.toml (or $HDNET_TRAIN_CONFIG), from scratch, or from trained weights
# ($HDNET_INIT, for example the bundled model's file: each stage starts from its network there),
# widened first to base width $HDNET_WIDEN when set (`hdnet train --widen`; at least each network's
# width: the bundled model's are 16 and 32, and one already that wide is kept as it is). A stage
# is stopped when its minutes are up; checkpoints are written every 100 steps (crash-safe), so at
# most 100 steps are lost.
# Usage: tools/gpu_train.sh HDNET OUT_DIR [DEVICE (vulkan)] [MINUTES_PER_STAGE (4)] [EARLIER_RUN_DIR]
# OUT_DIR/normal and OUT_DIR/depth then hold each stage's checkpoints/, train_log.jsonl and
# progress/; OUT_DIR/train_gpu_log.txt what was printed.
set -uo pipefail
hdnet="$1"
out="$2"
device="${3:-vulkan}"
minutes="${4:-4}"
earlier="${5:-}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
exec > >(tee -a "$out/train_gpu_log.txt") 2>&1
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
seconds=$(awk "BEGIN { print int($minutes * 60) }")
for stage in normal depth; do
  run="$out/$stage"
  if [ -n "$earlier" ] && [ -d "$earlier/$stage/checkpoints" ]; then
    [ "$earlier" != "$out" ] && { rm -rf "$run"; cp -r "$earlier/$stage" "$run"; }
    args=(--resume)
  else
    args=(--synthetic 256 --config "${HDNET_TRAIN_CONFIG:-$here/gpu_train.toml}")
    if [ -n "${HDNET_INIT:-}" ]; then
      args+=(--init "$HDNET_INIT")
      [ -n "${HDNET_WIDEN:-}" ] && args+=(--widen "$HDNET_WIDEN")
    fi
  fi
  echo "== $stage: ${minutes} min on $device (${args[*]})"
  # SIGINT first, SIGKILL 20 s later: the last complete checkpoint stays (a write cut short is
  # a hidden temporary folder, removed by the next run).
  timeout --signal=INT --kill-after=20 "$seconds" "$hdnet" train "$stage" "${args[@]}" --out "$run" --device "$device" --steps 100000000
  echo "$stage: last checkpoint $(ls -d "$run"/checkpoints/step-* 2>/dev/null | tail -1)"
  tail -1 "$run/train_log.jsonl" 2>/dev/null
done
echo "== done"
