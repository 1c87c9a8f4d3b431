"""Scenario strings rendered into a config arrive verbatim and inject nothing.

Hostile partition keys (quotes, backslashes, backtick references to the
environment, line breaks followed by ``@`` pragmas, control characters) are
rendered for both dialects.  The reference's reader must give each one back
unchanged; a real syslog-ng 4.8.1 reads the syslog-ng config with an
environment variable ``FOO`` that would add a destination if it were ever
substituted, and its ``--preprocess-into`` output (what is left once
backticks, ``@define`` and includes are resolved) must hold the value
verbatim and the same statements as the config parbench meant."""
from __future__ import annotations

import subprocess

import pytest

from parbench.harness.render import quote, render_config
from parbench.harness.scenario import (
    Expectation,
    Pipeline,
    Scenario,
    ScenarioError,
    Sweep,
    Workload,
    scenario_from_dict,
)
from parbench.reference.config import parse_config
from parbench.reference.config_lexer import tokenize
from parbench.reference.profiles import get_profile
from syslog_ng_required import skip_unless_required

# What an attacker puts in the environment, hoping `FOO` is substituted.
INJECTED = 'x")); destination { file("/dev/null"); }; parallelize(partitions(2) partition-key("y'

HOSTILE = [
    "`FOO`",
    "$HOST`FOO`",
    "``",
    "```",
    "a`b",
    "\\`FOO`",
    "\\\\`FOO`\\\\",
    '"); destination(d_evil); log { source(s_parbench',
    'x\\',
    '\\"',
    "$HOST\n@include \"/etc/passwd\"",
    "$HOST\r\n@define FOO bar",
    "\n`FOO`\n",
    "$HOST # not a comment",
    "${HOST}-${PROGRAM}",
    "tab\there \x01\x1f\x7f then 0x41: \x01A",
    "include \"x\";",
    "'single' \"double\"",
    "héllo wörld €",
]


def _scenario(key: str) -> Scenario:
    return Scenario(name="inject", path="inject.toml", description="",
                    workload=Workload(connections=1, keys=("a", "b")),
                    pipeline=Pipeline(partition_key=key), sweep=Sweep(), expect=Expectation(ordering="none"))


def _partition_keys(text: str) -> list[str]:
    """The string inside every partition-key(...) of a config text, read
    with syslog-ng's lexical rules for strings (the reference's lexer)."""
    tokens = tokenize(text, "<config>")
    return [tokens[i + 2].value for i, tok in enumerate(tokens[:-2])
            if tok.text == "partition-key" and tokens[i + 1].text == "("]


def _shape(text: str) -> list[tuple[str, object]]:
    """Every token of a config text, the partition keys left out: two
    configs of one shape hold the same statements, options and values."""
    tokens = tokenize(text, "<config>")
    keys = {i + 2 for i, tok in enumerate(tokens[:-2]) if tok.text == "partition-key" and tokens[i + 1].text == "("}
    return [(tok.kind, tok.value) for i, tok in enumerate(tokens) if i not in keys]


@pytest.mark.parametrize("key", HOSTILE, ids=range(len(HOSTILE)))
def test_the_reference_reads_back_every_hostile_key_verbatim(key):
    text = render_config(_scenario(key), 2, 9999, dialect="reference")
    config = parse_config(text, "<rendered>", get_profile("axosyslog-4.26"), warn=lambda *a: None)
    assert len(config.sources) == 1 and len(config.destinations) == 1 and len(config.log_paths) == 1
    (parallelize,) = [e for e in config.log_paths[0].pipeline if type(e).__name__ == "Parallelize"]
    assert parallelize.partition_key == key


def test_a_string_with_nul_cannot_be_rendered():
    with pytest.raises(ValueError, match="NUL"):
        quote("a\0b")


@pytest.mark.parametrize("key, expected", [
    ("a\0b", "NUL"),
    ("$HOST" * 200, "at most 800 characters"),
])
def test_the_scenario_refuses_a_key_no_config_can_carry(key, expected):
    with pytest.raises(ScenarioError, match=expected):
        scenario_from_dict({"workload": {"messages_per_connection": 10}, "pipeline": {"partition_key": key}},
                           "k.toml")


def test_the_longest_valid_key_of_control_characters_still_renders():
    key = "\x01" * 800
    scenario = scenario_from_dict({"workload": {"messages_per_connection": 10},
                                   "pipeline": {"partition_key": key}, "expect": {"ordering": "none"}}, "k.toml")
    for dialect in ("reference", "syslog-ng"):
        assert _partition_keys(render_config(scenario, 2, 1, dialect=dialect, version="4.8")) == [key]


@pytest.fixture(scope="module")
def syslog_ng():
    from parbench.harness.syslog_ng.installation import locate_syslog_ng

    found, reasons = locate_syslog_ng(None)
    if found is None:
        skip_unless_required("no syslog-ng: " + "; ".join(reasons))
    return found


def _preprocess(install, conf_text: str, tmp_path) -> subprocess.CompletedProcess:
    conf = tmp_path / "in.conf"
    conf.write_text(conf_text)
    out = tmp_path / "out.conf"
    env = {**install.full_env(), "FOO": INJECTED, "HOST": INJECTED}
    done = subprocess.run([*install.syslog_ng_argv(), "--syntax-only", "--preprocess-into", str(out), "-f", str(conf)],
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    done.stdout = out.read_text() if out.exists() else ""
    return done


def test_the_probe_would_see_an_injection(syslog_ng, tmp_path):
    """The check below can fail: a backtick written as it is (no escaping)
    turns FOO into a second destination."""
    raw = render_config(_scenario("$HOST"), 2, 9999, in_port=9998, dialect="syslog-ng", version="4.8").replace(
        'partition-key("$HOST")', 'partition-key("`FOO`")')
    done = _preprocess(syslog_ng, raw, tmp_path)
    assert done.returncode == 0, done.stderr
    assert _partition_keys(done.stdout) == ["x", "y"]
    assert _shape(done.stdout) != _shape(raw)
    assert ("string", "/dev/null") in _shape(done.stdout)


@pytest.mark.parametrize("key", HOSTILE, ids=range(len(HOSTILE)))
def test_syslog_ng_reads_back_every_hostile_key_verbatim_and_nothing_else(syslog_ng, tmp_path, key):
    text = render_config(_scenario(key), 2, 9999, in_port=9998, dialect="syslog-ng", version="4.8")
    done = _preprocess(syslog_ng, text, tmp_path)
    assert done.returncode == 0, done.stderr
    assert _partition_keys(done.stdout) == [key]
    assert _shape(done.stdout) == _shape(text)
