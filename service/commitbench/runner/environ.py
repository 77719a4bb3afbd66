"""The environment bench code runs in: an allow-list, not the runner's environment.

Bench code is untrusted (a pull request's), and so is what `--setup` installs; the
runner's environment holds secrets (`PGPASSWORD`, `COMMITBENCH_DB` with a password, CI
tokens, cloud keys). Workers, the environment probe and `--setup` commands get only:

- the variables in `ALLOWED` and those starting with a prefix in `ALLOWED_PREFIXES`,
  each with its reason below, unless the name says it is a secret (`SECRET_WORDS`:
  `NCCL_..._TOKEN` would be dropped too);
- the names the user passes with `--pass-env NAME` (run, check, bisect, worker), as
  they are in the runner's environment, except `NEVER_PASSED`: the database's
  credentials, refused even when named (`check_pass_env`).

What this does not do: bench code runs as the runner's user, so it can read every file
that user can (`~/.pgpass`, `~/.git-credentials`, `~/.aws`), the environment of that
user's other processes (`/proc/PID/environ` of the shell that started the runner), and
signal or trace them. Scrubbing keeps secrets out of the process and its logs; only a
separate user or a container keeps them from code that goes looking (README,
"Untrusted bench code").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from commitbench.errors import ConfigError

ALLOWED = frozenset(
    {
        # Finding programs (nvcc, ninja and the C compiler torch.compile and triton
        # build with) and the user's home (caches under ~/.cache, the user site).
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",  # getpass.getuser(): torch inductor's cache directory is per user
        "SHELL",
        # Text encoding, messages and local time: a bench's output and its timestamps.
        "LANG",
        "LANGUAGE",
        "TZ",
        # Temporary files (torch.compile, triton and tempfile write there).
        "TMPDIR",
        "TMP",
        "TEMP",
        # Where caches go: torch hub, triton, Hugging Face models (not its token).
        "XDG_CACHE_HOME",
        "HF_HOME",
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "TRANSFORMERS_CACHE",
        # Shared libraries (the CUDA libraries on many hosts) and the interpreter's
        # environment (a setup command's `pip` finds the virtual environment by PATH,
        # but some tools read these).
        "LD_LIBRARY_PATH",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        # Compilers for extensions a setup command or torch.compile builds.
        "CC",
        "CXX",
        "CUDAHOSTCXX",
        # bitsandbytes: which CUDA runtime it loads.
        "BNB_CUDA_VERSION",
        # The built-in suite's switch for a case that can hang a shared GPU.
        "COMMITBENCH_OVERSUBSCRIBE",
        # The container runtime's view of the GPUs.
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        # How Python starts and behaves: a Python that needs PYTHONHOME to find its
        # library needs it in the worker too; PYTHONPATH is rebuilt around the worktree.
        "PYTHONHOME",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONPYCACHEPREFIX",
        "PYTHONWARNINGS",
        "PYTHONNOUSERSITE",
        "PYTHONUSERBASE",
        "PYTHONFAULTHANDLER",
        "PYTHONUNBUFFERED",
    }
)

ALLOWED_PREFIXES = (
    "LC_",  # the locale's categories (LC_ALL, LC_CTYPE, ...)
    # Which GPUs and how CUDA behaves: CUDA_VISIBLE_DEVICES, CUDA_HOME,
    # CUDA_LAUNCH_BLOCKING, CUDA_DEVICE_ORDER, CUDA_MODULE_LOADING, CUDA_CACHE_PATH.
    "CUDA_",
    "NCCL_",  # collectives: interfaces, transports, debugging (the all-reduce bench)
    # torch, its compiler and its allocator: TORCH_HOME, TORCH_CUDA_ARCH_LIST,
    # TORCHINDUCTOR_CACHE_DIR, TORCH_LOGS, PYTORCH_CUDA_ALLOC_CONF, ...
    "TORCH_",
    "TORCHINDUCTOR_",
    "TORCHDYNAMO_",
    "PYTORCH_",
    "TRITON_",  # triton's cache and compiler paths
    # Threads of the CPU math libraries: a benchmark's figures depend on them.
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "KMP_",
    "GOMP_",
)

# A name with one of these words is not let through by a prefix (pass it by name).
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "API_KEY", "AUTH")

# The database's credentials: never given to bench code, even when named.
NEVER_PASSED = frozenset(
    {
        "COMMITBENCH_DB",
        "PGPASSWORD",
        "PGPASSFILE",
        "PGSERVICEFILE",
        "COMMITBENCH_READONLY_PASSWORD",
        "COMMITBENCH_GIT_PASSWORD",
    }
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_pass_env(names: Iterable[str]) -> tuple[str, ...]:
    """The names given with --pass-env, checked: ConfigError (exit 2) for one that is no
    variable name or is a database credential."""
    checked = []
    for name in names:
        if not _NAME.fullmatch(name):
            raise ConfigError(f"--pass-env {name!r} is not an environment variable name")
        if name.upper() in NEVER_PASSED:
            raise ConfigError(
                f"--pass-env {name}: the database's credentials are never given to bench code"
            )
        checked.append(name)
    return tuple(dict.fromkeys(checked))


def _allowed(name: str) -> bool:
    if name in ALLOWED:
        return True
    if not name.startswith(ALLOWED_PREFIXES):
        return False
    return not any(word in name.upper() for word in SECRET_WORDS)


def bench_environment(source: Mapping[str, str], passed: Iterable[str] = ()) -> dict[str, str]:
    """What bench code (a worker, the probe, --setup) sees of `source`: the allow-list
    and the `passed` names (checked by check_pass_env), nothing else."""
    named = set(passed) - NEVER_PASSED
    return {k: v for k, v in source.items() if (_allowed(k) or k in named)}
