"""A new implementation is one new module: this file defines a toy kind (an
in-process relay), registers it, and runs it end to end through `parbench
run`, `parbench doctor` and `parbench install` with no other edit to parbench.

The toy relay forwards each connection's bytes unchanged to the collector,
counts the lines it forwarded (its "partition counter"), says it is
"toy-relay 1.<minor>", and names the reference profile that models it, so
the sweep's reference runs under that profile."""
from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from parbench.cli import main
from parbench.harness.targets.base import Target, TargetPlan, TargetReport
from parbench.harness.targets.kind import Availability, BadArgument, ImplSpec, ImplSpecError, TargetKind
from parbench.harness.targets.registry import get_target, impl_label, kinds, parse_impl, registered

SCENARIO = """\
name = "toy"
[workload]
connections = 2
messages_per_connection = 400
keys = ["web-01", "web-02", "db-1"]
[pipeline]
partition_key = "$HOST"
[sweep]
partitions = [1]
repeats = 1
[expect]
ordering = "per-key"
"""


class ToyRelay(Target):
    """Accepts connections on a loopback port; each one is copied, byte for
    byte, to its own connection to the collector."""

    def __init__(self, minor: int, drop_every: int = 0):
        self.name = "toy-relay"
        self.version = f"toy-relay 1.{minor}"
        self.drop_every = drop_every
        self.lines = 0
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._plan: TargetPlan | None = None

    def reference_profile(self) -> str:
        return "syslog-ng-4.8"

    def start(self, plan, out_port, workdir, timeout=30.0):
        self._plan = plan
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self._spawn(self._accept_loop, out_port)
        return "127.0.0.1", self._server.getsockname()[1]

    def _spawn(self, fn, *args) -> None:
        thread = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, out_port: int) -> None:
        while self._server is not None:
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            out = socket.create_connection(("127.0.0.1", out_port), timeout=10)
            self._sockets += [conn, out]
            self._spawn(self._copy, conn, out)

    def _copy(self, conn: socket.socket, out: socket.socket) -> None:
        pending = b""
        with conn, out:
            while True:
                try:
                    data = conn.recv(1 << 16)
                except OSError:
                    return
                if not data:
                    return
                pending += data
                *lines, pending = pending.split(b"\n")
                kept = []
                for line in lines:
                    with self._lock:
                        self.lines += 1
                        if self.drop_every and self.lines % self.drop_every == 0:
                            continue
                    kept.append(line + b"\n")
                out.sendall(b"".join(kept))

    def stop(self, timeout=15.0):
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for thread in self._threads:
            thread.join(timeout)
        alive = [t for t in self._threads if t.is_alive()]
        return TargetReport(partition_processed=[self.lines] if self._plan and self._plan.partitions == 1 else None,
                            version=self.version, notes=[f"{len(alive)} relay threads still running"] if alive else [])


class ToyRelayKind(TargetKind):
    name = "toy-relay"
    syntax = "toy-relay[:MINOR[:drop]]"
    summary = "an in-test relay that copies every line (MINOR: its version 1.MINOR; drop: loses every 100th line)"
    argument = "optional"
    gives_reference_profile = True

    def check_argument(self, argument):
        argument = super().check_argument(argument)
        if argument is not None:
            minor, _, mode = argument.partition(":")
            if not minor.isdigit() or mode not in ("", "drop"):
                raise BadArgument(self.syntax, "MINOR is a number, the only mode is 'drop'")
        return argument

    def label(self, spec: ImplSpec) -> str:
        return "toy " + (spec.argument or "1.0")

    def make(self, spec, *, profile=None):
        minor, _, mode = (spec.argument or "0").partition(":")
        return ToyRelay(int(minor), drop_every=100 if mode == "drop" else 0)

    def availability(self, spec=None):
        return Availability(True, "in this process", ["needs nothing installed"])

    def install_command(self):
        @click.command(self.name)
        def install_toy() -> None:
            """Install the toy relay (nothing to do)."""
            click.echo("toy-relay is built in to this test")

        return install_toy


@pytest.fixture
def toy():
    with registered(ToyRelayKind()) as kind:
        yield kind
    assert "toy-relay" not in [k.name for k in kinds()]


def _run(tmp_path: Path, *impls: str):
    scenario = tmp_path / "toy.toml"
    scenario.write_text(SCENARIO)
    args = ["run", str(scenario), "--out", str(tmp_path / "reports"), "--no-progress"]
    for impl in impls:
        args += ["--impl", impl]
    result = CliRunner().invoke(main, args)
    report = Path(result.output.split("report: ")[1].split()[0]) if "report: " in result.output else None
    return result, report


def test_a_registered_kind_is_a_spec_a_target_and_a_label(toy):
    spec = parse_impl("mine=toy-relay:3")
    assert (spec.kind, spec.argument, spec.name) == ("toy-relay", "3", "mine")
    assert impl_label("mine=toy-relay:3") == "mine" and impl_label("toy-relay:3") == "toy 3"
    target = get_target("toy-relay:3")
    assert isinstance(target, ToyRelay) and target.version == "toy-relay 1.3"
    assert target.stop().partition_processed is None  # stop before start is safe


def test_parbench_run_drives_the_toy_next_to_the_reference(toy, tmp_path):
    result, report = _run(tmp_path, "reference", "mine=toy-relay:3")
    assert result.exit_code == 0, result.output
    # The runner asked the toy's target which reference profile models it.
    assert "toy: reference version profile syslog-ng-4.8 (picked for the detected toy-relay 1.3)" in result.output
    doc = json.loads((report.parent / "results.json").read_text())
    ref, mine = doc["runs"]
    assert mine["impl"] == "mine=toy-relay:3" and ref["impl"] == "reference"
    assert mine["verdict"] == "pass" and mine["sent"] == mine["received"] == 800
    found = mine["checks"]["anomalies"]
    assert found["lost"]["count"] == 0 and found["nonmonotonic-per-key"]["count"] == 0
    assert mine["target_version"] == "toy-relay 1.3"
    assert mine["partition_processed"] == [800]
    assert ref["verdict"] == "pass" and ref["profile"] == "syslog-ng-4.8"
    md = report.read_text()
    # the NAME= label, what it stands for, and the version the target reported
    assert "`mine` = `toy-relay:3` (toy-relay 1.3)" in md
    assert "mine=toy-relay" not in md


def test_a_broken_toy_fails_its_run_with_the_loss_counted(toy, tmp_path):
    result, report = _run(tmp_path, "toy-relay:1:drop")
    assert result.exit_code == 1, result.output
    run = json.loads((report.parent / "results.json").read_text())["runs"][0]
    assert run["verdict"] == "fail" and run["checks"]["anomalies"]["lost"]["count"] == 8
    assert run["partition_processed"] == [800]  # it saw them all and dropped 8
    assert "`toy 1:drop`" in report.read_text()


def test_the_scenario_file_and_the_command_line_read_the_toys_spec(toy, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SCENARIO.replace("repeats = 1", "repeats = 1\nimplementations = ['toy-relay:x']"))
    result = CliRunner().invoke(main, ["run", str(bad), "--no-progress"])
    assert result.exit_code == 2
    assert result.output.strip().endswith(
        "sweep.implementations[0]: expected toy-relay[:MINOR[:drop]], got 'toy-relay:x' "
        "(MINOR is a number, the only mode is 'drop')")
    result, _ = _run(tmp_path, "toyrelay")
    assert result.exit_code == 2 and result.output.endswith(", got 'toyrelay'; did you mean 'toy-relay'?\n")
    shown = CliRunner().invoke(main, ["run", "--help"], terminal_width=1000, max_content_width=1000).output
    assert "command:ARGV: any program that listens on {in_port}" in shown
    assert "toy-relay[:MINOR[:drop]]: an in-test relay that copies every line" in shown


def test_doctor_and_install_list_the_toy(toy):
    doctor = CliRunner().invoke(main, ["doctor"])
    assert doctor.exit_code == 0, doctor.output
    assert "toy-relay: runnable, in this process\n  - needs nothing installed\n" in doctor.output
    assert "reference: runnable" in doctor.output
    asked = CliRunner().invoke(main, ["doctor", "--impl", "toy-relay:7"])
    assert "toy-relay:7: runnable, in this process" in asked.output
    install = CliRunner().invoke(main, ["install", "toy-relay"])
    assert install.exit_code == 0 and install.output == "toy-relay is built in to this test\n"
    assert "toy-relay" in CliRunner().invoke(main, ["install", "--help"]).output


def test_without_registration_the_toy_is_unknown(tmp_path):
    result, _ = _run(tmp_path, "toy-relay")
    assert result.exit_code == 2 and "got 'toy-relay'" in result.output
    with pytest.raises(ImplSpecError, match="got 'toy-relay'$"):
        parse_impl("toy-relay")
