"""The pieces of ``parbench diff`` that need no implementation running: the
configuration rewrite, the all-macro template and its records, masking,
and the comparison of two runs."""
from __future__ import annotations

import pytest

from parbench.harness.differential.compare import compare_runs, record_differences
from parbench.harness.differential.corpus import Case, Mark
from parbench.harness.differential.prepare import prepare_config
from parbench.harness.differential.record import (
    FIELDS,
    PID_MASK,
    RECEIVED,
    TEMPLATE,
    mask,
    parse_record,
    received_dates,
    split_records,
)
from parbench.harness.differential.runner import CaseResult, ImplRun, frame
from parbench.reference.config import parse_config
from parbench.reference.config_lexer import ConfigError
from parbench.reference.template import ALIASES, SUPPORTED_MACROS, compile_template

CONF = """\
@version: 4.8
# a comment that stays
options { keep-hostname(yes); };
source s_named { tcp(ip("127.0.0.1") port(5140)); network(port(5141) transport("framed")); };
destination d_file { file("/var/log/x.log" template("$MSG\\n")); file("/tmp/y"); };
log {
    source(s_named);
    source { syslog(ip("127.0.0.1")); };
    parallelize(partitions(4) partition-key("$HOST"));
    destination(d_file);
    destination { tcp("127.0.0.1" port(9999)); };
};
"""


def test_prepare_replaces_ports_destinations_and_partitions_and_keeps_the_rest():
    prepared = prepare_config(CONF, "c.conf")
    assert [(s.source, s.driver, s.framing) for s in prepared.sources] == [
        ("s_named", "tcp", "text"), ("s_named", "network", "framed"), (None, "syslog", "framed")]
    text = prepared.render([7001, 7002, 7003], 7999, "T$MSG")
    assert "# a comment that stays" in text and "keep-hostname(yes)" in text
    assert "port(7001)" in text and "port(7002)" in text and "port(7003)" in text
    assert "5140" not in text and "5141" not in text and "9999" not in text and "/var/log" not in text
    assert text.count('tcp("127.0.0.1" port(7999) template("T$MSG"))') == 2
    assert "parallelize(partitions(0))" in text and "partitions(4)" not in text
    config = parse_config(text, "rewritten.conf")  # the reference runs the rewritten text
    assert [d.port for s in config.log_paths[0].sources for d in s.drivers] == [7001, 7002, 7003]
    assert all(d.port == 7999 for dst in config.destinations.values() for d in dst.drivers)
    with pytest.raises(ValueError, match="3 source drivers need as many ports"):
        prepared.render([1], 2, "x")


def test_prepare_rejects_what_the_reference_does_not_run():
    with pytest.raises(ConfigError, match=r"c.conf:1:\d+: unknown source driver 'udp\(\)'"):
        prepare_config('source s { udp(); }; destination d { file("x"); }; log { source(s); destination(d); };',
                       "c.conf")


def test_the_template_prints_every_macro_the_reference_accepts():
    assert (SUPPORTED_MACROS | set(ALIASES)) <= set(FIELDS)
    template = compile_template(TEMPLATE)
    msg = {name: name.lower().encode() for name in FIELDS}
    msg["PRI"] = b"165"
    records, rest = split_records(template.render(msg) * 2 + b"partial")
    assert rest == b"partial" and len(records) == 2
    parsed = parse_record(records[0])
    for name in FIELDS:
        if name in ("SDATA", "FACILITY_NUM", "SEVERITY_NUM", "LEVEL_NUM", "PRI"):
            continue
        if name in ALIASES:
            assert parsed[name] == ALIASES[name].lower().encode()
        else:
            assert parsed[name] == name.lower().encode()
    assert (parsed["FACILITY_NUM"], parsed["SEVERITY_NUM"], parsed["LEVEL_NUM"]) == (b"20", b"5", b"5")
    assert parse_record(b"too\x1ffew") == {"RAW": b"too\x1ffew"}


def test_masking_touches_only_received_times_and_the_own_pid(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    import time
    time.tzset()
    try:
        received = received_dates(1_700_000_000.2, 1_700_000_001.0)
        assert b"Nov 14 22:13:20" in received and b"2023-11-14T22:13:20+00:00" in received
        record = {name: b"" for name in FIELDS}
        record.update(DATE=b"Nov 14 22:13:21", ISODATE=b"2023-11-14T22:13:21+00:00", PID=b"4242",
                      MSGHDR=b"syslog-ng[4242]: ", MSG=b"4242 stays")
        masked = mask(record, received, 4242)
        assert (masked["DATE"], masked["ISODATE"], masked["PID"]) == (RECEIVED, RECEIVED, PID_MASK)
        assert masked["MSGHDR"] == b"syslog-ng[<pid>]: " and masked["MSG"] == b"4242 stays"
        other = dict(record, DATE=b"Oct 11 22:14:15", PID=b"12", MSGHDR=b"app[12]: ")
        assert mask(other, received, 4242) == dict(other, ISODATE=RECEIVED)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_frames_for_the_end_of_case_line():
    assert frame(b"pbd1.2", "text") == b"pbd1.2\n"
    assert frame(b"pbd1.2", "framed") == b"6 pbd1.2"


def _case(name: str, *marks: Mark) -> Case:
    return Case(name, b"x\n", "lib/x.c f", "s", 1, marks)


def _run(label: str, version: str, **records) -> ImplRun:
    run = ImplRun(label, version)
    for name, value in records.items():
        run.results[name] = CaseResult(_case(name)) if value is None else CaseResult(_case(name), value)
    return run


def test_comparison_catches_every_kind_of_difference():
    same = [{"HOST": b"h", "MSG": b"m"}]
    cases = [_case("same"), _case("field"), _case("count"), _case("marked", Mark("known")),
             _case("stale", Mark("old", "x-impl")), _case("other-impl", Mark("only", "y-impl")), _case("missing")]
    ref = _run("ref", "ref", same=same, field=same, count=same, marked=same, stale=same, **{"other-impl": same})
    ref.results["missing"] = CaseResult(cases[-1], error="no sentinel")
    real = _run("real", "x-impl 1.0", same=same, field=[{"HOST": b"h", "MSG": b"M"}], count=same * 2,
                marked=[{"HOST": b"H", "MSG": b"m"}], stale=same, **{"other-impl": [{"HOST": b"z", "MSG": b"m"}]})
    comparison = compare_runs("s", "c.conf", ref, real, cases)
    status = {v.case.name: v.status for v in comparison.verdicts}
    assert status == {"same": "identical", "field": "differs", "count": "differs", "marked": "documented",
                      "stale": "identical", "other-impl": "differs", "missing": "error"}
    assert [v.case.name for v in comparison.stale] == ["stale"]
    assert comparison.failed
    field = next(v for v in comparison.verdicts if v.case.name == "field")
    assert any('MSG' in line and 'ref: "m"' in line for line in field.lines)
    assert any('real: "M"' in line for line in field.lines)
    count = next(v for v in comparison.verdicts if v.case.name == "count")
    assert count.lines[0] == "1 message(s) from ref, 2 from real"
    assert any("only from real" in line for line in count.lines)


def test_identical_runs_do_not_fail():
    same = [{"HOST": b"h"}]
    comparison = compare_runs("s", "c", _run("a", "a", one=same), _run("b", "b 1", one=same), [_case("one")])
    assert not comparison.failed and comparison.count("identical") == 1


def test_record_differences_show_raw_records():
    lines = record_differences([{"RAW": b"a\x1fb"}], [{"RAW": b"c"}], "ref", "real")
    assert lines == ['message 1 RAW           ref: "a\\x1fb"', 'message 1               real: "c"']
