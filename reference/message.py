"""Framing and parsing of syslog messages, as syslog-ng does it.

Facts followed (syslog-ng sources: lib/logproto/logproto-{text,framed}-server.c,
lib/logproto/logproto-server.c, lib/msg-format.c; docs/semantics.md,
"Framing" and "Message parsing"):

Framing (:class:`Framer`, one per connection)
* The framing belongs to the source driver (``SourceDriver.framing``), never
  to the bytes: ``tcp()`` and ``network()`` read text, ``syslog()`` (and
  ``transport(framed)``) RFC 6587 octet counting (``LEN SP MSG``).
* Text: a message ends at ``\\n`` or at a NUL byte; trailing ``\\r`` and NULs
  are removed; empty lines are dropped (syslog-ng's default, no
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
  dropped like an empty line.  A frame may hold newlines and NULs.
* Memory: at most one partial message (< ``log-msg-size`` + header) is kept
  between calls.

Parsing (:func:`make_parser`, one per connection): the RFC 3164 and RFC 5424
readings of ``reference.syslog_format`` (its docstring has the rules), under
the version profile's parsing fields.  The common well-formed messages take
a fast path here (one regular expression, dates cached per timestamp text)
that gives the same result as the step-by-step reading.
"""
from __future__ import annotations

import os
import re
import socket
import time
from typing import Callable

from parbench.errors import UsageError
from parbench.reference.profiles import DEFAULT_PROFILE, Profile, get_profile
from parbench.reference.syslog_format import ParseOptions, Peer, error_message, parse, pri_fields
from parbench.reference.timestamps import received_stamp, render, scan_rfc3164, scan_rfc5424, to_stamp

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

    def __init__(self, max_msg_size: int, trim_large_messages: bool = False, framing: str = "text"):
        if max_msg_size < 1:
            raise ValueError(f"max_msg_size must be >= 1, got {max_msg_size}")
        if framing not in ("text", "framed"):
            raise ValueError(f"framing must be 'text' or 'framed', got {framing!r}")
        self.max_msg_size = max_msg_size
        # syslog-ng's trim-large-messages(yes): an oversized frame is cut to
        # log-msg-size and the rest of it discarded, instead of an error.
        self.trim_large_messages = trim_large_messages
        self._skip = 0
        self._buf = b""
        self._mode = framing
        self._frame_len: int | None = None
        self._failed: str | None = None

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self._failed:
            raise FramingError(self._failed)
        if not data:
            return []
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
        if b"\x00" in data:
            data = data.replace(b"\x00", b"\n")  # a NUL ends a message as a newline does
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


# --- parsing -----------------------------------------------------------------
#
# ``reference.syslog_format`` reads any message the way syslog-ng does, step
# by step.  The common well-formed messages take a fast path here: one
# regular expression whose every accepted input the step-by-step reading
# would read the same way (tests/test_message.py checks both on random
# input), with the rendered dates cached per timestamp text.

_MONTH = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
# <PRI>Mmm dd hh:mm:ss HOST PROGRAM[PID]: MSG, where nothing calls for a
# special case: no year, fraction or ":" after the stamp, a host that is
# no 4-digit year (LinkSys) and has no ":" (IPv6 heuristics), no AIX
# forwarding or "last message repeated", and a [PID] that is closed.
_FAST_3164 = re.compile(
    rb"<(?P<pri>[0-9]{1,3})>(?P<ts>" + _MONTH + rb" [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}) +"
    rb"(?![0-9]{4}\s|Message forwarded from |last message repeated.)"
    rb"(?P<host>[^ \[:]{1,255}) +"
    rb"(?P<hdr>(?P<prog>[^ \[:]*+)(?:\[(?P<pid>[^ \]:]*+)\]|(?!\[)):? ?)",
    re.DOTALL,
)
_SD_SIMPLE_NAME = rb'[!#-<>-\\^-~]{1,32}'  # printable ASCII but '=', ' ', ']', '"'
_SD_SIMPLE = rb"\[" + _SD_SIMPLE_NAME + rb'(?: ' + _SD_SIMPLE_NAME + rb'="[^"\\\]]*")*\]'
# <PRI>1 STAMP HOST APP PROCID MSGID SD [MSG]: an ISO stamp with "Z" or
# "+hh:mm" (or "-"), fields within syslog-ng's limits, SD without escapes.
_FAST_5424 = re.compile(
    rb"<(?P<pri>[0-9]{1,3})>1 (?P<ts>-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    rb"(?:Z|[+-][0-9]{2}:[0-9]{2})) (?P<host>[^ \[:]{1,255}) (?P<app>[^ ]{1,48}) (?P<pid>[^ ]{1,128}) "
    rb"(?P<msgid>[^ ]{1,32}) (?P<sd>-|(?:" + _SD_SIMPLE + rb")+)(?: (?P<msg>.*))?\Z",
    re.DOTALL,
)
_SD_SIMPLE_ELEMENT = re.compile(rb"\[(" + _SD_SIMPLE_NAME + rb")([^\]]*)\]")
_SD_SIMPLE_PARAM = re.compile(rb" (" + _SD_SIMPLE_NAME + rb')="([^"]*)"')
_BOM = b"\xef\xbb\xbf"

_PRI_TABLE: dict[bytes, tuple[bytes, bytes, bytes]] = {}
for _pri in range(1000):
    for _text in {b"%d" % _pri, b"%02d" % _pri, b"%03d" % _pri}:
        _PRI_TABLE[_text] = pri_fields(_pri)

# Rendered (DATE, ISODATE) per timestamp text, one cache per way of
# converting stamps (Profile.mktime_whole_stamp).
_date_caches: dict[bool, dict[bytes, tuple[bytes, bytes]]] = {True: {}, False: {}}
_DATE_CACHE_MAX = 8192
# The year of a stamp without one depends on the current month: the caches
# are emptied when the month (or the local zone) changes.
_cache_epoch: list[tuple[int, int, int]] = [(0, 0, 0)]


def _check_cache_epoch(now: float) -> None:
    t = time.localtime(now)
    epoch = (t.tm_year, t.tm_mon, t.tm_gmtoff)
    if epoch != _cache_epoch[0]:
        for cache in _date_caches.values():
            cache.clear()
        _cache_epoch[0] = epoch


def _dates_of(ts: bytes, syslog_protocol: bool, whole_stamp: bool) -> tuple[bytes, bytes] | None:
    """(DATE, ISODATE) of a timestamp the fast path matched; None for a
    stamp the platform cannot represent (the slow path then decides)."""
    cache = _date_caches[whole_stamp]
    dates = cache.get(ts)
    if dates is None:
        scanned = (scan_rfc5424 if syslog_protocol else scan_rfc3164)(ts, 0)
        try:
            dates = render(to_stamp(scanned[0], whole_stamp=whole_stamp))
        except (OverflowError, ValueError, TypeError):
            return None
        if len(cache) >= _DATE_CACHE_MAX:
            cache.clear()
        cache[ts] = dates
    return dates


def _own_host() -> bytes:
    return socket.gethostname().split(".")[0].encode("utf-8", "surrogateescape")


def peer_for(peer_ip: bytes, peer_name: bytes | None = None) -> Peer:
    """The ``Peer`` of a connection from ``peer_ip`` (``peer_name``: its
    resolved name, when the source resolves names)."""
    return Peer(ip=peer_ip, name=peer_name or peer_ip, own_host=_own_host(), own_pid=b"%d" % os.getpid())


def resolve_peer_name(peer_ip: str, use_fqdn: bool = False) -> bytes:
    """The name of ``peer_ip`` as syslog-ng's ``use-dns(yes)`` finds it:
    reverse lookup (a name is required), cut at the first dot unless
    ``use-fqdn(yes)``; the address itself when there is no name."""
    try:
        name, _port = socket.getnameinfo((peer_ip, 0), socket.NI_NAMEREQD)
    except OSError:
        return peer_ip.encode()
    if not use_fqdn:
        name = name.split(".")[0]
    return name.encode("utf-8", "surrogateescape")


def _make_parse(opts: ParseOptions, peer: Peer) -> Callable[[bytes], MessageDict]:
    fast = (_FAST_5424 if opts.syslog_protocol else _FAST_3164).match
    pri_table = _PRI_TABLE
    whole_stamp = opts.mktime_whole_stamp
    date_cache = _date_caches[whole_stamp]
    keep = opts.keep_hostname
    store_header = opts.store_legacy_msghdr
    expect_hostname = opts.expect_hostname
    peer_name, peer_ip = peer.name, peer.ip

    def slow(raw: bytes) -> MessageDict:
        return parse(raw, opts, peer)

    def parse_3164(raw: bytes) -> MessageDict:
        m = fast(raw) if expect_hostname else None
        if m is None or raw[-1:] in (b"\n", b"\r", b"\x00"):
            return slow(raw)
        pri, ts, host, hdr, prog, pid = m.group("pri", "ts", "host", "hdr", "prog", "pid")
        dates = date_cache.get(ts) or _dates_of(ts, False, whole_stamp)
        if dates is None:
            return slow(raw)
        fields = pri_table[pri]
        out = {
            "HOST": host if keep else peer_name, "HOST_FROM": peer_name, "SOURCEIP": peer_ip,
            "PROGRAM": prog, "PID": pid or b"", "MSGID": b"", "MSG": raw[m.end():],
            "PRI": fields[0], "FACILITY": fields[1], "SEVERITY": fields[2],
            "DATE": dates[0], "ISODATE": dates[1], "MSGHDR": hdr,
        }
        if store_header:
            out["LEGACY_MSGHDR"] = hdr
        else:
            out["MSGHDR"] = (prog + (b"[" + pid + b"]: " if pid else b": ")) if prog else b""
        return out

    def parse_5424(raw: bytes) -> MessageDict:
        m = fast(raw)
        if m is None or raw[-1:] in (b"\n", b"\r", b"\x00"):
            return slow(raw)
        pri, ts, host, app, pid, msgid, sd, msg = m.group("pri", "ts", "host", "app", "pid", "msgid", "sd", "msg")
        if ts == b"-":
            dates = render(received_stamp(time.time()))
        else:
            dates = date_cache.get(ts) or _dates_of(ts, True, whole_stamp)
            if dates is None:
                return slow(raw)
        fields = pri_table[pri]
        if msg is None:
            msg = b""
        elif msg[:3] == _BOM:
            msg = msg[3:]
        program = b"" if app == b"-" else app
        pid = b"" if pid == b"-" else pid
        out = {
            "HOST": host if keep and host != b"-" else peer_name, "HOST_FROM": peer_name, "SOURCEIP": peer_ip,
            "PROGRAM": program, "PID": pid, "MSGID": b"" if msgid == b"-" else msgid, "MSG": msg,
            "PRI": fields[0], "FACILITY": fields[1], "SEVERITY": fields[2],
            "DATE": dates[0], "ISODATE": dates[1],
            "MSGHDR": (program + (b"[" + pid + b"]: " if pid else b": ")) if program else b"",
        }
        if sd != b"-":
            for element in _SD_SIMPLE_ELEMENT.finditer(sd):
                prefix = ".SDATA." + element.group(1).decode("ascii")
                params = element.group(2)
                if not params:
                    out[prefix] = b""
                for name, value in _SD_SIMPLE_PARAM.findall(params):
                    out[prefix + "." + name.decode("ascii")] = value
        return out

    return parse_5424 if opts.syslog_protocol else parse_3164


def _options(profile: Profile | None, **options) -> ParseOptions:
    return ParseOptions.for_profile(profile or get_profile(DEFAULT_PROFILE), **options)


def parse_rfc3164(raw: bytes, *, keep_hostname: bool = True, peer_host: bytes = b"127.0.0.1",
                  profile: Profile | None = None) -> MessageDict:
    return _make_parse(_options(profile, keep_hostname=keep_hostname), peer_for(peer_host))(raw)


def parse_rfc5424(raw: bytes, *, keep_hostname: bool = True, peer_host: bytes = b"127.0.0.1",
                  profile: Profile | None = None) -> MessageDict:
    return _make_parse(_options(profile, syslog_protocol=True, keep_hostname=keep_hostname),
                       peer_for(peer_host))(raw)


def parse_error_message(raw: bytes, peer_host: bytes, position: int = 0) -> MessageDict:
    """The message syslog-ng generates in place of one it cannot parse."""
    return error_message(raw, position, peer_for(peer_host), _options(None), time.time())


def make_parser(syslog_protocol: bool, keep_hostname: bool, peer_host: bytes, *,
                peer_name: bytes | None = None, expect_hostname: bool = True,
                store_legacy_msghdr: bool = True,
                profile: Profile | None = None) -> Callable[[list[bytes]], list[MessageDict]]:
    """A batch parser for one connection from ``peer_host`` (the address;
    ``peer_name``: its resolved name with use-dns(yes)) under ``profile``
    (default: the default profile); never raises."""
    opts = _options(profile, syslog_protocol=syslog_protocol, keep_hostname=keep_hostname,
                    expect_hostname=expect_hostname, store_legacy_msghdr=store_legacy_msghdr)
    peer = peer_for(peer_host, peer_name)
    one = _make_parse(opts, peer)

    def parse_batch(raws: list[bytes]) -> list[MessageDict]:
        _check_cache_epoch(time.time())
        try:
            return list(map(one, raws))
        except Exception:  # defensive: one bad message must not lose the batch
            out = []
            for raw in raws:
                try:
                    out.append(one(raw))
                except Exception:
                    out.append(error_message(raw, 0, peer, opts, time.time()))
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
