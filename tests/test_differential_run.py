"""``parbench diff`` end to end: the reference against real implementations
on the shipped corpus (the differential suite), and against a twin of
itself and a deliberately broken twin, to prove the comparison sees what
it must see.

Real implementations, like the other syslog-ng tests: syslog-ng runs when
it is installed and must run when ``PARBENCH_REQUIRE_SYSLOG_NG=1``.
AxoSyslog runs when the registry has an ``axosyslog`` kind that is runnable
here, or when ``PARBENCH_DIFF_AXOSYSLOG`` names a spec (``NAME=KIND:ARG``,
e.g. ``axo=syslog-ng:/opt/axosyslog``); it must run when
``PARBENCH_REQUIRE_AXOSYSLOG=1``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from parbench.cli import main
from parbench.harness.differential.corpus import load_corpus, shipped_corpus_path
from parbench.harness.differential.session import check_impls, config_groups, run_diff
from parbench.harness.targets import registry
from parbench.harness.targets.kind import ImplSpec, TargetKind
from parbench.harness.targets.reference import ReferenceTarget
from syslog_ng_required import skip_unless_required

DATA = Path(shipped_corpus_path()).parent
SHIPPED = load_corpus(shipped_corpus_path())


class TwinTarget(ReferenceTarget):
    """The reference, posing as a real implementation; ``mangle`` edits the
    configuration text it runs (a broken twin)."""

    def __init__(self, mangle=None):
        super().__init__(profile="syslog-ng-4.8")
        self.mangle = mangle
        self.version = "twin 1.0"

    def reference_profile(self) -> str:
        return "syslog-ng-4.8"

    def start_config(self, config_text, listen_ports, workdir, timeout=30.0, deadline_s=None):
        if self.mangle:
            config_text = self.mangle(config_text)
        super().start_config(config_text, listen_ports, workdir, timeout, deadline_s)
        self.version = "twin 1.0"


class TwinKind(TargetKind):
    name = "twin"
    syntax = "twin[:broken]"
    summary = "the reference posing as a real implementation (tests)"
    argument = "optional"
    gives_reference_profile = True
    runs_config_text = True

    def make(self, spec: ImplSpec, *, profile=None) -> TwinTarget:
        if spec.argument == "broken":
            return TwinTarget(lambda text: text.replace("keep-hostname(yes)", "keep-hostname(no)"))
        return TwinTarget()


@pytest.fixture
def twin():
    with registry.registered(TwinKind()):
        yield


CORPUS = """\
[small] config={conf}
plain "<13>Oct 11 22:14:15 h1 app[1]: hello\\n" modules/syslogformat/syslog-format.c
two "<13>Oct 11 22:14:15 h2 app: one\\n<13>Oct 11 22:14:15 h3 app: two\\n" lib/logproto/logproto-server.c find_eom
nostamp "<13>no stamp\\n" modules/syslogformat/syslog-format.c _syslog_format_parse_legacy_header
marked "<13>Oct 11 22:14:15 h4 app: m\\n" !host-twin@twin lib/logsource.c log_source_mangle_hostname
"""


def write_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS.format(conf=DATA / "tcp-rfc3164.conf"))
    return path


def test_twin_is_identical_and_a_broken_twin_differs_field_by_field(twin, tmp_path):
    corpus = write_corpus(tmp_path)
    result = CliRunner().invoke(main, ["diff", "--corpus", str(corpus), "--impl", "twin"])
    assert result.exit_code == 0, result.output
    assert "[small] twin (twin 1.0) vs reference syslog-ng-4.8: 4 identical, 0 documented, 0 differ, 0 errors" \
        in result.output
    assert "marked (line 5) is marked !host-twin@twin but is identical" in result.output

    result = CliRunner().invoke(main, ["diff", "--corpus", str(corpus), "--impl", "twin:broken",
                                       "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 1, result.output
    assert "1 identical, 1 documented, 2 differ, 0 errors" in result.output
    assert 'message 1 HOST          reference syslog-ng-4.8: "h1"' in result.output
    assert 'message 2 HOST          reference syslog-ng-4.8: "h3"' in result.output
    assert 'twin:broken: "127.0.0.1"' in result.output
    assert "nostamp" not in result.output.split("differs:", 1)[1]  # no host in it: identical
    import json
    verdicts = json.loads((tmp_path / "out.json").read_text())["comparisons"][0]["cases"]
    assert {name: v["status"] for name, v in verdicts.items()} == {
        "plain": "differs", "two": "differs", "nostamp": "identical", "marked": "documented"}


def test_config_given_on_the_command_line_replaces_the_sections(twin, tmp_path):
    corpus = write_corpus(tmp_path)
    conf = tmp_path / "mine.conf"
    conf.write_text((DATA / "tcp-rfc3164.conf").read_text().replace("keep-hostname(yes)", "keep-hostname(no)"))
    result = CliRunner().invoke(main, ["diff", str(conf), "--corpus", str(corpus), "--impl", "twin:broken"])
    assert result.exit_code == 0, result.output  # both sides now run keep-hostname(no)


@pytest.mark.parametrize("args, message", [
    (["--impl", "command:relay {in_port} {out_port}"], "command implementations do not run a configuration file"),
    (["--impl", "reference"], "the reference is always run"),
    ([], "no --impl given"),
    (["--impl", "twin", "--corpus", "/nonexistent/corpus.txt"], "cannot read the corpus"),
    (["--impl", "twin", "--section", "nope"], r"no section \[nope\]"),
    (["--impl", "twin", "--source", "nope"], "no source named 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(twin, tmp_path, args, message):
    result = CliRunner().invoke(main, ["diff", *args])
    assert result.exit_code == 2, result.output
    assert message.replace("\\", "") in result.output or __import__("re").search(message, result.output)
    assert "Traceback" not in result.output


def test_a_configuration_the_reference_rejects_is_exit_2(twin, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('source s { udp(); }; destination d { file("x"); }; log { source(s); destination(d); };')
    result = CliRunner().invoke(main, ["diff", str(conf), "--corpus", str(write_corpus(tmp_path)), "--impl", "twin"])
    assert result.exit_code == 2 and "unknown source driver 'udp()'" in result.output


# ------------------------------------------------------- the differential suite


def _syslog_ng_spec() -> str:
    kind = registry.get_kind("syslog-ng")
    availability = kind.availability(None)
    if not availability.runnable:
        skip_unless_required("syslog-ng not runnable here: " + "; ".join(availability.details))
    return "syslog-ng"


def _axosyslog_spec() -> str:
    """The AxoSyslog to compare with: $PARBENCH_DIFF_AXOSYSLOG, else the
    registry's axosyslog kind."""
    required = os.environ.get("PARBENCH_REQUIRE_AXOSYSLOG") == "1"
    spec = os.environ.get("PARBENCH_DIFF_AXOSYSLOG")
    if not spec:
        kind = registry.get_kind("axosyslog")
        reason = "no axosyslog implementation kind is registered"
        if kind is not None:
            availability = kind.availability(None)
            if availability.runnable:
                return "axosyslog"
            reason = "axosyslog not runnable here: " + "; ".join([availability.summary, *availability.details])
        if required:
            pytest.fail(f"PARBENCH_REQUIRE_AXOSYSLOG=1 but: {reason} (or set PARBENCH_DIFF_AXOSYSLOG)")
        pytest.skip(reason)
    return spec


def _run_shipped(spec: str, tmp_path: Path) -> None:
    specs = check_impls([spec])
    comparisons = run_diff(config_groups(SHIPPED, None, None), specs, tmp_path)
    assert len(comparisons) == len(SHIPPED.sections)
    problems = []
    for comparison in comparisons:
        problems += [f"[{comparison.section}] {error}" for error in comparison.errors]
        for verdict in comparison.verdicts:
            if verdict.status in ("differs", "error"):
                problems.append(f"[{comparison.section}] {verdict.status}: {verdict.case.name}: "
                                + " | ".join(verdict.lines[:6]))
            if verdict.stale_mark is not None:
                problems.append(f"[{comparison.section}] {verdict.case.name}: stale mark {verdict.stale_mark}")
    assert not problems, f"{len(problems)} unexplained differences:\n" + "\n".join(problems[:40])
    assert sum(c.count("identical") + c.count("documented") for c in comparisons) == len(SHIPPED.cases)


@pytest.mark.syslog_ng
def test_shipped_corpus_against_syslog_ng(tmp_path):
    _run_shipped(_syslog_ng_spec(), tmp_path)


@pytest.mark.syslog_ng
def test_shipped_corpus_against_axosyslog(tmp_path):
    _run_shipped(_axosyslog_spec(), tmp_path)
