# Sourced by the scripts that run commitbench on a GPU machine without network (the
# device tool of this workplace): installs the carried wheels into /tmp/site, puts
# service/ on PYTHONPATH and, where the machine has no git, a carried git binary on PATH.
#
#   WHEELS  folder of wheels (bitsandbytes, SQLAlchemy, psycopg[-binary], alembic, Mako,
#           GitPython, gitdb, smmap) and of git.deb or git-min.tar.xz [../.whl]
PY=${PY:-python3}
WHEELS=${WHEELS:-../.whl}
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$WHEELS"/*.whl || return 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/service${PYTHONPATH:+:$PYTHONPATH}
if ! command -v git >/dev/null; then
    mkdir -p /tmp/gitroot
    if [ -f "$WHEELS/git-min.tar.xz" ]; then
        tar -C /tmp/gitroot -xJf "$WHEELS/git-min.tar.xz" || return 1
        mkdir -p /tmp/gitroot/usr/lib/git-core
    else
        dpkg -x "$WHEELS/git.deb" /tmp/gitroot || return 1
    fi
    export PATH=/tmp/gitroot/usr/bin:$PATH GIT_EXEC_PATH=/tmp/gitroot/usr/lib/git-core
    export GIT_TEMPLATE_DIR=/tmp/gitroot/usr/share/git-core/templates
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
$PY -c 'import torch, bitsandbytes; print("torch", torch.__version__, "cuda", torch.version.cuda, "bitsandbytes", bitsandbytes.__version__)'
