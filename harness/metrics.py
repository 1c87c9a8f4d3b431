"""Per-run metrics: throughput, end-to-end latency, CPU and memory of a target.

Throughput window (the definition every report repeats):
    Messages whose send time is within the first ``warmup_s`` seconds of the
    run (counted from the first message sent) are excluded, but never more
    than the first half of the messages received: a sender that pushes
    everything into the target's window within the warm-up would otherwise
    leave only a few stragglers to measure (seen: 200k messages sent in
    0.4 s, "throughput" taken from 3 late arrivals).  Of the remaining
    received messages, the window runs from the first to the last *receive*
    time; throughput = (n - 1) / (t_last_recv - t_first_recv), n = number of
    those messages (n - 1 intervals between n arrivals).  When the warm-up
    would leave fewer than 2 messages (very short runs) the warm-up is not
    applied and ``warmup_applied`` is False.

Latency: ``recv_ns - sent_ns`` per received message (both ``time.time_ns()``
realtime clocks of the same host), all messages after the same warm-up,
reported in milliseconds as p50 / p99 / max.

CPU and memory: ``ProcSampler`` reads ``/proc/PID/stat`` (utime + stime +
cutime + cstime, i.e. including reaped children) and ``/proc/PID/status``
(VmHWM, the peak resident set) periodically from a background thread, so a
figure exists even if the process is killed; ``reap_with_rusage`` reaps the
process with ``wait4`` for the exact final CPU time and peak RSS.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
import numpy as np

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Throughput:
    msgs_per_s: float | None
    messages: int  # messages inside the window
    window_s: float | None
    warmup_applied: bool


def after_warmup(sent_ns: np.ndarray, warmup_s: float) -> np.ndarray | None:
    """Mask of the messages after the warm-up (see the module docstring), or
    None when no warm-up applies."""
    n = sent_ns.size
    if warmup_s <= 0 or n < 2:
        return None
    cutoff = int(sent_ns.min()) + int(warmup_s * 1e9)
    # Never exclude more than half: messages sent before the median send time.
    cutoff = min(cutoff, int(np.partition(sent_ns, n // 2)[n // 2]))
    mask = sent_ns >= cutoff
    return mask if mask.sum() >= 2 else None


def throughput(sent_ns: np.ndarray, recv_ns: np.ndarray, warmup_s: float = 0.0) -> Throughput:
    sent_ns = np.asarray(sent_ns, dtype=np.int64)
    recv_ns = np.asarray(recv_ns, dtype=np.int64)
    if recv_ns.size < 2:
        return Throughput(None, int(recv_ns.size), None, False)
    mask = after_warmup(sent_ns, warmup_s)
    selected = recv_ns if mask is None else recv_ns[mask]
    t0, t1 = int(selected.min()), int(selected.max())
    window_s = (t1 - t0) / 1e9
    if window_s <= 0:
        return Throughput(None, int(selected.size), window_s, mask is not None)
    return Throughput((selected.size - 1) / window_s, int(selected.size), window_s, mask is not None)


def latency_ms(sent_ns: np.ndarray, recv_ns: np.ndarray, warmup_s: float = 0.0) -> dict[str, float | None]:
    sent_ns = np.asarray(sent_ns, dtype=np.int64)
    recv_ns = np.asarray(recv_ns, dtype=np.int64)
    if sent_ns.size == 0:
        return {"p50": None, "p99": None, "max": None}
    mask = after_warmup(sent_ns, warmup_s)
    if mask is not None:
        sent_ns, recv_ns = sent_ns[mask], recv_ns[mask]
    lat = (recv_ns - sent_ns).astype(np.float64) / 1e6
    p50, p99 = np.percentile(lat, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": float(lat.max())}


def read_proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime + cutime + cstime of ``pid`` (readable for zombies too)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split
    # after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    except (IndexError, ValueError):
        return None
    return ticks / _CLK_TCK


def read_proc_peak_rss(pid: int) -> int | None:
    """VmHWM (peak resident set) in bytes, or VmRSS when VmHWM is missing."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            name, rest = line.split(":", 1)
            try:
                values[name] = int(rest.split()[0]) * 1024
            except (IndexError, ValueError):
                pass
    return values.get("VmHWM", values.get("VmRSS"))


def _descendants(pid: int) -> list[int]:
    """Children (recursively) through /proc/PID/task/*/children."""
    found: list[int] = []
    stack = [pid]
    while stack and len(found) < 256:
        current = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except (OSError, ValueError):
                continue
            found += kids
            stack += kids
    return found


class ProcSampler:
    """Samples CPU seconds and peak RSS of a process (and its live children)
    every ``interval`` seconds from a daemon thread until ``stop()``."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid = pid
        self.interval = interval
        self.cpu_seconds: float | None = None
        self.peak_rss_bytes: int | None = None
        self._children_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"procsampler-{pid}", daemon=True)

    def start(self) -> "ProcSampler":
        self._thread.start()
        return self

    def sample(self) -> None:
        own = read_proc_cpu_seconds(self.pid)
        if own is None:
            return
        rss = read_proc_peak_rss(self.pid)
        for child in _descendants(self.pid):
            cpu = read_proc_cpu_seconds(child)
            if cpu is not None:
                self._children_cpu[child] = max(cpu, self._children_cpu.get(child, 0.0))
            child_rss = read_proc_peak_rss(child)
            if child_rss is not None:
                rss = (rss or 0) + child_rss
        # Reaped children are in the parent's cutime/cstime; live ones come
        # from their own stat. A child seen alive and later reaped would be
        # counted twice, so this is an upper bound for multi-process targets.
        total = own + sum(self._children_cpu.values())
        self.cpu_seconds = max(total, self.cpu_seconds or 0.0)
        if rss is not None:
            self.peak_rss_bytes = max(rss, self.peak_rss_bytes or 0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)


def reap_with_rusage(proc: subprocess.Popen, timeout: float) -> tuple[int | None, float | None, int | None]:
    """Wait up to ``timeout`` s for ``proc`` to exit and reap it with wait4:
    (exit code, CPU seconds incl. reaped children, peak RSS bytes).  All None
    when it did not exit in time (the caller then kills it)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.returncode is not None:
            return proc.returncode, None, None
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            proc.poll()
            return proc.returncode, None, None
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            return proc.returncode, cpu, usage.ru_maxrss * 1024
        if time.monotonic() >= deadline:
            return None, None, None
        time.sleep(0.02)


def summarize_usage(sampler: ProcSampler | None, rusage_cpu: float | None, rusage_rss: int | None) -> tuple[float | None, int | None]:
    """(CPU seconds, peak RSS bytes) from the two views.  CPU: the larger
    (wait4 sees time after the last sample).  RSS: the sampler's VmHWM
    first, because Linux's ru_maxrss of a forked child also counts the
    parent's resident set at fork time (it survives exec)."""
    cpu_candidates = [x for x in (rusage_cpu, sampler.cpu_seconds if sampler else None) if x is not None]
    rss = sampler.peak_rss_bytes if sampler and sampler.peak_rss_bytes else rusage_rss
    return (max(cpu_candidates) if cpu_candidates else None, rss)


def describe_window() -> str:
    """One paragraph for reports."""
    return (
        "Throughput window: messages sent during the first warm-up seconds of a run "
        "are excluded (never more than the first half of them); of the rest, throughput = (n - 1) / (last receive time - first "
        "receive time). Latency = receive time - send time (same host, realtime clock), "
        "after the warm-up; p50/p99/max in milliseconds. CPU seconds = user + system time "
        "of the target's process and its children; peak RSS = largest resident set seen."
    )

