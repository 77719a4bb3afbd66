#!/usr/bin/env bash
# perf/gate_quality.py on every GPU of a host at once, one independent stream per GPU
# (CUDA_VISIBLE_DEVICES), then one merged report. Each stream builds its own repository
# and measures only on its own GPU; the host's CPUs are many more than the streams need.
#
#   perf/gate_quality_gpu.sh OUTDIR DEADLINE_S SEED [gate_quality.py options...]
#
# Stream g uses seed SEED+g and starts with check on even g, compare on odd g, so the two
# decisions get equal numbers of commands. Merge several calls' outputs with
#   python3 perf/gate_quality.py --merge OUT1/gq*/gate_quality.json ... --out OUT
set -u
out=$1 deadline=$2 seed=$3
shift 3
gpus=$(nvidia-smi -L | wc -l)
mkdir -p "$out"
for ((g = 0; g < gpus; g++)); do
    first=check
    ((g % 2)) && first=compare
    CUDA_VISIBLE_DEVICES=$g python3 perf/gate_quality.py --device cuda --deadline "$deadline" \
        --seed $((seed + g)) --first $first --out "$out/gq$seed-$g" "$@" \
        >"$out/gq$seed-$g.log" 2>&1 &
done
wait
python3 perf/gate_quality.py --merge "$out"/gq*/gate_quality.json --out "$out"
