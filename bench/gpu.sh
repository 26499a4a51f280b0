#!/usr/bin/env bash
# The GPU check: on a machine with one NVIDIA GPU, its driver, PyTorch with CUDA and numpy, and
# neither a Rust toolchain nor a network. Runs two carried release builds of hdnet: one built with
# `--features vulkan` (SPIR-V shaders) and one with `--features wgpu` (WGSL shaders; a vulkan
# build's `wgpu` device would also take SPIR-V on a Vulkan driver):
#   1. parity: `hdnet infer` on examples/ with the TF reference weights on the CPU, on Vulkan and
#      on wgpu; the largest differences of the depth and normal arrays against the CPU's;
#   2. speed: `hdnet bench infer|train` at width 64 on each GPU device against PyTorch (CUDA, eager)
#      on the same workloads, with peak GPU memory (nvidia-smi, sampled every 50 ms);
#   3. training: a short `hdnet train normal` at width 16 on the GPU on freshly generated synthetic
#      people; its log and its last checkpoint come back, to be loaded on the CPU.
# Usage: bench/gpu.sh HDNET_VULKAN HDNET_WGPU OUT_DIR [TRAIN_STEPS]   (HDNET_WGPU "-": Vulkan only)
# Everything it prints also goes to OUT_DIR/gpu_log.txt; the figures to OUT_DIR/gpu_results.jsonl.
set -uo pipefail
declare -A hdnet=([cpu]="$1" [vulkan]="$1" [wgpu]="$2")
gpus=(vulkan wgpu)
[ "$2" = "-" ] && gpus=(vulkan)
out="$3"
steps="${4:-200}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
log="$out/gpu_log.txt"
results="$out/gpu_results.jsonl"
exec > >(tee -a "$log") 2>&1
work="$(mktemp -d)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

# Peak GPU memory of one command: nvidia-smi sampled in the background, less the idle figure.
peak_memory() {
  local samples="$work/mem.txt" idle
  idle=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
  (while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; sleep 0.05; done) >"$samples" &
  local sampler=$!
  "$@"
  local rc=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  echo "{\"peak_gpu_mib\": $(( $(sort -n "$samples" | tail -1) - idle )), \"command\": \"$*\"}" >>"$results"
  return $rc
}

echo "== parity against the CPU (TF reference weights, examples/)"
for device in cpu "${gpus[@]}"; do
  timeout 120 "${hdnet[$device]}" infer examples --weights fixtures/tf_reference --out "$work/infer_$device" --device "$device" --no-turntable \
    || echo "infer on $device failed"
done
python3 - "$work" "$results" "${gpus[@]}" <<'EOF'
import glob, json, os, sys
import numpy as np
work, results = sys.argv[1], sys.argv[2]
for device in sys.argv[3:]:
    for cpu in sorted(glob.glob(f"{work}/infer_cpu/*.npy")):
        other = cpu.replace("infer_cpu", f"infer_{device}")
        if not os.path.exists(other):
            print(f"{device}: {os.path.basename(other)} missing")
            continue
        a, b = np.load(cpu), np.load(other)
        err = float(np.abs(a - b).max())
        rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))
        row = {"parity": device, "file": os.path.basename(cpu), "max_abs": err, "rel_l2": rel}
        print(row)
        open(results, "a").write(json.dumps(row) + "\n")
EOF

echo "== speed at width 64: hdnet (vulkan, wgpu) against PyTorch (CUDA)"
for what in "infer 1" "infer 8" "train 1" "train 4"; do
  set -- $what
  for device in "${gpus[@]}"; do
    peak_memory timeout 120 "${hdnet[$device]}" bench "$1" --width 64 --batch "$2" --runs 3 --device "$device" --json | tee -a "$results"
  done
  peak_memory timeout 120 python3 "$here/peers.py" torch "$1" --width 64 --batch "$2" --runs 3 --device cuda | tee -a "$results"
done

echo "== training on the GPU: normal net, width 16, $steps steps"
"${hdnet[vulkan]}" synth labelled --n 256 --out "$work/people" --seed 5 >/dev/null
printf 'width = 16\nbatch_size = 8\ncheckpoint_every = %s\nlog_every = 10\nvisualize_every = 100000\n' "$steps" >"$work/train.toml"
peak_memory timeout 240 "${hdnet[vulkan]}" train normal --config "$work/train.toml" --data "$work/people" --out "$work/run" \
  --steps "$steps" --device vulkan
cp "$work/run/train_log.jsonl" "$out/gpu_train_log.jsonl"
cp "$(ls -d "$work"/run/checkpoints/step-* | tail -1)/model.safetensors" "$out/gpu_normal_w16.safetensors"
echo "== done"
