"""Every process a target started, also those that left its process group.

A target runs in a session of its own, so one signal to its process group
stops it and its ordinary children.  A child that calls ``setsid()`` (a
daemon: fork, setsid, fork again) leaves that group and would outlive the
run, still listening.  Three things find such processes (Linux, /proc):

* the harness is a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``): an
  orphan among a target's descendants is re-parented to the harness, not to
  init, so it stays findable and is reaped, never left a zombie;
* every target starts with a token in its environment
  (``PARBENCH_TARGET_ID``), which its descendants inherit;
* a process in the target's session or process group is the target's.

``leftovers()`` lists what is still there after the target stopped: the
processes with its token, in its session or group, the harness's adopted
children that started after the target did (other than the leaders of
targets still running) and the descendants of all of these.  ``kill_and_reap``
kills them and reaps those that are the harness's children.

The subreaper setting is for the whole harness process and stays on: any
orphan of anything the harness started is adopted, and reaped when a target
stops.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import signal
import time
from dataclasses import dataclass

#: the environment variable carrying a target's token to its descendants
TOKEN_VAR = "PARBENCH_TARGET_ID"
PR_SET_CHILD_SUBREAPER = 36
#: how long a killed leftover may take to disappear
REAP_TIMEOUT_S = 5.0

_subreaper: bool | None = None
#: pids of target leaders started and not yet stopped (not leftovers of another)
live_leaders: set[int] = set()


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (once);
    False where the kernel or libc does not offer it."""
    global _subreaper
    if _subreaper is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _subreaper = False
    return _subreaper


def new_token() -> str:
    return secrets.token_hex(12)


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    start_ticks: int  # since boot, in clock ticks


def proc_stat(pid: int) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return ProcStat(pid, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def _has_token(pid: int, token: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return False
    return f"{TOKEN_VAR}={token}".encode() in environ.split(b"\0")


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids += [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            pass
    return kids


def describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        argv = []
    text = " ".join(argv) or "?"
    return text if len(text) <= 100 else text[:97] + "..."


def leftovers(token: str, leader: int, leader_start_ticks: int | None) -> list[ProcStat]:
    """The processes of the target led by ``leader`` (see the module's
    docstring), zombies included; never this process."""
    me = os.getpid()
    my_session = os.getsid(0)
    found: dict[int, ProcStat] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me or pid in live_leaders:
            continue
        st = proc_stat(pid)
        if st is None:
            continue
        if st.session == leader or st.pgrp == leader:
            found[pid] = st
        elif (st.ppid == me and st.session != my_session and leader_start_ticks is not None
              and st.start_ticks >= leader_start_ticks):
            found[pid] = st  # adopted by the subreaper: an orphan of the target
        elif st.state != "Z" and _has_token(pid, token):
            found[pid] = st
    stack = list(found)
    while stack:
        for kid in _children(stack.pop()):
            if kid not in found and kid != me:
                st = proc_stat(kid)
                if st is not None:
                    found[kid] = st
                    stack.append(kid)
    return sorted(found.values(), key=lambda s: s.pid)


def kill_and_reap(procs: list[ProcStat], timeout: float = REAP_TIMEOUT_S) -> list[str]:
    """SIGKILL every process of ``procs`` still running, reap those that are
    this process's children; one description per process that was still
    running ("PID (argv)").  Zombies are reaped without a word."""
    me = os.getpid()
    running = []
    for st in procs:
        if st.state != "Z":
            running.append(f"{st.pid} ({describe(st.pid)})")
            try:
                os.kill(st.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    mine = {st.pid for st in procs if st.ppid == me}
    deadline = time.monotonic() + timeout
    for st in procs:
        if st.pid in mine:
            while True:
                try:
                    pid, _ = os.waitpid(st.pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid or time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
        else:
            # Someone else's child (init adopted it): wait until it is gone.
            while os.path.exists(f"/proc/{st.pid}") and (proc_stat(st.pid) or st).state != "Z" \
                    and time.monotonic() < deadline:
                time.sleep(0.01)
    return running
