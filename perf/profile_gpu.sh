#!/usr/bin/env bash
# Profiles on a GPU machine without network (the device tool of this workplace): the
# built-in suite's transformer and attention cases with --trace, a commit that swaps
# scaled_dot_product_attention for the naive attention (explain and check), a commit that
# keeps an activation alive (the memory peak and its sites), and the seed's figures.
#
#   cd .gpu && bash perf/profile_gpu.sh OUTDIR
#
# Expects the wheels of perf/gpu_env.sh in $WHEELS (default ../.whl). Commits:
#   A  the built-in suite as it is
#   B  A with benches/attention.py's "sdpa" implementation replaced by the naive one
#   C  A with benches/_model.py's SwiGLU keeping a copy of its hidden activation (B x T x d_ff
#      per layer, about 290 MiB for the small model in fp32) until its next call
set -u
OUTDIR=$(mkdir -p "$1" && cd "$1" && pwd)
shift
cd "$(dirname "$0")/.."
. perf/gpu_env.sh || exit 1

REPO=/tmp/profile-repo
RESULTS=/tmp/profile-results
rm -rf "$REPO" "$RESULTS" && mkdir -p "$REPO" "$RESULTS" && cp -r benches "$REPO"/ || exit 1
export GIT_AUTHOR_NAME=commitbench GIT_AUTHOR_EMAIL=suite@commitbench.invalid
export GIT_COMMITTER_NAME=commitbench GIT_COMMITTER_EMAIL=suite@commitbench.invalid
export GIT_AUTHOR_DATE="2026-11-30T00:00:00+00:00" GIT_COMMITTER_DATE="2026-11-30T00:00:00+00:00"
g() { git -C "$REPO" "$@"; }
g init -q -b main && g add -A && g commit -q -m "built-in suite" || exit 1
A=$(g rev-parse HEAD)
sed -i 's/^        return F.scaled_dot_product_attention$/        return naive/' "$REPO/benches/attention.py"
g diff --stat | grep -q attention.py || { echo "attention.py: the sdpa line was not found"; exit 1; }
g commit -q -am "attention: naive instead of scaled_dot_product_attention"
B=$(g rev-parse HEAD)
g checkout -q -b leak "$A"
sed -i 's/^        return self.w2(F.silu(self.w1(x)) \* self.w3(x))$/        h = F.silu(self.w1(x)) * self.w3(x)\n        self.kept = h.detach().clone()  # a copy held until the next call\n        return self.w2(h)/' "$REPO/benches/_model.py"
g diff --stat | grep -q _model.py || { echo "_model.py: the SwiGLU line was not found"; exit 1; }
g commit -q -am "SwiGLU keeps its hidden activation"
C=$(g rev-parse HEAD)
echo "A=$A B=$B C=$C" | tee "$OUTDIR/commits.txt"

# Each commitbench call is bounded (SIGINT: a run closes as interrupted, keeping what it
# measured), so the whole script stays inside one 10-minute device call.
CB="timeout -s INT ${STEP_S:-240} $PY -m commitbench"
W=(--repo "$REPO" --benches benches --results "$RESULTS")
ATT='attention.single_head[d=64,impl=sdpa,seq=4096]'
LM='transformer.lm[context=512,dtype=fp32,size=small]'
export COLUMNS=200
T0=$(date +%s)
step() { echo "== [$(($(date +%s) - T0)) s] $*" | tee -a "$OUTDIR/steps.log"; }
# STEPS: which of the steps below to run [123456]; e.g. STEPS=3 STEP_S=300 for the check
# alone (it measures both commits itself).
STEPS=${STEPS:-123456}
want() { [[ $STEPS == *$1* ]]; }

if want 1; then
step "1. transformer (small) and attention at A, B, C with --trace"
t0=$(date +%s)
$CB run "$A" "${W[@]}" --trace --filter 'size=small' 2>&1 | tee "$OUTDIR/run_transformer.log" | tail -5
$CB run "$A" "$B" "${W[@]}" --trace --filter 'd=64,impl=sdpa,seq=4096' 2>&1 | tee "$OUTDIR/run_attention.log" | tail -5
$CB run "$A" "${W[@]}" --trace --filter 'd=64,impl=naive,seq=4096' 2>&1 | tail -3
$CB run "$C" "${W[@]}" --trace --filter 'dtype=fp32,size=small' 2>&1 | tail -3
echo "runs: $(($(date +%s) - t0)) s" | tee -a "$OUTDIR/steps.log"
fi
if want 2; then
step "2. explain A B (SDPA -> naive) for $ATT"
$CB explain "$A" "$B" --case "$ATT" --repo "$REPO" --results "$RESULTS" | tee "$OUTDIR/explain_attention.txt"
$CB explain "$A" "$B" --case "$ATT" --part forward --repo "$REPO" --results "$RESULTS" --markdown > "$OUTDIR/explain_attention_forward.md"
$CB explain "$A" "$B" --case "$ATT" --repo "$REPO" --results "$RESULTS" --json > "$OUTDIR/explain_attention.json"
fi
if want 3; then
step "3. check A B --trace on $ATT (confirms, then explains)"
$CB check "$A" "$B" "${W[@]}" --trace --filter 'd=64,impl=sdpa,seq=4096' --markdown > "$OUTDIR/check.md" 2> "$OUTDIR/check.err"
echo "check exit $?" | tee -a "$OUTDIR/steps.log"
fi
if want 4; then
step "4. explain A C (an activation kept) for $LM: memory peak and sites"
$CB explain "$A" "$C" --case "$LM" --repo "$REPO" --results "$RESULTS" | tee "$OUTDIR/explain_memory.txt"
$CB explain "$A" "$C" --case "$LM" --repo "$REPO" --results "$RESULTS" --json > "$OUTDIR/explain_memory.json"
fi
if want 5; then
step "5. the seed's figures at A"
$PY perf/profile_figures.py --repo "$REPO" --results "$RESULTS" "$A" \
    --attention-case 'attention.single_head[d=64,impl=naive,seq=4096]' | tee "$OUTDIR/figures.txt"
fi
if want 6; then
step "6. trace and snapshot sizes (gzipped bytes, largest last)"
find "$RESULTS" -name '*.gz' -printf '%s %p\n' 2>/dev/null | sort -n | tail -20 | tee "$OUTDIR/artifacts.txt"
tar czf "$OUTDIR/results.tgz" -C "$RESULTS" .
fi
step "done"
ls -la "$OUTDIR"
