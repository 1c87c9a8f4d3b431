"""The reference's reading of syslog headers (reference.syslog_format,
reference.timestamps) and the macros that show it.

The expected values are what syslog-ng 4.8.1 and AxoSyslog 4.27.0 produced
for the same bytes (the shipped differential corpus checks them against the
real programs; these tests keep them without one).  The fast path of
reference.message must agree with the step-by-step reading on any input."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings, strategies as st

from parbench.reference.config import parse_config
from parbench.reference.config_lexer import ConfigError
from parbench.reference.message import make_parser, parse_rfc3164, parse_rfc5424, peer_for, resolve_peer_name
from parbench.reference.profiles import AXOSYSLOG_4_26, PROFILES, SYSLOG_NG_4_8
from parbench.reference.syslog_format import LOCAL, ParseOptions, parse, pri_fields
from parbench.reference.template import TemplateError, compile_template, format_sdata
from parbench.reference.timestamps import WallClock, guess_year, received_stamp, render, scan_rfc3164, to_stamp

PEER = peer_for(b"192.0.2.9", b"peer-name")


def at(month: int) -> time.struct_time:
    return time.struct_time((2026, month, 15, 12, 0, 0, 0, 0, 0))


# ------------------------------------------------------------------ timestamps


def test_year_guess_only_across_december_and_january():
    assert guess_year(11, at(1)) == 2025  # a December stamp read in January: last year
    assert guess_year(0, at(12)) == 2027  # a January stamp read in December: next year
    assert guess_year(11, at(11)) == 2026  # no 30-day window: November reads December as this year
    assert guess_year(10, at(1)) == 2026
    assert guess_year(0, at(2)) == 2026


@pytest.mark.parametrize("text, fields, end", [
    (b"Oct 11 22:14:15 h", (None, 9, 11, 22, 14, 15, None), 15),
    (b"Oct  1 22:14:15 h", (None, 9, 1, 22, 14, 15, None), 15),
    (b"Oct 1 22:14:15 h", (None, 9, 1, 22, 14, 15, None), 14),
    (b"OCT 11 22:14:15.5: h", (None, 9, 11, 22, 14, 15, None), 18),
    (b"Oct 11 22:14:15,123 h", (None, 9, 11, 22, 14, 15, None), 19),
    (b"Oct 11 2024 22:14:15: %ASA", (2024, 9, 11, 22, 14, 15, None), 21),
    (b"Oct 11 22:14:15 2024 h", (2024, 9, 11, 22, 14, 15, None), 20),
    (b"2024-10-11 22:14:15,5+02:00 h", (2024, 9, 11, 22, 14, 15, 7200), 27),
    (b"2024-10-11T22:14:15Z h", (2024, 9, 11, 22, 14, 15, 0), 20),
    (b"2024-10-11T22:14:15+0200 h", (2024, 9, 11, 22, 14, 15, None), 19),
])
def test_rfc3164_stamp_forms(text, fields, end):
    wall, pos = scan_rfc3164(text, 0)
    assert (wall.year, wall.mon, wall.mday, wall.hour, wall.min, wall.sec, wall.gmtoff) == fields
    assert pos == end


@pytest.mark.parametrize("text", [b"oct 11 22:14:15 h", b"Foo 11 22:14:15 h", b"Oct 11 22:14", b"October 11 x"])
def test_not_a_stamp(text):
    assert scan_rfc3164(text, 0) is None


def test_normalization_follows_mktime_and_the_version():
    wall = WallClock(2026, 9, 11, 22, 60, 0, 0)
    assert render(to_stamp(wall, whole_stamp=True))[1] == b"2026-10-11T22:00:00+00:00"  # syslog-ng 4.8
    assert render(to_stamp(wall, whole_stamp=False))[1] == b"2026-10-11T23:00:00+00:00"  # AxoSyslog
    for whole in (True, False):
        assert render(to_stamp(WallClock(2026, 1, 30, 12, 0, 0, 0), whole_stamp=whole))[0] == b"Mar  2 12:00:00"
        assert render(to_stamp(WallClock(2026, 9, 11, 25, 30, 0, 0), whole_stamp=whole))[0] == b"Oct 13 01:30:00"
    assert render(to_stamp(WallClock(1, 0, 1, 0, 0, 0, 0)))[1] == b"1-01-01T00:00:00+00:00"


# ------------------------------------------------------------------ RFC 3164


def legacy(raw: bytes, profile=AXOSYSLOG_4_26, **options) -> dict:
    return parse(raw, ParseOptions.for_profile(profile, keep_hostname=True, **options), PEER)


@pytest.mark.parametrize("raw, expected", [
    (b"12 <13>Oct 11 22:14:15 h app: x", dict(PROGRAM=b"<13>Oct", MSG=b"11 22:14:15 h app: x", PRI=b"13")),
    (b"<65549>Oct 11 22:14:15 h app: x", dict(PRI=b"13", FACILITY=b"user")),
    (b"<210>Oct 11 22:14:15 h app: x", dict(FACILITY=b"1a", SEVERITY=b"crit")),
    (b"<abc>Oct 11 22:14:15 h app: x", dict(MSG=b"<abc>Oct 11 22:14:15 h app: x", PROGRAM=b"", HOST=b"peer-name")),
    (b"<13>Oct 11 22:14:15 last message repeated 5 times",
     dict(MSG=b"last message repeated 5 times", PROGRAM=b"", HOST=b"peer-name")),
    (b"<13>Oct 11 22:14:15 Message forwarded from aix: prog: x", dict(HOST=b"aix", PROGRAM=b"prog", MSG=b"x")),
    (b"<189>2412: *Oct 11 22:14:15.123: %SYS-5: x",
     {".SDATA.meta.sequenceId": b"2412", ".SDATA.timeQuality.isSynced": b"0", "PROGRAM": b"%SYS-5"}),
    (b"<13>Oct 11 22:14:15 h app[12 3]: x", dict(PROGRAM=b"app", PID=b"12", MSG=b"3]: x", MSGHDR=b"app[12 ")),
    (b"<13>Oct 11 22:14:15 h app[12", dict(PROGRAM=b"app", PID=b"", MSG=b"", MSGHDR=b"app[12")),
    (b"<13>Oct 11 22:14:15 1234 app: x", dict(HOST=b"peer-name", PROGRAM=b"app",
                                              ISODATE=b"1234-10-11T22:14:15+00:00")),
    (b"<13>Oct 11 22:14:15 " + b"h" * 256 + b" app: x", dict(HOST=b"peer-name", PROGRAM=b"h" * 256)),
    (b"<13>Oct 11 22:14:15 router: app: x", dict(HOST=b"peer-name", PROGRAM=b"router", MSG=b"app: x")),
])
def test_rfc3164_rules(raw, expected):
    got = legacy(raw)
    assert {key: got.get(key) for key in expected} == expected


def test_legacy_msghdr_is_the_header_as_received_unless_not_stored():
    raw = b"<13>Oct 11 22:14:15 h app[1]:x"
    assert (legacy(raw)["MSGHDR"], legacy(raw)["LEGACY_MSGHDR"]) == (b"app[1]:", b"app[1]:")
    off = legacy(raw, store_legacy_msghdr=False)
    assert "LEGACY_MSGHDR" not in off and off["MSGHDR"] == b"app[1]: "
    assert legacy(b"<13>Oct 11 22:14:15 h app[1]: x", expect_hostname=False)["PROGRAM"] == b"h"


def test_trailing_carriage_return_per_version():
    assert legacy(b"<13>Oct 11 22:14:15 h app: x\r\n")["MSG"] == b"x"
    assert legacy(b"<13>Oct 11 22:14:15 h app: x\r\n", SYSLOG_NG_4_8)["MSG"] == b"x\r"


# ------------------------------------------------------------------ RFC 5424


def protocol(raw: bytes, profile=AXOSYSLOG_4_26) -> dict:
    return parse(raw, ParseOptions.for_profile(profile, keep_hostname=True, syslog_protocol=True), PEER)


def test_rfc5424_lenient_and_strict_places():
    m = protocol(b"<13>01 2024-10-11T22:14:15Z h app 12 ID [a x=1 " + b"p" * 40 + b'="v"] msg')
    assert (m["PROGRAM"], m[".SDATA.a.x"], m[".SDATA.a." + "p" * 40], m["MSG"]) == (b"app", b"1", b"v", b"msg")
    error = protocol(b"<13>1 2024-10-11T22:14:15+0200 h app 12 ID - x")
    # ">@<" goes one byte before the position where reading stopped (the "+").
    assert error["MSG"] == b"Error processing log message: <13>1 2024-10-11T22:14:1>@<5+0200 h app 12 ID - x"
    assert (error["PROGRAM"], error["PRI"], error["HOST"], error[LOCAL]) == (b"syslog-ng", b"43", PEER.own_host, b"1")
    assert error["MSGHDR"] == b"syslog-ng[" + PEER.own_pid + b"]: "


def test_sd_spaces_per_version():
    raw = b'<13>1 - h app - - [ a x="1" ] m'
    assert protocol(raw)[".SDATA.a.x"] == b"1"
    assert protocol(raw, SYSLOG_NG_4_8)["MSG"].startswith(b"Error processing log message: ")


def test_parse_error_host_follows_keep_hostname():
    raw = b"<13>1 bad"
    opts = ParseOptions(syslog_protocol=True, keep_hostname=False)
    assert parse(raw, opts, PEER)["HOST"] == b"peer-name"


# ------------------------------------------------------------- fast = step by step

def _one_of(*items: bytes):
    return st.sampled_from(items)


# Shaped like the lines the fast path takes, with a variant at every place
# where the step-by-step reading has a special case.
_RFC3164_LINES = st.tuples(
    _one_of(b"<13>", b"<165>", b"<0>", b"<999>", b"<abc>", b"12 <13>", b"", b"<13> "),
    _one_of(b"Oct 11 22:14:15", b"Oct  1 02:04:05", b"Jan 31 23:59:59", b"Oct 11 22:60:00", b"oct 11 22:14:15",
            b"Oct 1 22:14:15", b"Oct 11 22:14:15.5", b"Oct 11 22:14:15:", b"Oct 11 2024 22:14:15:", b""),
    _one_of(b" ", b"  ", b""),
    _one_of(b"web-01 ", b"h:x ", b"fe80::1 ", b"1234 ", b"12345 ", b"h" * 255 + b" ", b"h" * 256 + b" ", b"",
            b"Message forwarded from aix: ", b"last message repeated 2 times", b"web[1] "),
    _one_of(b"app", b"app[42]", b"app[42", b"app[4 2]", b"app[]", b":", b"", b"/usr/bin/x[1]"),
    _one_of(b": ", b":", b" ", b": : ", b""),
    _one_of(b"msg text", b"", b"\xef\xbb\xbfbom", b"[a x=\"1\"] m"),
    _one_of(b"", b"\r", b"\x00", b"\r\n"),
)
_RFC5424_LINES = st.tuples(
    _one_of(b"<13>1 ", b"<165>01 ", b"<13>2 ", b"<x>1 ", b"42 <13>1 ", b"1 "),
    _one_of(b"2024-10-11T22:14:15Z ", b"2024-10-11T22:14:15.5+02:00 ", b"2024-10-11T22:14:15+0200 ", b"- ",
            b"2024-10-11 22:14:15Z ", b"2024-10-11T22:60:00Z ", b"Oct 11 22:14:15 "),
    _one_of(b"web-01 ", b"- ", b"h:x ", b"fe80::1 ", b"h" * 256 + b" ", b" "),
    _one_of(b"app ", b"- ", b"a" * 60 + b" ", b""),
    _one_of(b"42 ", b"- ", b"9" * 130 + b" "),
    _one_of(b"ID47 ", b"- ", b"M" * 40 + b" "),
    _one_of(b"-", b"[a x=\"1\"]", b"[a x=\"1\"][b]", b"[a x=1]", b"[ a x=\"1\" ]", b"[a x=\"q\\\"\"]",
            b"[a x=\"b]\"]", b"[" + b"i" * 40 + b" y=\"2\"]", b"", b"x"),
    _one_of(b" msg", b"", b" \xef\xbb\xbfbom", b"m", b"  two"),
    _one_of(b"", b"\r", b"\x00"),
)


@settings(max_examples=800, deadline=None)
@given(st.one_of(_RFC3164_LINES, _RFC5424_LINES), st.booleans(), st.sampled_from(sorted(PROFILES)),
       st.booleans())
def test_fast_path_agrees_with_the_step_by_step_reading(parts, proto, profile, keep):
    raw = b"".join(parts)
    prof = PROFILES[profile]
    started = time.time()
    fast = make_parser(proto, keep, b"192.0.2.9", peer_name=b"peer-name", profile=prof)([raw])[0]
    slow = parse(raw, ParseOptions.for_profile(prof, syslog_protocol=proto, keep_hostname=keep), PEER)
    received = {render(received_stamp(second)) for second in range(int(started), int(time.time()) + 1)}
    if (fast["DATE"], fast["ISODATE"]) in received and (slow["DATE"], slow["ISODATE"]) in received:
        # Both took the received time; the two clock readings may differ by a second.
        fast, slow = dict(fast, DATE=b"", ISODATE=b""), dict(slow, DATE=b"", ISODATE=b"")
    assert fast == slow


def test_the_fast_path_is_taken_for_common_lines(monkeypatch):
    import parbench.reference.message as message

    calls = []
    monkeypatch.setattr(message, "parse", lambda *args: calls.append(args) or {})
    make_parser(False, True, b"127.0.0.1")([b"<13>Oct 11 22:14:15 web-01 app[1]: hello"])
    make_parser(True, True, b"127.0.0.1")([b'<13>1 2024-10-11T22:14:15Z web-01 app 1 ID [a x="1"] hello'])
    assert calls == []


# ------------------------------------------------------------------ macros


def test_pri_fields_and_numeric_macros():
    assert pri_fields(96) == (b"96", b"ntp", b"emerg")
    assert pri_fields(1016)[1] == b"7f"
    t = compile_template("$FACILITY_NUM $SEVERITY_NUM $LEVEL_NUM")
    assert t.render({"PRI": b"1024"}) == b"0 0 0"
    assert t.render({"PRI": b"165"}) == b"20 5 5"


def test_sdata_format_order_escapes_and_generated_message_numbers():
    m = {".SDATA.a.x": b'q"\\]', ".SDATA.b": b"", ".SDATA.a.y": b"2", ".SDATA.c.d.e": b"3", "HOST": b"h"}
    assert format_sdata(m) == b'[a x="q\\"\\\\\\]"][b][a y="2"][c.d e="3"]'
    assert format_sdata({".SDATA.meta.z": b"1"}, 7) == b'[meta sequenceId="7" z="1"]'
    assert format_sdata({".SDATA.meta.sequenceId": b"3"}, 7) == b'[meta sequenceId="3"]'
    t = compile_template("$SDATA|")
    error = parse(b"<13>1 x", ParseOptions(syslog_protocol=True), PEER)
    normal = parse(b"<13>1 - h a - - [x y=\"1\"] m", ParseOptions(syslog_protocol=True), PEER)
    assert t.render_many([error, normal, error]) == [b'[meta sequenceId="1"]|', b'[x y="1"]|',
                                                     b'[meta sequenceId="2"]|']
    assert t.render_many([error]) == [b'[meta sequenceId="3"]|']  # one numbering per destination
    assert compile_template("$SDATA").render(error) == b""  # partition keys: no numbering
    assert compile_template("$SDATA").single_name is None


# Every macro of syslog-ng 4.8 / AxoSyslog 4.27 (lib/template/macros.c and the
# predefined values of lib/logmsg/logmsg.c): the reference renders it as the
# real one does, or refuses it at start-up.
SYSLOG_NG_MACROS = """
FACILITY FACILITY_NUM SEVERITY SEVERITY_NUM PRIORITY LEVEL LEVEL_NUM TAG TAGS BSDTAG PRI DATE FULLDATE
ISODATE STAMP YEAR YEAR_DAY MONTH MONTH_WEEK MONTH_ABBREV MONTH_NAME DAY HOUR HOUR12 MIN SEC USEC MSEC AMPM
WEEKDAY WEEK_DAY WEEK_DAY_ABBREV WEEK_DAY_NAME WEEK ISOWEEK TZOFFSET TZ SYSUPTIME UNIXTIME SDATA MSGHDR
SOURCEIP SOURCEPORT DESTIP DESTPORT PEERIP PEERPORT IP_PROTO PROTO PROTO_NAME RAWMSG_SIZE SEQNUM CONTEXT_ID
RCPTID RUNID HOSTID UNIQID HOST LOGHOST HOST_FROM MESSAGE PROGRAM PID MSGID SOURCE LEGACY_MSGHDR MSG MSGONLY
FULLHOST FULLHOST_FROM RAWMSG TRANSPORT MSGFORMAT FILE_NAME
""".split()
STAMP_MACROS = "DATE FULLDATE ISODATE STAMP YEAR MONTH DAY HOUR MIN SEC UNIXTIME TZOFFSET".split()


@pytest.mark.parametrize("name", SYSLOG_NG_MACROS + [f"{p}_{m}" for p in "RSCP" for m in STAMP_MACROS])
def test_every_syslog_ng_macro_is_computed_or_refused(name):
    from parbench.harness.differential.record import FIELDS

    try:
        compile_template(f"${name}")
    except TemplateError as exc:
        assert f"${name}" in str(exc)
    else:
        assert name in FIELDS, f"${name} is accepted but parbench diff does not compare it"


# ------------------------------------------------------------------ configuration


def conf(source: str) -> str:
    return ("@version: 4.8\nsource s { " + source + "; };\n"
            'destination d { file("/dev/null"); };\nlog { source(s); destination(d); };\n')


@pytest.mark.parametrize("source, kind, framing, protocol", [
    ('tcp(port(0))', "tcp", "text", False),
    ('network(port(0))', "network", "text", False),
    ('network(port(0) transport("text"))', "network", "text", False),
    ('network(port(0) transport(framed))', "network", "framed", False),
    ('syslog(port(0))', "syslog", "framed", True),
    ('syslog(port(0) transport("tcp"))', "syslog", "framed", True),
    ('syslog(port(0) transport(text))', "syslog", "text", True),
    ('network(port(0) flags(syslog-protocol))', "network", "text", True),
])
def test_source_drivers_decide_the_framing(source, kind, framing, protocol):
    (drv,) = parse_config(conf(source)).log_paths[0].sources[0].drivers
    assert (drv.kind, drv.framing, drv.syslog_protocol) == (kind, framing, protocol)


def test_syslog_driver_defaults_and_global_name_options():
    (drv,) = parse_config("options { use-fqdn(yes); use-dns(no); };\n" + conf("syslog()")).log_paths[0].sources[0].drivers
    assert (drv.port, drv.use_fqdn, drv.use_dns) == (601, True, False)
    with pytest.raises(ConfigError, match="transport\\(\\) is an option of network\\(\\) and syslog\\(\\)"):
        parse_config(conf('tcp(transport("tcp"))'))
    with pytest.raises(ConfigError, match="unsupported transport 'udp' in syslog\\(\\); supported: tcp, framed, text"):
        parse_config(conf('syslog(transport("udp"))'))


def test_loopback_resolves_like_use_dns():
    assert resolve_peer_name("127.0.0.1") == b"localhost"
    assert resolve_peer_name("192.0.2.123") == b"192.0.2.123"  # no name: the address
