#!/usr/bin/env bash
# Issue 18's GPU figures in one prepared run (docs/benchmarks.md, "GPU figures"):
#   codec.json        bench/codec.py on the GPU: both codecs, the real 1.2B-block Δ, the
#                     aggregate beside its lower bound, and where one aggregate's time goes
#                     (--profile: operators, host-to-device copies, waits, top kernels)
#   codec-model.json  bench/codec_model.py: a whole 1.2B payload's validate and decode, and
#                     16 peers' aggregate, with checksums of the results' bits
#   validator.json    bench/validator.py: seconds per evaluated peer, peers per 120 s window, 1.2b
#   train.json        bench/train.py: tokens/s and MFU of 150m and 1.2b, bf16, as the miner
#                     runs by default (eager, 4 x 2048 tokens a step)
#   train-tuned.json  bench/train.py: 1.2b compiled (train.compile), 8 x 2048 tokens a step
#   checks.json       bench/checks.py: the validator's checks (norm and sketch read from the
#                     payload) per contribution, whole 1.2B model, 32 contributions
# steps.log begins with nvidia-smi and torch's view of the device, then every step's
# stderr; timings.txt has a line per step: 8 files, the device tool's most.
# About 7 minutes on one H200. Steps run in order of need (what the first run, 2026-12-04,
# left open first), so a run cut short loses the last.
#
# On the device machine (it reaches no package index), from the repository root, after
# `bash bench/gpu_wheels.sh` here with the folder carried (`carry: [".gpu-wheels"]`):
#
#     bash bench/gpu.sh "$OUT"
#
# GPU_BENCH_DEVICE=cpu GPU_BENCH_QUICK=1 runs the same steps at smoke sizes (a dry run of
# the script itself, on any machine; tests/test_gpu_bench_script.py runs it); there the tuned
# step does not compile (30 s of inductor on a CPU; tests/model/test_runtime.py covers it).
# A step that fails or runs past GPU_BENCH_STEP_TIMEOUT seconds (default 240) is recorded in
# timings.txt and the next one still runs. The codec's real pseudo-gradient trains on the
# stdlib token dataset: .gpu-wheels/stdlib when carried (bench/gpu_wheels.sh prepares it,
# which saves the device preparing it), else the node's default, prepared there.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-bench-gpu-out}}
py=${PYTHON:-python3}
device=${GPU_BENCH_DEVICE:-cuda}
quick=${GPU_BENCH_QUICK:-}
limit=${GPU_BENCH_STEP_TIMEOUT:-240}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

# The carried wheels, offline, into the image's environment; where that is read-only, into
# a folder of their own on PYTHONPATH. GPU_BENCH_INSTALL=0 skips this (a dev checkout).
if [ -d .gpu-wheels ] && [ "${GPU_BENCH_INSTALL:-1}" != 0 ]; then
    wheels=(--quiet --no-index --find-links .gpu-wheels -r .gpu-wheels/requirements.txt)
    if ! "$py" -m pip install "${wheels[@]}"; then
        "$py" -m pip install --target .gpu-site "${wheels[@]}" \
            || { echo "gpu.sh: installing the carried wheels failed" >&2; exit 1; }
        export PYTHONPATH="$PWD/.gpu-site${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi

{
    date -u
    nvidia-smi 2>&1 || echo "no nvidia-smi"
    "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
} > "$out/steps.log" 2>&1

step() {
    local name=$1
    shift
    local began=$SECONDS
    echo "=== $name: $*" >> "$out/steps.log"
    timeout "$limit" "$py" "$@" > "$out/$name.json" 2>> "$out/steps.log"
    local rc=$?
    echo "$name rc=$rc seconds=$((SECONDS - began)) command: $*" >> "$out/timings.txt"
    echo "gpu.sh: $name rc=$rc in $((SECONDS - began)) s" >&2
}

dataset=()
[ -f .gpu-wheels/stdlib/manifest.json ] && dataset=(--dataset-dir .gpu-wheels/stdlib)

if [ -n "$quick" ]; then
    step codec bench/codec.py --device "$device" --quick --profile "${dataset[@]}"
    step codec-model bench/codec_model.py --device "$device" --subset layers.0.attention_norm \
        --peers 2 --distinct 1 --repeats 1
    step validator bench/validator.py --device "$device" --models tiny --peers 2 --repeats 1 \
        --eval-batches 4 --eval-batch-size 8 --seq-len 160 --pages-per-window 1 \
        --random-pages 3 --window-seconds 5 --window-seconds 120
    step checks bench/checks.py --device "$device" --subset layers.0.attention_norm \
        --contributions 2 --repeats 1
    step train bench/train.py --device "$device" --quick
    step train-tuned bench/train.py --device "$device" --quick --batch 8
else
    step codec bench/codec.py --device "$device" --real-model 1.2b-blocks --profile \
        "${dataset[@]}"
    step codec-model bench/codec_model.py --device "$device"
    step validator bench/validator.py --device "$device" --models 1.2b --peers 4 \
        --window-seconds 120
    step checks bench/checks.py --device "$device" --subset '' --contributions 32
    step train bench/train.py --device "$device" --dtype bf16 --config 150m --config 1.2b
    step train-tuned bench/train.py --device "$device" --dtype bf16 --config 1.2b --batch 8 \
        --compile
fi
cat "$out/timings.txt"
