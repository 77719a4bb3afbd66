"""Whether the runner that opened a run is still alive, judged from another process.

A run records who runs it (`identity()`, under `runner` in its environment): the host
name, /etc/machine-id, the kernel's boot id, the pid namespace, the pid and the pid's
start time (clock ticks since boot, /proc/PID/stat field 22). A later run on the same
machine marks a run still `running` as `interrupted` when `gone()` is certain its
runner is dead:

- same host (host name and machine id), same boot, same pid namespace, and the pid is
  not running, or is now another process (its start time differs: pids are reused);
- same host, another boot: every process of the earlier boot is gone.

Anything else is not judged: another host (or a container with its own host name or
pid namespace) may be alive and cannot be asked, and a run recorded before runs carried
`runner` says nothing. A live runner is never judged dead, whatever runs at the same
time: only a dead process fails the check, and a dead one does not come back. Runner
containers on several hosts must have distinct host names (a copy of one image shares
its machine id), or a live run on one host would read as a reboot on the other.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text("ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks after boot); None when there is none."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # Field 2 (the command name) may hold spaces and parentheses: split after its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


@functools.cache
def _host() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "machine_id": _read("/etc/machine-id"),
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_ns": _pid_namespace(),
    }


def identity() -> dict[str, Any]:
    """This process, as a later run can check it is alive (the module docstring)."""
    pid = os.getpid()
    return {**_host(), "pid": pid, "pid_start": start_ticks(pid)}


def gone(recorded: Any) -> bool:
    """Whether the runner `recorded` (a run's environment["runner"]) is certainly dead."""
    if not isinstance(recorded, Mapping):
        return False
    here = _host()
    if not here["host"] or recorded.get("host") != here["host"]:
        return False
    if recorded.get("machine_id") != here["machine_id"]:
        return False
    boot = recorded.get("boot_id")
    if boot != here["boot_id"]:
        return boot is not None and here["boot_id"] is not None  # rebooted since
    if here["pid_ns"] is None or recorded.get("pid_ns") != here["pid_ns"]:
        return False
    pid, started = recorded.get("pid"), recorded.get("pid_start")
    if not isinstance(pid, int) or not isinstance(started, int) or isinstance(pid, bool):
        return False
    return start_ticks(pid) != started
