#!/usr/bin/env bash
# One device call on a host with two GPUs (the device tool's nvidia-h200-x2), the runs of
# issues 13-15 side by side, each on its own GPU:
#   GPU 0: perf/profile_gpu.sh (issue 14), then perf/launch_state.py, then
#          perf/gate_quality.py until the call's end (issue 13)
#   GPU 1: the hf_llama benches and the project's decoder (perf/hf_gpu.sh, issue 15)
# Everything is written under a scratch folder and packed into a few tarballs in OUT
# (the device tool returns at most 8 files).
#
#   bash perf/gpu_batch.sh OUT [SECONDS [PART]]   # SECONDS: the call's length [570]
#
# PART 2 is the second call of 2026-11-30 (what the first left): GPU 0 the check of
# perf/profile_gpu.sh alone (STEPS=3), then gate_quality; GPU 1 perf/launch_state.py,
# then the SDPA rows of hf_llama.variants, then gate_quality.
#
# PART 3 (written 2026-11-30 for the next GPU time): does the launch-bound state follow
# the CPU a worker runs on? Each stream keeps to its own half of the host's CPUs
# (taskset), so the two cannot meet on a core.
#   GPU 0, CPUs of the first half: perf/launch_state.py unpinned, then --pin (process k on
#          the k-th CPU), then gate_quality pinned to one CPU (--affinity) until the end
#   GPU 1, CPUs of the second half: the check of perf/profile_gpu.sh (STEPS=3), timing
#          with and without --trace (perf/profile_cost.py --device cuda), then
#          gate_quality unpinned until the end
set -u
OUT=$1 TOTAL=${2:-570} PART=${3:-1}
cd "$(dirname "$0")/.."
T0=$(date +%s)
W=/tmp/batch && rm -rf $W && mkdir -p $W
export WHEELS=${WHEELS:-$PWD/.whl}
. perf/gpu_env.sh > $W/env.txt 2>&1; cat $W/env.txt
export WHEELS=/nonexistent  # installed once, above: the streams must not install again
left() { echo $((TOTAL - ($(date +%s) - T0))); }
quality() {  # gate_quality on this stream's GPU until the call's end
    python3 perf/gate_quality.py --device cuda --aa 10 --ab 10 --budget 0.3 --seed "$1" \
        --first "$2" --deadline $(($(left) - 200)) --out $W/gq$1 > $W/gq$1.log 2>&1
}
if [ "$PART" = 3 ]; then
    n=$(nproc) half=$(($(nproc) / 2))
    on_cpus() {  # on_cpus A-B CMD...: CMD and its children on CPUs A..B (taskset, or python)
        local cpus=$1
        shift
        if command -v taskset > /dev/null; then
            taskset -c "$cpus" "$@"
        else
            python3 -c 'import os, sys
a, b = sys.argv[1].split("-")
os.sched_setaffinity(0, range(int(a), int(b) + 1))
os.execvp(sys.argv[2], sys.argv[2:])' "$cpus" "$@"
        fi
    }
    (
        export CUDA_VISIBLE_DEVICES=0
        mine=0-$((half - 1))
        on_cpus $mine timeout 170 python3 perf/launch_state.py --processes 16 \
            > $W/launch_free.txt 2>&1
        on_cpus $mine timeout 170 python3 perf/launch_state.py --processes 16 --pin \
            > $W/launch_pinned.txt 2>&1
        on_cpus $mine python3 perf/gate_quality.py --device cuda --aa 10 --ab 10 --budget 0.3 \
            --seed 51 --first compare --affinity 1 --deadline $(($(left) - 150)) \
            --out $W/gq51 > $W/gq51.log 2>&1
    ) &
    (
        export CUDA_VISIBLE_DEVICES=1
        mine=$half-$((n - 1))
        STEPS=3 STEP_S=320 on_cpus $mine bash perf/profile_gpu.sh $W/prof > $W/prof.log 2>&1
        on_cpus $mine timeout 150 python3 perf/profile_cost.py --device cuda --rounds 8 \
            > $W/profile_cost.txt 2>&1
        on_cpus $mine python3 perf/gate_quality.py --device cuda --aa 10 --ab 10 --budget 0.3 \
            --seed 52 --first check --deadline $(($(left) - 150)) --out $W/gq52 \
            > $W/gq52.log 2>&1
    ) &
    wait
    cd $W && tar czf "$OUT/part3.tgz" --exclude=results.tgz launch_free.txt launch_pinned.txt \
        prof prof.log profile_cost.txt gq51 gq51.log gq52 gq52.log env.txt
    ls -la "$OUT"; tail -30 launch_free.txt launch_pinned.txt; tail -3 prof/steps.log
    exit 0
fi
if [ "$PART" = 2 ]; then
    (
        export CUDA_VISIBLE_DEVICES=0
        STEPS=3 STEP_S=320 bash perf/profile_gpu.sh $W/prof > $W/prof.log 2>&1
        quality 41 check
    ) &
    (
        export CUDA_VISIBLE_DEVICES=1
        timeout 150 python3 perf/launch_state.py --processes 12 > $W/launch_state.txt 2>&1
        FILTER='hf_llama.variants[[]attn=sdpa,*' BUDGET_S=240 bash perf/hf_gpu.sh $W/variants \
            > $W/hf2.log 2>&1
        quality 42 compare
    ) &
    wait
    cd $W && tar czf "$OUT/part2.tgz" --exclude=results.tgz prof prof.log launch_state.txt \
        variants hf2.log gq41 gq41.log gq42 gq42.log env.txt
    ls -la "$OUT"; cat launch_state.txt | tail -40; tail -3 prof/steps.log
    exit 0
fi
(
    export CUDA_VISIBLE_DEVICES=0
    STEP_S=100 timeout -s INT 330 bash perf/profile_gpu.sh $W/prof > $W/prof.log 2>&1
    timeout 120 python3 perf/launch_state.py --processes 12 > $W/launch_state.txt 2>&1
    python3 perf/gate_quality.py --device cuda --aa 10 --ab 10 --budget 0.3 --seed 31 \
        --deadline $(($(left) - 200)) --out $W/gq31 > $W/gq31.log 2>&1
) &
(
    export CUDA_VISIBLE_DEVICES=1
    FILTER=hf_llama.generate BUDGET_S=240 bash perf/hf_gpu.sh $W/generate > $W/hf1.log 2>&1
    FILTER=hf_llama.variants BUDGET_S=$(($(left) - 110)) bash perf/hf_gpu.sh $W/variants > $W/hf2.log 2>&1
    FILTER=generation.decode BUDGET_S=$(($(left) - 30)) bash perf/hf_gpu.sh $W/decode > $W/hf3.log 2>&1
    python3 perf/hf_tables.py $W/generate $W/variants $W/decode > $W/hf_tables.md 2>&1
) &
wait
cd $W && tar czf "$OUT/prof.tgz" --exclude=results.tgz prof prof.log launch_state.txt env.txt
tar czf "$OUT/prof-results.tgz" prof/results.tgz 2>/dev/null
tar czf "$OUT/hf.tgz" --exclude=results.tgz generate variants decode hf*.log hf_tables.md
tar czf "$OUT/gq.tgz" gq31 gq31.log
ls -la "$OUT"; cat hf_tables.md launch_state.txt | tail -60
