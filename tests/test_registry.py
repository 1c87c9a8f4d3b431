"""The registry of implementation kinds: how an `--impl` spec reads, how a
report labels it, which errors it raises (and with which exit status)."""
from __future__ import annotations

import pytest

from parbench.errors import EXIT_FAIL, EXIT_USAGE, EnvironmentProblem, ParbenchError, UsageError
from parbench.harness.cli import with_syslog_ng_path
from parbench.harness.syslog_ng.debian import RegistryUnreachable
from parbench.harness.syslog_ng.installation import InstallError
from parbench.harness.syslog_ng.loggen import LoggenError
from parbench.harness.targets.base import TargetError, TargetUnavailable
from parbench.harness.targets.kind import ImplSpec, ImplSpecError, TargetKind
from parbench.harness.targets.registry import (
    get_kind,
    get_target,
    impl_help,
    impl_label,
    kind_of,
    kinds,
    parse_impl,
    parse_impls,
    register,
    registered,
)

RELAY = "command:python3 /opt/t/relay.py --listen {in_port} --forward {out_port}"


@pytest.mark.parametrize("text, kind, argument, name", [
    ("reference", "reference", None, None),
    ("  reference ", "reference", None, None),
    ("syslog-ng", "syslog-ng", None, None),
    ("syslog-ng:/opt/sng", "syslog-ng", "/opt/sng", None),
    ("base=syslog-ng:/opt/a", "syslog-ng", "/opt/a", "base"),
    ("head = syslog-ng:/opt/b", "syslog-ng", "/opt/b", None),  # "head " is no label: the kind is unknown
    (RELAY, "command", RELAY[len("command:"):], None),
    # '=' inside ARGV is not a label: what precedes it is no NAME
    ("command:prog --level=3 {in_port} {out_port}", "command", "prog --level=3 {in_port} {out_port}", None),
    ("r1=command:prog --x=1 {in_port} {out_port}", "command", "prog --x=1 {in_port} {out_port}", "r1"),
])
def test_specs_read_as_name_kind_and_argument(text, kind, argument, name):
    if text.startswith("head "):
        with pytest.raises(ImplSpecError):
            parse_impl(text)
        return
    spec = parse_impl(text)
    assert (spec.kind, spec.argument, spec.name) == (kind, argument, name)
    assert parse_impl(spec.text) == spec  # the text round-trips


@pytest.mark.parametrize("text, message", [
    ("rsyslog", "expected reference[:PROFILE], syslog-ng[:PATH], axosyslog[:VERSION|PATH] or command:ARGV, "
                "optionally as NAME=SPEC, got 'rsyslog'"),
    ("refrence", "expected reference[:PROFILE], syslog-ng[:PATH], axosyslog[:VERSION|PATH] or command:ARGV, "
     "optionally as NAME=SPEC, "
                 "got 'refrence'; did you mean 'reference'?"),
    ("", "expected reference[:PROFILE], syslog-ng[:PATH], axosyslog[:VERSION|PATH] or command:ARGV, "
           "optionally as NAME=SPEC, got ''"),
    ("reference:4.8", "expected reference[:PROFILE], got 'reference:4.8' (unknown profile '4.8'; known profiles: "
                      "axosyslog-4.26, syslog-ng-4.8)"),
    ("axosyslog:latest", "expected axosyslog[:VERSION|PATH], got 'axosyslog:latest' ('latest' is neither a "
                         "version such as 4.27.0 nor a path)"),
    ("syslog-ng:", "expected syslog-ng[:PATH], got 'syslog-ng:' (nothing after 'syslog-ng:')"),
    ("command:", "expected command:ARGV, got 'command:' (nothing after 'command:')"),
    ("command:relay {in_port} {out_port} {bogus}",
     "expected command:ARGV with {in_port} and {out_port} in ARGV, got 'command:relay {in_port} {out_port} {bogus}' "
     "(bad placeholder in '{bogus}' ('bogus'); only {in_port} and {out_port} exist)"),
    ("command:relay 'unclosed {in_port} {out_port}",
     "expected command:ARGV with {in_port} and {out_port} in ARGV, got \"command:relay 'unclosed {in_port} "
     "{out_port}\" (cannot split \"relay 'unclosed {in_port} {out_port}\": No closing quotation)"),
    # a NAME starts with a letter; otherwise the whole text is taken for a KIND
    ("9x=reference", "expected reference[:PROFILE], syslog-ng[:PATH], axosyslog[:VERSION|PATH] or command:ARGV, "
     "optionally as NAME=SPEC, "
                     "got '9x=reference'; did you mean 'reference'?"),
])
def test_bad_specs_are_one_line_saying_what_was_expected(text, message):
    with pytest.raises(ImplSpecError) as info:
        parse_impl(text)
    assert str(info.value) == message
    assert info.value.exit_code == EXIT_USAGE


def test_labels_for_reports():
    assert impl_label("reference") == "reference"
    assert impl_label("syslog-ng:/opt/sng") == "syslog-ng:/opt/sng"
    assert impl_label("base=syslog-ng:/opt/a") == "base"
    assert impl_label(RELAY + " --drop-one") == "command: python3 relay.py --drop-one"
    long = "syslog-ng:/" + "x" * 80
    assert impl_label(long) == long[:45] + "..."
    # A results file written with a kind this build does not know still shows.
    assert impl_label("rsyslog:/usr/sbin/rsyslogd") == "rsyslog:/usr/sbin/rsyslogd"


def test_a_sweep_cannot_hold_two_specs_a_report_would_confuse():
    assert [s.name for s in parse_impls(["base=syslog-ng:/a", "head=syslog-ng:/b", "reference"])] == ["base", "head", None]
    assert len(parse_impls(["syslog-ng:/a", "syslog-ng:/b"])) == 2  # distinct labels without names
    with pytest.raises(ImplSpecError) as info:
        parse_impls(["reference", "syslog-ng", "reference"])
    assert info.value.index == 2 and "got 'reference' twice (entries 0 and 2)" in str(info.value)
    with pytest.raises(ImplSpecError) as info:
        parse_impls(["reference", "nope"])
    assert info.value.index == 1


def test_the_kinds_say_what_the_runner_needs_to_know():
    assert [k.name for k in kinds()][:4] == ["reference", "syslog-ng", "axosyslog", "command"]
    assert [k.name for k in kinds() if k.runs_reference_profile] == ["reference"]
    assert [k.name for k in kinds() if k.gives_reference_profile] == ["syslog-ng", "axosyslog"]
    assert kind_of("base=syslog-ng:/x") is get_kind("syslog-ng")
    for kind in kinds():
        assert f"{kind.syntax}: {kind.summary}" in impl_help()


class _Nameless(TargetKind):
    syntax = summary = "x"

    def make(self, spec, *, profile=None):
        raise AssertionError("never made")


def test_register_refuses_bad_and_taken_names():
    class Taken(_Nameless):
        name = "reference"

    class Bad(_Nameless):
        name = "My_Kind"

    class Fine(_Nameless):
        name = "fine-2"

    with pytest.raises(ValueError, match="'reference' is already registered"):
        register(Taken())
    with pytest.raises(ValueError, match="'My_Kind': expected lowercase words joined by '-'"):
        register(Bad())
    with registered(Fine()):
        assert parse_impl("fine-2") == ImplSpec("fine-2")
    with pytest.raises(ImplSpecError):
        parse_impl("fine-2")


def test_syslog_ng_option_points_every_bare_syslog_ng_at_the_path():
    assert with_syslog_ng_path(["reference", "syslog-ng", "b=syslog-ng", "c=syslog-ng:/keep"], "/opt/x") == [
        "reference", "syslog-ng:/opt/x", "b=syslog-ng:/opt/x", "c=syslog-ng:/keep"]
    assert with_syslog_ng_path(["reference"], None) == ["reference"]
    with pytest.raises(ValueError, match="no syslog-ng implementation runs"):
        with_syslog_ng_path(["reference", "syslog-ng:/a"], "/opt/x")


@pytest.mark.parametrize("error, base, status", [
    (TargetError, ParbenchError, EXIT_FAIL),  # inside a sweep: that run's error
    (TargetUnavailable, TargetError, EXIT_USAGE),  # on the command line: the user can fix it
    (ImplSpecError, UsageError, EXIT_USAGE),
    (InstallError, EnvironmentProblem, EXIT_USAGE),
    (RegistryUnreachable, InstallError, EXIT_USAGE),
    (LoggenError, ParbenchError, EXIT_FAIL),
])
def test_errors_join_the_one_tree_with_their_exit_status(error, base, status):
    assert issubclass(error, base) and error("x").exit_code == status


def test_an_unavailable_implementation_on_the_command_line_exits_2(tmp_path):
    from click.testing import CliRunner

    from parbench.cli import main

    scenario = tmp_path / "s.toml"
    scenario.write_text("[workload]\nmessages_per_connection = 10\n")
    result = CliRunner().invoke(main, ["run", str(scenario), "--impl", f"syslog-ng:{tmp_path / 'none'}"])
    assert result.exit_code == 2
    assert result.output == (f"parbench run: --impl 'syslog-ng:{tmp_path / 'none'}': syslog-ng: not runnable here: "
                             f"{tmp_path / 'none'}: not an executable syslog-ng binary "
                             "(install it with: parbench install syslog-ng)\n")


def test_targets_answer_what_the_abc_declares_with_its_defaults():
    reference, command = get_target("reference", profile="syslog-ng-4.8"), get_target(RELAY)
    assert reference.reference_profile() is None and command.reference_profile() is None
    assert reference.version == "syslog-ng-4.8" and command.version is None
    assert command.name == RELAY
