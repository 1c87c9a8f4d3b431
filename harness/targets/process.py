"""Process plumbing shared by every target that runs a program: start it in
its own session with stdout/stderr in files, sample its CPU and memory, wait
until it listens, stop its whole process group and report.  Processes of the
target that left its group (``harness.targets.reaper``) are killed too; each
is noted, and fails the run (``TargetReport.failure``).

Readiness is read from ``/proc/net/tcp`` where possible, not probed with a
connection: an implementation may count a probe against its connection
limit (syslog-ng's max-connections()) for a while after it closed, and
reject a real sender for it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from parbench import interrupts
from parbench.harness.metrics import ProcSampler, reap_with_rusage, summarize_usage
from parbench.harness.targets import reaper
from parbench.harness.targets.base import TargetError, TargetReport

STDERR_TAIL_BYTES = 4000
#: the start of stderr, where implementations say what they could not set up
STDERR_HEAD_BYTES = 4000


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail_of(path: Path, limit: int = STDERR_TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    if size > limit:
        text = "..." + text[text.find("\n") + 1 :] if "\n" in text else "..." + text
    return text.strip()


def head_of(path: Path, limit: int = STDERR_HEAD_BYTES) -> str:
    """The first ``limit`` bytes of a file, cut at the last whole line."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError:
        return ""
    text = data[:limit].decode("utf-8", "replace")
    if len(data) > limit:
        text = (text[: text.rfind("\n")] if "\n" in text else text) + "\n..."
    return text.strip()


class ManagedProcess:
    """A child in its own session (so its whole group can be signalled), its
    stdout/stderr in files under workdir, sampled for CPU and RSS."""

    def __init__(self, argv: list[str], workdir: Path, label: str):
        self.argv = argv
        self.workdir = Path(workdir)
        self.label = label
        self.stderr_path = self.workdir / f"{label}.stderr"
        self.stdout_path = self.workdir / f"{label}.stdout"
        self.proc: subprocess.Popen | None = None
        self.sampler: ProcSampler | None = None
        self.exit_code: int | None = None
        self.cpu_seconds: float | None = None
        self.peak_rss_bytes: int | None = None
        self.killed = False
        self.token = reaper.new_token()
        self._start_ticks: int | None = None
        # "PID (argv)" of each process of the target still running after it
        # stopped, outside its process group; each was killed.
        self.leftovers: list[str] = []

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A signal between fork and the assignment would leave a child no
        # one stops: it waits until the child is known.
        reaper.become_subreaper()
        env = {**os.environ, reaper.TOKEN_VAR: self.token}
        with interrupts.deferred(), open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            try:
                self.proc = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    cwd=self.workdir, start_new_session=True, env=env,
                )
            except OSError as exc:
                raise TargetError(f"{self.label}: cannot start {self.argv[0]!r}: {exc}") from None
            reaper.live_leaders.add(self.proc.pid)
            stat = reaper.proc_stat(self.proc.pid)
            self._start_ticks = stat.start_ticks if stat else None
            self.sampler = ProcSampler(self.proc.pid).start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self) -> str:
        return tail_of(self.stderr_path)

    def stderr_head(self) -> str:
        return head_of(self.stderr_path)

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float, *, graceful: bool = True) -> None:
        """SIGTERM to the group, wait, SIGKILL what remains; always reaps.
        ``graceful=False``: SIGKILL at once (a crash: what it held is lost)."""
        if self.proc is None:
            return
        rusage_cpu = rusage_rss = None
        try:
            if self.sampler:
                self.sampler.sample()
            if self.proc.returncode is None and not graceful:
                self._signal_group(signal.SIGKILL)
                code, rusage_cpu, rusage_rss = reap_with_rusage(self.proc, 5.0)
            elif self.proc.returncode is None:
                self._signal_group(signal.SIGTERM)
                code, rusage_cpu, rusage_rss = reap_with_rusage(self.proc, timeout)
                if code is None:
                    self.killed = True
                    self._signal_group(signal.SIGKILL)
                    code, rusage_cpu, rusage_rss = reap_with_rusage(self.proc, 5.0)
            # A grandchild still in the group (the leader exited without
            # taking it down) must not outlive the run.
            self._signal_group(signal.SIGKILL)
        finally:
            if self.sampler:
                self.sampler.stop()
            if self.proc.returncode is None:
                try:
                    self.proc.kill()
                    self.proc.wait(timeout=5.0)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            reaper.live_leaders.discard(self.proc.pid)
            self.leftovers += reaper.kill_and_reap(
                reaper.leftovers(self.token, self.proc.pid, self._start_ticks))
            self.exit_code = self.proc.returncode
            self.cpu_seconds, self.peak_rss_bytes = summarize_usage(self.sampler, rusage_cpu, rusage_rss)


def usage_of(processes: list[ManagedProcess]) -> tuple[float | None, int | None]:
    """(CPU seconds, peak RSS) of a target that ran as several processes in
    turn (restarted): CPU adds up, the peak is the largest."""
    cpus = [p.cpu_seconds for p in processes if p.cpu_seconds is not None]
    rss = [p.peak_rss_bytes for p in processes if p.peak_rss_bytes is not None]
    return (sum(cpus) if cpus else None, max(rss) if rss else None)


def listening_inodes(port: int) -> set[str]:
    """Inodes of IPv4 TCP sockets listening on ``port`` on loopback or any
    address (from /proc/net/tcp)."""
    inodes = set()
    want = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    try:
        with open("/proc/net/tcp") as fh:
            next(fh, None)
            for line in fh:
                fields = line.split()
                if len(fields) > 9 and fields[1] in want and fields[3] == "0A":
                    inodes.add(fields[9])
    except OSError:
        pass
    return inodes


def owns_socket(pid: int, inodes: set[str]) -> bool | None:
    """Whether process ``pid`` holds one of ``inodes``; None when /proc cannot tell."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def stop_and_report(process: ManagedProcess, notes: list[str], timeout: float,
                    killed_note: str = "killed", earlier: list[ManagedProcess] | None = None) -> TargetReport:
    """Stop ``process`` (SIGTERM, then SIGKILL after ``timeout``) and report
    what every process target can: CPU, peak RSS, exit code, stderr tail.
    ``earlier``: the processes of the target killed before (restarts)."""
    process.stop(timeout)
    notes = list(notes)
    if process.killed:
        notes.append(f"did not exit within {timeout:g}s of SIGTERM; {killed_note}")
    every = [*(earlier or []), process]
    notes += leftover_notes(every)
    cpu, rss = usage_of(every)
    return TargetReport(cpu_seconds=cpu, peak_rss_bytes=rss,
                        exit_code=process.exit_code, stderr_tail=process.stderr_tail(),
                        stderr_head=process.stderr_head(), notes=notes, failure=leftover_failure(every))


def _processes(process: ManagedProcess | list[ManagedProcess]) -> list[ManagedProcess]:
    return process if isinstance(process, list) else [process]


def leftover_notes(process: ManagedProcess | list[ManagedProcess]) -> list[str]:
    """One note per process of the target that outlived it (and was killed)."""
    return [f"a process of the target was still running after the target stopped, outside its process "
            f"group: {text}; killed" for p in _processes(process) for text in p.leftovers]


def leftover_failure(process: ManagedProcess | list[ManagedProcess]) -> str | None:
    """The run's error when processes of the target outlived it, else None."""
    texts = [text for p in _processes(process) for text in p.leftovers]
    if not texts:
        return None
    n = len(texts)
    return (f"{n} process{'es' if n > 1 else ''} of the target still running after the target stopped "
            f"(killed): {'; '.join(texts)}")


def wait_for_port(host: str, port: int, timeout: float, process: ManagedProcess) -> None:
    """Until something listens on ``port``; TargetError if the process exits
    first or the timeout passes.  Readiness is read from /proc/net/tcp, not
    probed with a connection: an implementation may count a probe against
    its connection limit (syslog-ng's max-connections()) for a while after
    it closed, and reject a real sender for it.  Without /proc, a connect
    probe is the fallback."""
    deadline = time.monotonic() + timeout
    while True:
        if not process.alive():
            code = process.proc.returncode if process.proc else None
            raise TargetError(
                f"{process.label} exited with status {code} before accepting connections on "
                f"{host}:{port}; stderr tail:\n{process.stderr_tail() or '(empty)'}"
            )
        if listening_inodes(port):
            return
        if not os.path.exists("/proc/net/tcp"):
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                pass
        if time.monotonic() >= deadline:
            raise TargetError(
                f"{process.label} did not accept connections on {host}:{port} within {timeout:g}s; "
                f"stderr tail:\n{process.stderr_tail() or '(empty)'}"
            )
        time.sleep(0.05)
