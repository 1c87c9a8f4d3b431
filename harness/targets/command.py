"""``command:ARGV``: any program that takes syslog on a loopback port and
writes each processed message, as one line with the original MSG intact, to
another loopback port.

ARGV is a shell-like template (split with ``shlex``, never run through a
shell) with ``{in_port}`` (where the program must listen, newline framing)
and ``{out_port}`` (where the harness's collector listens).  The harness picks
a free loopback ``in_port``, waits until it accepts connections, and on stop
signals the program's whole process group (SIGTERM, then SIGKILL).
"""
from __future__ import annotations

import shlex
from pathlib import Path

from parbench.harness.targets.base import Target, TargetError, TargetPlan, TargetReport
from parbench.harness.targets.kind import BadArgument, ImplSpec, TargetKind
from parbench.harness.targets.process import ManagedProcess, free_loopback_port, stop_and_report, wait_for_port

EXAMPLE = "command:python3 relay.py --listen {in_port} --forward {out_port}"


def parse_command_template(template: str, in_port: int, out_port: int) -> list[str]:
    try:
        parts = shlex.split(template)
    except ValueError as exc:
        raise TargetError(f"command target: cannot split {template!r}: {exc}") from None
    if not parts:
        raise TargetError(f"command target: empty command; expected e.g. {EXAMPLE!r}")
    argv = []
    for part in parts:
        try:
            argv.append(part.format(in_port=in_port, out_port=out_port))
        except (KeyError, IndexError, ValueError) as exc:
            raise TargetError(
                f"command target: bad placeholder in {part!r} ({exc}); only {{in_port}} and {{out_port}} exist"
            ) from None
    return argv


class CommandTarget(Target):
    def __init__(self, template: str, name: str | None = None):
        self.template = template
        if "{in_port}" not in template:
            raise TargetError(f"command target: {template!r} has no {{in_port}} placeholder; the harness must tell the program where to listen")
        self.name = name or ("command:" + template)
        self._process: ManagedProcess | None = None
        self._killed: list[ManagedProcess] = []  # processes before a restart
        self._notes: list[str] = []
        self._argv: list[str] = []
        self._in_port = 0
        self._workdir = Path(".")

    def start(self, plan: TargetPlan, out_port: int, workdir: Path, timeout: float = 30.0) -> tuple[str, int]:
        if plan.partitions:
            self._notes.append(
                f"command targets get no partition count; partitions={plan.partitions} is a label only"
            )
        self._in_port = free_loopback_port()
        self._argv = parse_command_template(self.template, self._in_port, out_port)
        self._workdir = Path(workdir)
        return self._launch(timeout)

    def _launch(self, timeout: float) -> tuple[str, int]:
        label = f"command-{len(self._killed)}" if self._killed else "command"
        self._process = ManagedProcess(self._argv, self._workdir, label)
        self._process.start()
        wait_for_port("127.0.0.1", self._in_port, timeout, self._process)
        return "127.0.0.1", self._in_port

    def restart(self, timeout: float = 30.0) -> tuple[str, int]:
        """SIGKILL, then the same command again: it must listen on the same port."""
        if self._process is None:
            raise TargetError("command target: restart before start")
        self._process.stop(0, graceful=False)
        self._killed.append(self._process)
        return self._launch(timeout)

    def stop(self, timeout: float = 15.0) -> TargetReport:
        if self._process is None:
            return TargetReport(notes=list(self._notes))
        return stop_and_report(self._process, self._notes, timeout, earlier=self._killed)


class CommandKind(TargetKind):
    name = "command"
    syntax = "command:ARGV"
    summary = "any program that listens on {in_port} and writes each message as a line to {out_port}"
    argument = "required"

    def check_argument(self, argument: str | None) -> str | None:
        expected = "command:ARGV with {in_port} and {out_port} in ARGV"
        argument = super().check_argument(argument)
        missing = [p for p in ("{in_port}", "{out_port}") if p not in argument]
        if missing:
            raise BadArgument(expected, "no " + " and no ".join(missing))
        try:
            parse_command_template(argument, 1, 2)
        except TargetError as exc:
            raise BadArgument(expected, str(exc).removeprefix("command target: ")) from None
        return argument

    def label(self, spec: ImplSpec) -> str:
        """File names instead of paths, and without the port arguments the
        harness fills in: ``command: python3 relay.py --drop-one``."""
        try:
            words = shlex.split(spec.argument or "")
        except ValueError:
            words = (spec.argument or "").split()
        kept: list[str] = []
        for word in words:
            if "{in_port}" in word or "{out_port}" in word:
                if kept and kept[-1].startswith("-"):
                    kept.pop()
                continue
            kept.append(word.rsplit("/", 1)[-1] if "/" in word and not word.startswith("-") else word)
        return "command: " + " ".join(kept)

    def names_a_program(self, spec: ImplSpec) -> bool:
        return True

    def make(self, spec: ImplSpec, *, profile: str | None = None) -> CommandTarget:
        return CommandTarget(spec.argument or "", name=spec.text)


KIND = CommandKind()
