"""runner/environ.py: the environment bench code gets, from plain mappings."""

from __future__ import annotations

import pytest

from commitbench.errors import ConfigError
from commitbench.runner.environ import bench_environment, check_pass_env

RUNNER = {
    "PATH": "/usr/bin",
    "HOME": "/home/ci",
    "LC_ALL": "C.UTF-8",
    "CUDA_VISIBLE_DEVICES": "0,1",
    "NCCL_SOCKET_IFNAME": "eth0",
    "NCCL_AUTH_TOKEN": "t0ken",  # an allowed family, a name that says it is a secret
    "TORCH_HOME": "/cache/torch",
    "PGPASSWORD": "pw",
    "COMMITBENCH_DB": "postgresql://u:pw@h/db",
    "GITHUB_TOKEN": "ghp",
    "HF_TOKEN": "hf",
    "HF_HOME": "/cache/hf",
    "MY_KNOB": "3",
    "LD_PRELOAD_X": "no",
}


def test_an_allow_list_and_the_names_passed() -> None:
    assert bench_environment(RUNNER) == {
        "PATH": "/usr/bin",
        "HOME": "/home/ci",
        "LC_ALL": "C.UTF-8",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "NCCL_SOCKET_IFNAME": "eth0",
        "TORCH_HOME": "/cache/torch",
        "HF_HOME": "/cache/hf",
    }
    passed = bench_environment(RUNNER, ("MY_KNOB", "NCCL_AUTH_TOKEN", "ABSENT"))
    assert passed["MY_KNOB"] == "3" and passed["NCCL_AUTH_TOKEN"] == "t0ken"
    assert "ABSENT" not in passed
    # Even a caller that did not check its names never passes the database's credentials.
    assert "PGPASSWORD" not in bench_environment(RUNNER, ("PGPASSWORD", "COMMITBENCH_DB"))


def test_pass_env_names_are_checked() -> None:
    assert check_pass_env(["MY_KNOB", "HF_TOKEN", "MY_KNOB"]) == ("MY_KNOB", "HF_TOKEN")
    for name in ("PGPASSWORD", "COMMITBENCH_DB", "PGPASSFILE", "pgpassword"):
        with pytest.raises(ConfigError, match="credentials are never given to bench code"):
            check_pass_env([name])
    with pytest.raises(ConfigError, match="is not an environment variable name"):
        check_pass_env(["A=B"])
