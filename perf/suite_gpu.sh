#!/usr/bin/env bash
# The built-in suite's `full` run on a GPU machine that has no network (the device tool
# of this workplace): install the carried wheels, make a git repository of the carried
# tree, run `commitbench run --profile full` on its one commit, tar the CSV results.
#
#   cd .gpu && bash perf/suite_gpu.sh OUTDIR [extra `commitbench run` options]
#
# Expects the wheels of perf/gpu_env.sh in $WHEELS (default ../.whl). The commit is
# made with fixed author, committer and dates, so the same tree always has the same sha
# and a second call resumes (commitbench skips what is recorded) when the results of the
# first are carried back as ./results-in. BUDGET_S bounds the run (SIGINT, so the runner
# closes the run as interrupted and keeps what it measured).
set -u
OUTDIR=$1
shift
cd "$(dirname "$0")/.."
. perf/gpu_env.sh || exit 1

REPO=/tmp/suite-repo
rm -rf "$REPO" && mkdir -p "$REPO" && cp -r benches "$REPO"/ || exit 1
export GIT_AUTHOR_NAME=commitbench GIT_AUTHOR_EMAIL=suite@commitbench.invalid
export GIT_COMMITTER_NAME=commitbench GIT_COMMITTER_EMAIL=suite@commitbench.invalid
export GIT_AUTHOR_DATE="2026-11-21T00:00:00+00:00" GIT_COMMITTER_DATE="2026-11-21T00:00:00+00:00"
(cd "$REPO" && git init -q -b suite && git add -A && git commit -q -m "built-in suite" && git log --oneline)

RESULTS=/tmp/suite-results
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
[ -d results-in ] && cp -r results-in/. "$RESULTS"/
COLUMNS=200 timeout -s INT "${BUDGET_S:-540}" $PY -m commitbench run --repo "$REPO" \
    --benches benches --results "$RESULTS" --trigger manual "$@" 2>&1 | tee "$OUTDIR/run.log"
tar czf "$OUTDIR/results.tgz" -C "$RESULTS" .
ls -la "$OUTDIR"

# RERUN=1: what a second run of the same commit costs (the store is asked first: no
# worktree, no worker), and one result shown in full.
if [ "${RERUN:-0}" = 1 ]; then
    t0=$(date +%s)
    $PY -m commitbench run --repo "$REPO" --benches benches --results "$RESULTS" "$@" \
        > "$OUTDIR/rerun.log" 2>&1
    echo "re-run of a recorded commit: exit $?, $(($(date +%s) - t0)) s"
    tail -3 "$OUTDIR/rerun.log"
    $PY -m commitbench show --repo "$REPO" --results "$RESULTS" \
        --case "${SHOW_CASE:-matmul.dense[impl=bf16,shape=4096x12288]}" 2>&1 | tee "$OUTDIR/show.txt" | head -60
fi
