#!/usr/bin/env bash
# The built-in suite's `full` run on a GPU machine that has no network (the device tool
# of this workplace): install the carried wheels, make a git repository of the carried
# tree, run `commitbench run --profile full` on its one commit, tar the CSV results.
#
#   cd .gpu && bash perf/suite_gpu.sh OUTDIR [extra `commitbench run` options]
#
# Expects ../.whl/*.whl (bitsandbytes, SQLAlchemy, psycopg[-binary], alembic, Mako,
# GitPython, gitdb, smmap) and ../.whl/git.deb for a machine without git. The commit is
# made with fixed author, committer and dates, so the same tree always has the same sha
# and a second call resumes (commitbench skips what is recorded) when the results of the
# first are carried back as ./results-in. BUDGET_S bounds the run (SIGINT, so the runner
# closes the run as interrupted and keeps what it measured).
set -u
OUTDIR=$1
shift
PY=${PY:-python3}
cd "$(dirname "$0")/.."
if [ -d ../.whl ] && ls ../.whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site ../.whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/service${PYTHONPATH:+:$PYTHONPATH}
if ! command -v git >/dev/null; then
    dpkg -x ../.whl/git.deb /tmp/gitroot || exit 1
    export PATH=/tmp/gitroot/usr/bin:$PATH GIT_EXEC_PATH=/tmp/gitroot/usr/lib/git-core
    export GIT_TEMPLATE_DIR=/tmp/gitroot/usr/share/git-core/templates
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
$PY -c 'import torch, bitsandbytes; print("torch", torch.__version__, "cuda", torch.version.cuda, "bitsandbytes", bitsandbytes.__version__)'

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
