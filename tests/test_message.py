import pytest
from hypothesis import given, settings, strategies as st

from parbench.reference.message import (Framer, FramingError, format_default, make_parser,
                               parse_rfc3164, parse_rfc5424)

# --- framing -----------------------------------------------------------------

lines = st.lists(st.binary(min_size=1, max_size=40).map(
    lambda b: b.replace(b"\n", b"x").replace(b"\r", b"y").replace(b"\x00", b"z")),
    max_size=30)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


def feed_all(framer: Framer, chunks: list[bytes]) -> list[bytes]:
    out = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out + framer.close()


@given(lines, st.lists(st.integers(0, 10_000), max_size=20))
def test_newline_framing_is_independent_of_chunking(msgs, cuts):
    stream = b"".join(m + b"\n" for m in msgs)
    assert feed_all(Framer(64), split_at(stream, cuts)) == msgs


def test_text_framing_never_reads_octet_counting():
    # tcp() and network(): a line that starts with digits is text, whatever follows.
    framer = Framer(100)
    assert framer.mode == "text"
    assert feed_all(framer, [b"12 <13>a\n5 hello\n27 x"]) == [b"12 <13>a", b"5 hello", b"27 x"]


@given(lines, st.lists(st.integers(0, 10_000), max_size=20))
def test_octet_counting_is_independent_of_chunking(msgs, cuts):
    stream = b"".join(b"%d %s" % (len(m), m) for m in msgs)
    framer = Framer(64, framing="framed")
    assert feed_all(framer, split_at(stream, cuts)) == msgs


def test_octet_counting_payload_may_contain_newlines_and_nuls():
    assert Framer(100, framing="framed").feed(b"5 a\nb\nc3 x\0z") == [b"a\nb\nc", b"x\0z"]


def test_unknown_framing_is_refused():
    with pytest.raises(ValueError):
        Framer(100, framing="auto")


def test_text_framing_strips_cr_nul_and_drops_empty_lines():
    assert Framer(100).feed(b"<13>a\r\n\n\r\n<13>b\x00\n<13>c") == [b"<13>a", b"<13>b"]


def test_nul_ends_a_message_like_a_newline():
    assert feed_all(Framer(100), [b"a\0b c\n\0\0d\0", b"e\n"]) == [b"a", b"b c", b"d", b"e"]


def test_close_delivers_partial_line():
    framer = Framer(100)
    assert framer.feed(b"<13>a\n<13>b") == [b"<13>a"]
    assert framer.close() == [b"<13>b"]


@given(st.integers(1, 300), st.integers(1, 40), st.lists(st.integers(0, 10_000), max_size=10))
def test_long_lines_are_cut_at_log_msg_size(length, limit, cuts):
    line = bytes((65 + i % 26) for i in range(length))
    stream = b"<" + line + b"\n<next\n"
    framer = Framer(limit)
    got = feed_all(framer, split_at(stream, cuts))
    whole = b"<" + line
    expected = [whole[i:i + limit] for i in range(0, len(whole), limit)]
    expected += [b"<next"[i:i + limit] for i in range(0, 5, limit)]
    assert got == expected
    assert b"".join(got) == whole + b"<next"  # nothing lost, nothing added


def test_buffer_stays_bounded_without_newlines():
    framer = Framer(1000)
    out = []
    for _ in range(100):
        out += framer.feed(b"x" * 777)
        assert framer.pending_bytes < 1000
    assert sum(map(len, out)) + framer.pending_bytes == 77_700


def test_oversized_frame_is_an_error_keeping_earlier_messages():
    framer = Framer(10, framing="framed")
    with pytest.raises(FramingError) as info:
        framer.feed(b"3 abc11 01234567890")
    assert info.value.messages == [b"abc"]
    assert "log-msg-size(10)" in str(info.value)
    with pytest.raises(FramingError):
        framer.feed(b"1 a")  # the connection is dead, as in syslog-ng


@pytest.mark.parametrize("stream", [b"12x abc", b"12345678901 a", b"3 abc4x"])
def test_bad_frame_header_is_an_error(stream):
    with pytest.raises(FramingError):
        Framer(100, framing="framed").feed(stream)


@given(st.lists(st.binary(max_size=30), max_size=12), st.integers(1, 12),
       st.lists(st.integers(0, 10_000), max_size=12))
def test_trim_large_messages_cuts_frames_under_any_chunking(msgs, limit, cuts):
    stream = b"".join(b"%d %s" % (len(m), m) for m in msgs)
    framer = Framer(limit, trim_large_messages=True, framing="framed")
    assert feed_all(framer, split_at(stream, cuts)) == [m[:limit] for m in msgs if m]


def test_frame_exactly_log_msg_size_is_accepted():
    assert Framer(5, framing="framed").feed(b"5 abcde") == [b"abcde"]


# --- RFC 3164 ----------------------------------------------------------------

def test_rfc3164_example_from_the_rfc():
    m = parse_rfc3164(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
    assert (m["HOST"], m["PROGRAM"], m["PID"], m["PRI"], m["FACILITY"], m["SEVERITY"]) == \
        (b"mymachine", b"su", b"", b"34", b"auth", b"crit")
    assert m["MSG"] == b"'su root' failed for lonvick on /dev/pts/8"
    assert m["MSGHDR"] == b"su: "
    assert m["DATE"] == b"Oct 11 22:14:15"


def test_rfc3164_pid_msghdr_and_default_line():
    m = parse_rfc3164(b"<13>Nov  6 12:00:00 web-01 app[123]: hello world\n")
    assert (m["HOST"], m["PROGRAM"], m["PID"], m["MSG"]) == (b"web-01", b"app", b"123", b"hello world")
    assert m["MSGHDR"] == b"app[123]: "
    assert format_default(m) == b"Nov  6 12:00:00 web-01 app[123]: hello world\n"
    assert m["ISODATE"].endswith(b"-11-06T12:00:00+00:00") or b"T12:00:00" in m["ISODATE"]


def test_rfc3164_without_timestamp_has_no_hostname():
    # syslog-ng looks for a hostname only after a timestamp.
    m = parse_rfc3164(b"<13>hello world", peer_host=b"10.1.1.1")
    assert (m["HOST"], m["PROGRAM"], m["MSG"]) == (b"10.1.1.1", b"hello", b"world")
    m = parse_rfc3164(b"Use the BFG!")
    assert (m["PRI"], m["FACILITY"], m["SEVERITY"]) == (b"13", b"user", b"notice")


def test_rfc3164_missing_host_and_iso_stamp_and_ipv6_host():
    m = parse_rfc3164(b"<13>Nov  6 12:00:00 prog: msg", peer_host=b"1.2.3.4")
    assert (m["HOST"], m["PROGRAM"], m["MSG"]) == (b"1.2.3.4", b"prog", b"msg")
    m = parse_rfc3164(b"<13>2026-11-06T10:00:00.123+02:00 fe80::1 prog: m")
    assert (m["HOST"], m["ISODATE"], m["DATE"]) == (b"fe80::1", b"2026-11-06T10:00:00+02:00", b"Nov  6 10:00:00")


def test_keep_hostname_false_uses_peer_address():
    raw = b"<13>Nov  6 12:00:00 web-01 app: hi"
    assert parse_rfc3164(raw, keep_hostname=False, peer_host=b"127.0.0.9")["HOST"] == b"127.0.0.9"
    assert parse_rfc3164(raw, keep_hostname=True)["HOST"] == b"web-01"


def test_bad_pri_puts_the_whole_line_into_msg():
    # syslog-ng 4.8.1 and AxoSyslog 4.27.0 alike: no parse error for RFC 3164.
    m = parse_rfc3164(b"<abc>x y", peer_host=b"9.9.9.9")
    assert (m["MSG"], m["PROGRAM"], m["PRI"], m["HOST"]) == (b"<abc>x y", b"", b"13", b"9.9.9.9")


# --- RFC 5424 ----------------------------------------------------------------

def test_rfc5424_example_1_nil_pid_no_sdata():
    m = parse_rfc5424(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
                      b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8")
    assert (m["HOST"], m["PROGRAM"], m["PID"], m["MSGID"]) == (b"mymachine.example.com", b"su", b"", b"ID47")
    assert m["MSG"] == b"'su root' failed for lonvick on /dev/pts/8"  # BOM removed
    assert m["ISODATE"] == b"2003-10-11T22:14:15+00:00"
    assert m["MSGHDR"] == b"su: "


def test_rfc5424_example_2_offset_and_pid():
    m = parse_rfc5424(b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
                      b"%% It's time to make the do-nuts.")
    assert (m["HOST"], m["PID"], m["FACILITY"], m["SEVERITY"]) == (b"192.0.2.1", b"8710", b"local4", b"notice")
    assert m["ISODATE"] == b"2003-08-24T05:14:15-07:00"
    assert m["MSGHDR"] == b"myproc[8710]: "


def test_rfc5424_sdata_with_escapes_and_empty_element():
    m = parse_rfc5424(b'<165>1 2003-10-11T22:14:15.003Z h evntslog - ID47 '
                      b'[exampleSDID@32473 iut="3" eventSource="App\\"li\\\\cat\\]ion" x="a\\nb"][flag] msg')
    assert m[".SDATA.exampleSDID@32473.iut"] == b"3"
    assert m[".SDATA.exampleSDID@32473.eventSource"] == b'App"li\\cat]ion'
    assert m[".SDATA.exampleSDID@32473.x"] == b"a\\nb"  # other escapes kept as is
    assert m[".SDATA.flag"] == b""
    assert m["MSG"] == b"msg"


def test_rfc5424_nil_host_and_no_message():
    m = parse_rfc5424(b"<13>1 - - - - - -", peer_host=b"5.5.5.5")
    assert (m["HOST"], m["PROGRAM"], m["MSG"], m["MSGHDR"]) == (b"5.5.5.5", b"", b"", b"")


def test_rfc5424_falls_back_to_3164_and_reports_parse_errors():
    legacy = parse_rfc5424(b"<13>Nov  6 12:00:00 web-01 app[1]: legacy")
    assert (legacy["HOST"], legacy["MSG"]) == (b"web-01", b"legacy")
    bad = parse_rfc5424(b'<13>1 2003-10-11T22:14:15Z h a - - [x k="a]"] m')
    assert bad["MSG"].startswith(b"Error processing log message: <13>1")
    assert bad["PROGRAM"] == b"syslog-ng"


@settings(max_examples=200)
@given(st.binary(max_size=120), st.booleans(), st.booleans())
def test_batch_parser_never_raises(raw, proto, keep):
    out = make_parser(proto, keep, b"127.0.0.1")([raw, b"<13>ok"])
    assert len(out) == 2
    for m in out:
        assert all(isinstance(v, bytes) for v in m.values())
        assert m["HOST"]


@given(st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")))
def test_3164_msg_is_the_tail_of_the_raw_message(tail):
    # The collector relies on MSG ending the output line unchanged.
    # (Trailing NULs and carriage returns are removed before parsing.)
    raw = b"<13>Nov  6 12:00:00 web-01 app[1]: x" + tail.rstrip(b"\x00\r")
    m = parse_rfc3164(raw)
    assert raw.endswith(m["MSG"]) and m["MSG"].endswith(tail.rstrip(b"\x00\r"))
    assert format_default(m).endswith(m["MSG"] + b"\n")


@pytest.mark.parametrize("token, host", [
    (b"fe80::1", b"fe80::1"),          # IPv6 address: colons allowed
    (b"a:b.c", b"a:b.c"),              # still IPv6-like at the colon
    (b"deadbeef:1", b"PEER"),          # 5 hex digits: the colon ends it, no host
    (b"1:2:3:4:5:6:7:8:9", b"PEER"),   # 8th colon: not IPv6 any more
    (b"web-01.example.com", b"web-01.example.com"),
])
def test_rfc3164_hostname_ipv6_heuristic(token, host):
    assert parse_rfc3164(b"<13>Nov  6 12:00:00 " + token + b" prog: m", peer_host=b"PEER")["HOST"] == host
