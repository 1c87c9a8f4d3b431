"""Process plumbing shared by every target that runs a program: start it in
its own session with stdout/stderr in files, sample its CPU and memory, wait
until it listens, stop its whole process group and report.

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

from parbench.harness.metrics import ProcSampler, reap_with_rusage, summarize_usage
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

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            try:
                self.proc = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    cwd=self.workdir, start_new_session=True,
                )
            except OSError as exc:
                raise TargetError(f"{self.label}: cannot start {self.argv[0]!r}: {exc}") from None
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

    def stop(self, timeout: float) -> None:
        """SIGTERM to the group, wait, SIGKILL what remains; always reaps."""
        if self.proc is None:
            return
        rusage_cpu = rusage_rss = None
        try:
            if self.sampler:
                self.sampler.sample()
            if self.proc.returncode is None:
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
            self.exit_code = self.proc.returncode
            self.cpu_seconds, self.peak_rss_bytes = summarize_usage(self.sampler, rusage_cpu, rusage_rss)


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
                    killed_note: str = "killed") -> TargetReport:
    """Stop ``process`` (SIGTERM, then SIGKILL after ``timeout``) and report
    what every process target can: CPU, peak RSS, exit code, stderr tail."""
    process.stop(timeout)
    notes = list(notes)
    if process.killed:
        notes.append(f"did not exit within {timeout:g}s of SIGTERM; {killed_note}")
    return TargetReport(cpu_seconds=process.cpu_seconds, peak_rss_bytes=process.peak_rss_bytes,
                        exit_code=process.exit_code, stderr_tail=process.stderr_tail(),
                        stderr_head=process.stderr_head(), notes=notes)


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
