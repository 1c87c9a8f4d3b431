"""Framing and parsing of syslog messages, as syslog-ng does it.

Facts followed (syslog-ng sources: lib/logproto/logproto-{auto,text,framed}-server.c,
modules/syslogformat/syslog-format.c, lib/logreader.c; where the framing
below differs from syslog-ng's tcp() source: docs/semantics.md, "Framing"):

Framing (:class:`Framer`, one per connection)
* The framing is detected once per connection from its first byte, as
  syslog-ng's auto-detecting server does: a digit means RFC 6587 octet
  counting (``LEN SP MSG``), anything else newline-terminated text.
* Text: a message ends at ``\\n``; trailing ``\\r``/``\\n``/``\\0`` are
  removed; empty lines are dropped (syslog-ng's default, no
  ``flags(empty-lines)``).  ``log-msg-size`` is the input buffer size: a line
  that does not fit is cut into pieces of ``log-msg-size`` bytes, each
  delivered as its own message (nothing is dropped; the piece after the last
  cut ends at the newline).  At end of input the pending partial line is a
  message too (:meth:`Framer.close`).
* Octet counting: a header of at most 10 digits then a space.  A frame longer
  than ``log-msg-size``, or a malformed header, is an error and syslog-ng
  closes the connection: :class:`FramingError` (carrying the messages
  completed before the bad frame in ``.messages``).  With
  ``trim-large-messages(yes)`` (``Framer(..., trim_large_messages=True)``) an
  oversized frame is cut to ``log-msg-size`` bytes and its rest discarded.  A zero-length frame is
  dropped like an empty line.
* Memory: at most one partial message (< ``log-msg-size`` + header) is kept
  between calls.

Parsing
* RFC 3164 (``parse_rfc3164``): optional ``<PRI>`` (default 13 = user.notice;
  a ``<`` not followed by digits and ``>`` is a parse error), spaces, a
  timestamp (BSD ``Mmm dd hh:mm:ss`` with optional year / fraction, or ISO
  8601).  Only after a timestamp a HOST is looked for (a token up to a space,
  not containing ``[`` or, except in IPv6 addresses, ``:``).  Then
  ``PROGRAM[PID]: `` (program up to space/``[``/``:``); MSGHDR is that header
  exactly as received; MSG the rest.  Without a timestamp the received time
  is used.
* RFC 5424 (``parse_rfc5424``, ``flags(syslog-protocol)``): a message whose
  PRI/VERSION does not read as version 1 falls back to RFC 3164 parsing, as
  syslog-ng does.  ``-`` is nil (unset).  SDATA values are unescaped for
  ``\\"``, ``\\\\`` and ``\\]``; other backslashes are kept.  A leading UTF-8
  BOM is removed from MSG.  Malformed SDATA or header is a parse error.
* Parse error: syslog-ng replaces the message with one it generates:
  MSG = ``Error processing log message: <raw>``, PROGRAM ``syslog-ng``, PID its
  own pid, PRI 43 (syslog.err), HOST the peer.  The batch parser never raises.
* HOST: with ``keep_hostname=False`` (syslog-ng's default for network
  sources!) or when the message has no hostname, HOST is the peer address
  (no DNS: ``use-dns(no)``).
* DATE is rendered BSD style (``Nov  6 12:00:00``) and ISODATE as
  ``2026-11-06T12:00:00+00:00`` (no fraction, syslog-ng's frac-digits(0)), in
  the message's own zone offset, or the local zone when the message gave none.
"""
from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta
from typing import Callable

from parbench.errors import UsageError

MessageDict = dict[str, bytes]


class FramingError(UsageError):
    """The connection's byte stream cannot be framed; syslog-ng closes it.
    ``messages`` holds those completed before the bad frame."""

    def __init__(self, message: str, messages: list[bytes] | None = None):
        super().__init__(message)
        self.messages = messages or []


class Framer:
    """Incremental framer for one connection (see module docstring)."""

    __slots__ = ("max_msg_size", "trim_large_messages", "_buf", "_mode", "_frame_len",
                 "_failed", "_skip")

    def __init__(self, max_msg_size: int, trim_large_messages: bool = False):
        if max_msg_size < 1:
            raise ValueError(f"max_msg_size must be >= 1, got {max_msg_size}")
        self.max_msg_size = max_msg_size
        # syslog-ng's trim-large-messages(yes): an oversized frame is cut to
        # log-msg-size and the rest of it discarded, instead of an error.
        self.trim_large_messages = trim_large_messages
        self._skip = 0
        self._buf = b""
        self._mode: str | None = None  # "text" or "framed", fixed by the first byte
        self._frame_len: int | None = None
        self._failed: str | None = None

    @property
    def mode(self) -> str | None:
        return self._mode

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self._failed:
            raise FramingError(self._failed)
        if not data:
            return []
        if self._mode is None:
            self._mode = "framed" if data[:1].isdigit() else "text"
        if self._mode == "text":
            return self._feed_text(data)
        return self._feed_framed(data)

    def close(self) -> list[bytes]:
        """End of input: a pending partial line is delivered (text framing)."""
        rest, self._buf = self._buf, b""
        if self._mode == "text" and rest:
            rest = rest.rstrip(b"\r\n\x00")
            return [rest] if rest else []
        return []

    def _feed_text(self, data: bytes) -> list[bytes]:
        limit = self.max_msg_size
        buf = self._buf + data if self._buf else data
        if b"\n" not in data:
            if len(buf) < limit:
                self._buf = buf
                return []
            lines = []
            rest = buf
        else:
            lines = buf.split(b"\n")
            rest = lines.pop()
            if max(map(len, lines)) >= limit:
                lines = [piece for line in lines for piece in _cut(line, limit)]
            if b"\r" in buf or b"\x00" in buf:
                lines = [line.rstrip(b"\r\x00") for line in lines]
            if b"" in lines:
                lines = [line for line in lines if line]
        if len(rest) >= limit:
            whole = len(rest) - len(rest) % limit
            for start in range(0, whole, limit):
                piece = rest[start:start + limit].rstrip(b"\r\x00")
                if piece:
                    lines.append(piece)
            rest = rest[whole:]
        self._buf = rest
        return lines

    def _feed_framed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        limit = self.max_msg_size
        need = self._frame_len
        if self._skip:
            dropped = min(self._skip, end)
            self._skip -= dropped
            pos = dropped
        while not self._skip:
            if need is None:
                space = buf.find(b" ", pos, pos + 11)
                if space < 0:
                    head = buf[pos:pos + 11]
                    if len(head) > 10 or (head and not head.isdigit()):
                        self._fail(f"invalid octet-counting frame header {head[:16]!r}", out)
                    break
                head = buf[pos:space]
                if head and not head.isdigit():
                    self._fail(f"invalid octet-counting frame header {head[:16]!r}", out)
                need = int(head) if head else 0
                pos = space + 1
                if need > limit and self.trim_large_messages:
                    if end - pos < limit:
                        # Wait for the kept part; the header is parsed again.
                        pos = space - len(head)
                        need = None
                        break
                    out.append(buf[pos:pos + limit])
                    dropped = min(need - limit, end - pos - limit)
                    self._skip = need - limit - dropped
                    pos += limit + dropped
                    need = None
                    continue
                if need > limit:
                    self._fail(
                        f"incoming frame of {need} bytes is larger than log-msg-size({limit})", out
                    )
            if end - pos < need:
                break
            if need:
                out.append(buf[pos:pos + need])
            pos += need
            need = None
        self._frame_len = need
        self._buf = buf[pos:] if pos < end else b""
        return out

    def _fail(self, reason: str, completed: list[bytes]) -> None:
        self._failed = reason
        self._buf = b""
        raise FramingError(reason, completed)


def _cut(line: bytes, limit: int) -> list[bytes]:
    if len(line) < limit:
        return [line]
    return [line[i:i + limit] for i in range(0, len(line), limit)]


# --- priority ----------------------------------------------------------------

_FACILITY_NAMES = {
    0: b"kern", 1: b"user", 2: b"mail", 3: b"daemon", 4: b"auth", 5: b"syslog",
    6: b"lpr", 7: b"news", 8: b"uucp", 9: b"cron", 10: b"authpriv", 11: b"ftp",
    **{16 + i: b"local%d" % i for i in range(8)},
}
_SEVERITY_NAMES = (b"emerg", b"alert", b"crit", b"err", b"warning", b"notice", b"info", b"debug")


def _pri_fields(pri: int) -> tuple[bytes, bytes, bytes]:
    fac = pri >> 3
    return (b"%d" % pri, _FACILITY_NAMES.get(fac, b"%d" % fac), _SEVERITY_NAMES[pri & 7])


_PRI_TABLE: dict[bytes | None, tuple[bytes, bytes, bytes]] = {
    b"%d" % p: _pri_fields(p) for p in range(192)
}
_DEFAULT_PRI = _pri_fields(13)  # user.notice
_PRI_TABLE[None] = _DEFAULT_PRI
_PARSE_ERROR_PRI = _pri_fields(43)  # syslog.err


def _pri_lookup(pri: bytes | None) -> tuple[bytes, bytes, bytes]:
    fields = _PRI_TABLE.get(pri)
    if fields is None:
        fields = _pri_fields(int(pri) if pri else 0)
    return fields


# --- timestamps --------------------------------------------------------------

_MONTH_NAMES = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
                b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
_MONTHS = {name: i + 1 for i, name in enumerate(_MONTH_NAMES)}
_BSD_TS = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9](?: [0-9]{4})? [0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
_ISO_TS = rb"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
_ISO_PARTS = re.compile(
    rb"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)

_date_cache: dict[bytes, tuple[bytes, bytes]] = {}
_DATE_CACHE_MAX = 8192


def _render_dates(year: int, mon: int, day: int, hh: int, mm: int, ss: int,
                  offset_s: int) -> tuple[bytes, bytes]:
    sign = b"+" if offset_s >= 0 else b"-"
    oh, om = divmod(abs(offset_s) // 60, 60)
    date = b"%s %2d %02d:%02d:%02d" % (_MONTH_NAMES[mon - 1], day, hh, mm, ss)
    iso = b"%04d-%02d-%02dT%02d:%02d:%02d%s%02d:%02d" % (year, mon, day, hh, mm, ss, sign, oh, om)
    return date, iso


def _local_offset(dt: datetime) -> int:
    return time.localtime(time.mktime(dt.timetuple())).tm_gmtoff


def _dates_of_received(now: float) -> tuple[bytes, bytes]:
    key = b"@%d" % int(now)
    cached = _date_cache.get(key)
    if cached is None:
        t = time.localtime(int(now))
        cached = _render_dates(t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min,
                               t.tm_sec, t.tm_gmtoff)
        _remember(key, cached)
    return cached


def _remember(key: bytes, value: tuple[bytes, bytes]) -> None:
    if len(_date_cache) >= _DATE_CACHE_MAX:
        _date_cache.clear()
    _date_cache[key] = value


def _dates_of(ts: bytes | None) -> tuple[bytes, bytes]:
    """(DATE, ISODATE) of a timestamp as received; the received time when absent."""
    if ts is None or ts == b"-":
        return _dates_of_received(time.time())
    cached = _date_cache.get(ts)
    if cached is not None:
        return cached
    try:
        if ts[:1].isdigit():
            y, mo, d, hh, mi, ss, zone = _ISO_PARTS.match(ts).groups()
            dt = datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss))
            if zone is None:
                offset = _local_offset(dt)
            elif zone == b"Z":
                offset = 0
            else:
                digits = zone[1:].replace(b":", b"")
                offset = (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * (-1 if zone[:1] == b"-" else 1)
        else:
            mon = _MONTHS[ts[:3]]
            day = int(ts[4:6])
            rest = ts[7:]
            now = datetime.now()
            year_given = rest[4:5] == b" "
            if year_given:
                year, rest = int(rest[:4]), rest[5:]
            else:
                year = now.year
            hh, mi, ss = int(rest[0:2]), int(rest[3:5]), int(rest[6:8])
            dt = datetime(year, mon, day, hh, mi, ss)
            if not year_given and dt - now > timedelta(days=30):
                dt = dt.replace(year=year - 1)  # a December stamp read in January
            offset = _local_offset(dt)
        value = _render_dates(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, offset)
    except (ValueError, KeyError, AttributeError, OverflowError):
        # A stamp that looks right but is no real date (Feb 30): received time.
        return _dates_of_received(time.time())
    _remember(ts, value)
    return value


# --- RFC 3164 ----------------------------------------------------------------

# A hostname ends at a space or "[", and at ":" once it can no longer be an
# IPv6 address (syslog-ng's heuristic: hex segments of <= 4 digits, <= 7 colons).
_HOSTNAME = rb"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){0,7}[^ \[:]*"
_HOST_TOKEN = rb"(?P<host>" + _HOSTNAME + rb") +"
_PROGRAM = rb"(?P<hdr>(?P<prog>[^ \[:]*)(?:\[(?P<pid>[^ \]:]*)\]?)?:? ?)"
_RFC3164 = re.compile(
    rb"(?:<(?P<pri>[0-9]*)>)? *"
    rb"(?:(?P<ts>" + _BSD_TS + rb"|" + _ISO_TS + rb") *(?:" + _HOST_TOKEN + rb")?)?"
    + _PROGRAM,
    re.DOTALL,
)

_OWN_PID = b"%d" % os.getpid()


def _strip_tail(raw: bytes) -> bytes:
    # syslog-ng's format handler drops trailing newlines and NULs.
    while raw[-1:] in (b"\n", b"\x00") and raw:
        raw = raw[:-1]
    return raw


def parse_error_message(raw: bytes, peer_host: bytes) -> MessageDict:
    """The message syslog-ng generates in place of one it cannot parse."""
    pri, fac, sev = _PARSE_ERROR_PRI
    date, iso = _dates_of_received(time.time())
    return {
        "HOST": peer_host, "PROGRAM": b"syslog-ng", "PID": _OWN_PID,
        "MSG": b"Error processing log message: " + raw, "MSGID": b"",
        "PRI": pri, "FACILITY": fac, "SEVERITY": sev, "DATE": date, "ISODATE": iso,
        "MSGHDR": b"syslog-ng[" + _OWN_PID + b"]: ", "SOURCEIP": peer_host,
    }


def _make_rfc3164(keep_hostname: bool, peer_host: bytes) -> Callable[[bytes], MessageDict]:
    match = _RFC3164.match
    pri_table = _PRI_TABLE
    date_cache = _date_cache

    def parse(raw: bytes) -> MessageDict:
        if raw[-1:] in (b"\n", b"\x00"):
            raw = _strip_tail(raw)
        m = match(raw)
        pri, ts, host, prog, pid, hdr = m.group("pri", "ts", "host", "prog", "pid", "hdr")
        if pri is None and raw[:1] == b"<":
            return parse_error_message(raw, peer_host)
        fields = pri_table.get(pri) or _pri_lookup(pri)
        dates = date_cache.get(ts) if ts is not None else None
        if dates is None:
            dates = _dates_of(ts)
        if pid is None:
            pid = b""
        elif m.end("pid") == len(raw):
            pid = b""  # "prog[123" at the very end: syslog-ng sets no PID
        return {
            "HOST": host if keep_hostname and host else peer_host,
            "PROGRAM": prog, "PID": pid, "MSG": raw[m.end():], "MSGID": b"",
            "PRI": fields[0], "FACILITY": fields[1], "SEVERITY": fields[2],
            "DATE": dates[0], "ISODATE": dates[1], "MSGHDR": hdr, "SOURCEIP": peer_host,
        }

    return parse


def parse_rfc3164(raw: bytes, *, keep_hostname: bool = True,
                  peer_host: bytes = b"127.0.0.1") -> MessageDict:
    return _make_rfc3164(keep_hostname, peer_host)(raw)


# --- RFC 5424 ----------------------------------------------------------------

_SD_NAME = rb"[^ \]=\"\x80-\xff]{1,32}"
_SD_VALUE = rb"(?:[^\"\\\]]|\\.)*"
_SD_ELEMENT = rb"\[" + _SD_NAME + rb"(?: " + _SD_NAME + rb"=\"" + _SD_VALUE + rb"\")*\]"
_RFC5424_VERSION = re.compile(rb"(?:<[0-9]*>)?1 ")
_RFC5424 = re.compile(
    rb"(?:<(?P<pri>[0-9]*)>)?1 (?P<ts>-|" + _ISO_TS + rb") "
    rb"(?P<host>" + _HOSTNAME + rb") (?P<app>[^ ]*) (?P<pid>[^ ]*) (?P<msgid>[^ ]*) "
    rb"(?P<sd>-|(?:" + _SD_ELEMENT + rb")+)(?: (?P<msg>.*))?\Z",
    re.DOTALL,
)
_SD_ELEMENT_PARTS = re.compile(rb"\[(" + _SD_NAME + rb")((?: " + _SD_NAME + rb"=\"" + _SD_VALUE + rb"\")*)\]", re.DOTALL)
_SD_PARAM = re.compile(rb" (" + _SD_NAME + rb")=\"(" + _SD_VALUE + rb")\"", re.DOTALL)
_SD_UNESCAPE = re.compile(rb"\\([\"\\\]])")
_BOM = b"\xef\xbb\xbf"


def _nil(value: bytes, max_len: int) -> bytes:
    return b"" if value == b"-" else value[:max_len]


def _sdata(sd: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for element in _SD_ELEMENT_PARTS.finditer(sd):
        sd_id = element.group(1).decode("ascii")
        params = element.group(2)
        if not params:
            out[f".SDATA.{sd_id}"] = b""
            continue
        for name, value in _SD_PARAM.findall(params):
            if b"\\" in value:
                value = _SD_UNESCAPE.sub(rb"\1", value)
            out[f".SDATA.{sd_id}.{name.decode('ascii')}"] = value
    return out


def _make_rfc5424(keep_hostname: bool, peer_host: bytes) -> Callable[[bytes], MessageDict]:
    match = _RFC5424.match
    is_5424 = _RFC5424_VERSION.match
    legacy = _make_rfc3164(keep_hostname, peer_host)
    pri_table = _PRI_TABLE
    date_cache = _date_cache

    def parse(raw: bytes) -> MessageDict:
        if raw[-1:] in (b"\n", b"\x00"):
            raw = _strip_tail(raw)
        m = match(raw)
        if m is None:
            if is_5424(raw) is None:
                return legacy(raw)  # not version 1: syslog-ng parses it as RFC 3164
            return parse_error_message(raw, peer_host)
        pri, ts, host, app, pid, msgid, sd, msg = m.group(
            "pri", "ts", "host", "app", "pid", "msgid", "sd", "msg")
        fields = pri_table.get(pri) or _pri_lookup(pri)
        dates = date_cache.get(ts)
        if dates is None:
            dates = _dates_of(ts)
        if msg is None:
            msg = b""
        elif msg[:3] == _BOM:
            msg = msg[3:]
        program = _nil(app, 48)
        pid = _nil(pid, 128)
        if host == b"-" or not keep_hostname or not host:
            host = peer_host
        result = {
            "HOST": host, "PROGRAM": program, "PID": pid, "MSG": msg,
            "MSGID": _nil(msgid, 32), "PRI": fields[0], "FACILITY": fields[1],
            "SEVERITY": fields[2], "DATE": dates[0], "ISODATE": dates[1],
            "MSGHDR": (program + (b"[" + pid + b"]: " if pid else b": ")) if program else b"",
            "SOURCEIP": peer_host,
        }
        if sd != b"-":
            result.update(_sdata(sd))
        return result

    return parse


def parse_rfc5424(raw: bytes, *, keep_hostname: bool = True,
                  peer_host: bytes = b"127.0.0.1") -> MessageDict:
    return _make_rfc5424(keep_hostname, peer_host)(raw)


def make_parser(syslog_protocol: bool, keep_hostname: bool,
                peer_host: bytes) -> Callable[[list[bytes]], list[MessageDict]]:
    """A batch parser for one connection; never raises on malformed input."""
    one = (_make_rfc5424 if syslog_protocol else _make_rfc3164)(keep_hostname, peer_host)

    def parse_batch(raws: list[bytes]) -> list[MessageDict]:
        try:
            return list(map(one, raws))
        except Exception:  # defensive: one bad message must not lose the batch
            out = []
            for raw in raws:
                try:
                    out.append(one(raw))
                except Exception:
                    out.append(parse_error_message(raw, peer_host))
            return out

    return parse_batch


def format_default(msg: MessageDict) -> bytes:
    """syslog-ng's default file/network line: ``${DATE} ${HOST} ${MSGHDR}${MSG}\\n``.

    (syslog-ng's built-in default uses the BSD stamp, ts-format(rfc3164).)
    """
    g = msg.get
    return b"".join((g("DATE", b""), b" ", g("HOST", b""), b" ", g("MSGHDR", b""),
                     g("MSG", b""), b"\n"))


def format_default_many(messages: list[MessageDict]) -> bytes:
    """The default lines of a batch, joined (one write per batch)."""
    return b"".join(map(format_default, messages))
