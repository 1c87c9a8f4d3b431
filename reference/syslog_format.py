"""RFC 3164 and RFC 5424 headers, read the way syslog-ng reads them.

This is the complete procedure, step by step, for every message;
``reference.message`` has a fast path for the common well-formed RFC 3164
line and falls back to ``parse`` for everything else (its tests check that
both agree).  What follows is syslog-ng's behaviour (the upstream functions
are in modules/syslogformat/syslog-format.c, lib/msg-format.c,
lib/logsource.c, lib/template/macros.c; the differences between versions
are listed in docs/semantics.md, "Message parsing"):

Before parsing, trailing ``\\r``, ``\\n`` and NUL bytes are removed.

RFC 3164 (``parse_legacy``; the ``syslog()`` driver and
``flags(syslog-protocol)`` fall back to it when PRI/VERSION is not
``<N>1``):

1. Up to 10 digits followed by a space at the very start look like an
   RFC 6587 frame length on a text transport: the digits are skipped, the
   space is not (so a ``<PRI>`` after them is no longer at the start).
2. ``<digits>``: the PRI, kept to 16 bits (``<65537>`` is 1).  ``<`` then
   a non-digit before ``>`` is a bad PRI: the whole line goes to $MSG with
   the default PRI.  No ``<``: PRI 13 (user.notice).
3. Cisco: digits then ``: `` is a sequence number (``.SDATA.meta.sequenceId``);
   spaces are skipped; a ``*`` (clock not synchronized) or ``.``
   (synchronized) before the stamp sets ``.SDATA.timeQuality.isSynced``.
4. A timestamp (``reference.timestamps.scan_rfc3164``).  Without one, the
   received time, no host name, and step 6 at once.
5. After a stamp and spaces: ``Message forwarded from HOST:`` (AIX) gives
   the host name; ``last message repeated`` ends the header (no host, no
   program); otherwise a host name: a token up to a space or ``[`` (at
   most 255 bytes, followed by a space; a ``:`` ends it once the token
   cannot be an IPv6 address), then spaces.
6. ``PROGRAM[PID]: ``: PROGRAM up to a space, ``[`` or ``:``; PID between
   ``[`` and ``]``, ``:`` or a space (none when the line ends inside it);
   then one ``:`` and one space, each optional.  The bytes consumed are
   $LEGACY_MSGHDR; the rest is $MSG.

RFC 5424 (``parse_syslog_protocol``): ``<PRI>1 `` (any number of digits
that reads as 1, ``01`` too), the ISO stamp or ``-``, then HOSTNAME,
APP-NAME (48 bytes kept), PROCID (128), MSGID (32), each up to a space,
``-`` meaning none; structured data (``-``, or ``[ID PARAM="VALUE" ...]``
elements: names up to 255 bytes all told, ``\\"`` ``\\\\`` ``\\]`` unescaped,
other backslashes kept, unquoted values up to a space or ``]``, a space
allowed after ``[`` and before ``]``; anything else where the SD belongs
is taken as the start of MSG's field), then a space and MSG, a leading
UTF-8 BOM removed.  A missing field is a parse error.

A parse error replaces the message with one syslog-ng generates:
``Error processing log message: <line>``, with ``>@<`` inserted one byte
before the position where parsing stopped; HOST is the local host name
(short), PROGRAM ``syslog-ng``, PID its own, PRI 43 (syslog.err), the
received time.

Every message then gets $HOST_FROM (the peer's name: resolved with
``use-dns(yes)``, else its address) and, unless ``keep-hostname(yes)``
and the message named a host, $HOST = $HOST_FROM.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

from parbench.reference.timestamps import Stamp, received_stamp, render, scan_rfc3164, scan_rfc5424, to_stamp

MessageDict = dict[str, bytes]

_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_FORWARDED = b"Message forwarded from "
_REPEATED = b"last message repeated"
_BOM = b"\xef\xbb\xbf"
DEFAULT_PRI = 13  # user.notice
ERROR_PRI = 43  # syslog.err
#: a host name is at most this long (syslog-ng's buffer of 256 bytes)
MAX_HOSTNAME = 255
#: .SDATA.ID.PARAM names are at most this long, prefix and dots included
MAX_SD_NAME = 255
SD_PREFIX = ".SDATA."

_FACILITIES = {
    0: b"kern", 1: b"user", 2: b"mail", 3: b"daemon", 4: b"auth", 5: b"syslog", 6: b"lpr", 7: b"news",
    8: b"uucp", 9: b"cron", 10: b"authpriv", 11: b"ftp", 12: b"ntp", 13: b"security", 14: b"console",
    15: b"solaris-cron", **{16 + i: b"local%d" % i for i in range(8)},
}
_SEVERITIES = (b"emerg", b"alert", b"crit", b"err", b"warning", b"notice", b"info", b"debug")


def pri_fields(pri: int) -> tuple[bytes, bytes, bytes]:
    """($PRI, $FACILITY, $SEVERITY) of a PRI value (16 bits): an unnamed
    facility is shown as its number in hex, as syslog-ng does."""
    facility = (pri & 0x3F8) >> 3
    return b"%d" % pri, _FACILITIES.get(facility, b"%x" % facility), _SEVERITIES[pri & 7]


@dataclass(frozen=True)
class Peer:
    """Where a connection's messages come from, and who receives them."""

    ip: bytes  # $SOURCEIP
    name: bytes  # $HOST_FROM: the resolved name with use-dns(yes), else the address
    own_host: bytes  # the local host name (short), for messages syslog-ng generates
    own_pid: bytes


@dataclass(frozen=True)
class ParseOptions:
    syslog_protocol: bool = False  # flags(syslog-protocol), the syslog() driver
    keep_hostname: bool = False
    expect_hostname: bool = True  # flags(no-hostname) turns it off
    store_legacy_msghdr: bool = True  # flags(dont-store-legacy-msghdr) turns it off
    # What differs between versions (reference.profiles.Profile, same names).
    parser_strips_cr: bool = True
    sd_space_tolerant: bool = True
    mktime_whole_stamp: bool = False

    @classmethod
    def for_profile(cls, profile, **options) -> "ParseOptions":
        return cls(parser_strips_cr=profile.parser_strips_cr, sd_space_tolerant=profile.sd_space_tolerant,
                   mktime_whole_stamp=profile.mktime_whole_stamp, **options)


#: the key that marks a message syslog-ng generated itself (its LF_LOCAL
#: flag): destinations number such messages in $SDATA
LOCAL = "\x00local"


class _Header(NamedTuple):
    values: MessageDict  # PROGRAM, PID, MSGID, HOST, LEGACY_MSGHDR and .SDATA.* as found
    pri: int
    stamp: Stamp | None  # None: the received time
    msg: bytes


class ParseError(Exception):
    """Where the header could not be read (an index into the line)."""

    def __init__(self, position: int):
        super().__init__(position)
        self.position = position


def rstrip(data: bytes, strip_cr: bool = True) -> bytes:
    """``data`` without trailing newlines and NULs (and carriage returns)."""
    end = len(data)
    stops = (10, 13, 0) if strip_cr else (10, 0)
    while end and data[end - 1] in stops:
        end -= 1
    return data[:end] if end != len(data) else data


def _skip_framing(data: bytes) -> int:
    i, n = 0, len(data)
    while i < n and data[i] in _DIGITS:
        i += 1
        if i > 10:
            return 0
    return i if i and i < n and data[i] == 0x20 else 0


def _pri(data: bytes, pos: int) -> tuple[int | None, int]:
    """(PRI or None when absent, position after it); ValueError for a bad PRI."""
    n = len(data)
    if pos >= n or data[pos] != 0x3C:
        return None, pos
    pos += 1
    value = 0
    while pos < n and data[pos] != 0x3E:
        if data[pos] not in _DIGITS:
            raise ValueError("bad PRI")
        value = value * 10 + data[pos] - 48
        pos += 1
    if pos < n:
        pos += 1
    return value & 0xFFFF, pos


def _skip(data: bytes, pos: int, chars: bytes) -> int:
    n = len(data)
    while pos < n and data[pos] in chars:
        pos += 1
    return pos


def _cisco_sequence(data: bytes, pos: int, values: MessageDict) -> int:
    i, n = pos, len(data)
    while i < n and data[i] != 0x3A:
        if data[i] not in _DIGITS:
            return pos
        i += 1
    if i >= n or i + 1 >= n or data[i + 1] != 0x20:
        return pos
    values[".SDATA.meta.sequenceId"] = data[pos:i]
    return i + 1


def _hostname(data: bytes, pos: int) -> tuple[bytes | None, int]:
    """A host name token at ``pos`` and the position after it, or (None, pos)."""
    i, n = pos, len(data)
    segment = digits = 0
    failed = False
    while i < n and i - pos < MAX_HOSTNAME:
        c = data[i]
        if c == 0x20 or c == 0x5B:
            break
        if not failed:
            if c != 0x3A and c not in _HEX:
                failed = True
            elif c == 0x3A:
                digits = 0
                segment += 1
                failed = segment >= 8
            else:
                digits += 1
                failed = digits > 4
        if c == 0x3A and failed:
            break
        i += 1
    if i < n and data[i] == 0x20:
        return data[pos:i], i
    return None, pos


def _program(data: bytes, pos: int, values: MessageDict, store_header: bool) -> int:
    i, n = pos, len(data)
    while i < n and data[i] not in b" [:":
        i += 1
    values["PROGRAM"] = data[pos:i]
    if i < n and data[i] == 0x5B:
        start = i + 1
        while i < n and data[i] not in b" ]:":
            i += 1
        if i < n:
            values["PID"] = data[start:i]
        if i < n and data[i] == 0x5D:
            i += 1
    if i < n and data[i] == 0x3A:
        i += 1
    if i < n and data[i] == 0x20:
        i += 1
    if store_header:
        values["LEGACY_MSGHDR"] = data[pos:i]
    return i


def legacy_header(data: bytes, opts: ParseOptions) -> _Header:
    """RFC 3164 header of ``data`` (trailing newlines already removed)."""
    values: MessageDict = {}
    pos = _skip_framing(data)
    try:
        pri, pos_after = _pri(data, pos)
    except ValueError:
        return _Header(values, DEFAULT_PRI, None, data[pos:])
    pos = pos_after
    if pri is None:
        pri = DEFAULT_PRI
    pos = _cisco_sequence(data, pos, values)
    pos = _skip(data, pos, b" ")
    if pos < len(data) and data[pos] in b"*.":
        values[".SDATA.timeQuality.isSynced"] = b"0" if data[pos] == 0x2A else b"1"
        pos += 1
    scanned = scan_rfc3164(data, pos)
    stamp = None
    if scanned is not None:
        wall, pos = scanned
        try:
            stamp = to_stamp(wall, whole_stamp=opts.mktime_whole_stamp)
        except (OverflowError, ValueError):
            stamp = None
        pos = _skip(data, pos, b" ")
        host = None
        if data.startswith(_FORWARDED, pos):
            pos += len(_FORWARDED)
            end = data.find(b":", pos)
            end = len(data) if end < 0 else end
            host = data[pos:end]
            pos = _skip(data, end, b" :")
        if len(data) - pos > len(_REPEATED) and data.startswith(_REPEATED, pos):
            pass  # no host name or program follows
        else:
            if host is None and opts.expect_hostname:
                host, pos = _hostname(data, pos)
                pos = _skip(data, pos, b" ")
            pos = _program(data, pos, values, opts.store_legacy_msghdr)
        if host is not None:
            values["HOST"] = host
    else:
        pos = _program(data, pos, values, opts.store_legacy_msghdr)
    return _Header(values, pri, stamp, data[pos:])


def _column(data: bytes, pos: int, values: MessageDict, name: str, limit: int) -> int:
    space = data.find(b" ", pos)
    if space < 0:
        return len(data)
    if space - pos > 1 or data[pos:pos + 1] != b"-":
        values[name] = data[pos:min(space, pos + limit)]
    return space


def _space(data: bytes, pos: int) -> int:
    if pos < len(data) and data[pos] == 0x20:
        return pos + 1
    raise ParseError(pos)


def _sd_name(data: bytes, pos: int, stops: bytes, room: int) -> tuple[bytes, int]:
    """An SD-ID or PARAM-NAME: printable ASCII up to one of ``stops``, at
    most ``room`` bytes; ParseError where it breaks the rules."""
    i, n = pos, len(data)
    while i < n and data[i] not in stops:
        c = data[i]
        if i - pos >= room or c >= 0x80 or c in b'= ]"':
            raise ParseError(i)
        i += 1
    return data[pos:i], i


def _sd(data: bytes, pos: int, values: MessageDict, spaces: bool) -> int:
    """Structured data at ``pos`` (``-`` or ``[...]...``); the position after
    it.  ``spaces``: a space after ``[`` and before ``]`` is tolerated."""
    n = len(data)
    if data[pos] == 0x2D:
        return pos + 1
    pos += 1  # "["
    if spaces and pos < n and data[pos] == 0x20:
        pos += 1
    room = MAX_SD_NAME - len(SD_PREFIX)
    while True:
        if pos >= n or data[pos] >= 0x80 or data[pos] in b'= ]"':
            raise ParseError(pos)
        sd_id, pos = _sd_name(data, pos, b" ]", room)
        prefix = SD_PREFIX + sd_id.decode("ascii")
        if pos < n and (data[pos] == 0x5D or (spaces and data[pos] == 0x20 and pos + 1 < n
                                              and data[pos + 1] == 0x5D)):
            if data[pos] == 0x20:
                pos += 1
            values[prefix] = b""
        elif len(sd_id) >= room:
            raise ParseError(pos)
        while pos < n and data[pos] != 0x5D:
            if data[pos] != 0x20:
                raise ParseError(pos)
            pos += 1
            if pos >= n or data[pos] >= 0x80 or data[pos] in b'= ]"':
                raise ParseError(pos)
            name, pos = _sd_name(data, pos, b"=", MAX_SD_NAME - len(sd_id))
            if len(name) >= room - len(sd_id):
                raise ParseError(pos)
            if pos >= n:
                raise ParseError(pos)
            pos += 1  # "="
            if pos < n and data[pos] == 0x22:
                pos += 1
                value = bytearray()
                escaped = False
                while pos < n and (data[pos] != 0x22 or escaped):
                    c = data[pos]
                    if not escaped and c == 0x5C:
                        escaped = True
                    else:
                        if escaped and c not in b'"]\\':
                            value.append(0x5C)
                        elif not escaped and c == 0x5D:
                            raise ParseError(pos + 1)
                        value.append(c)
                        escaped = False
                    pos += 1
                if pos >= n:
                    raise ParseError(pos)
                pos += 1  # closing quote
                values[prefix + "." + name.decode("ascii")] = bytes(value)
            elif pos < n:
                start = pos
                while pos < n and data[pos] not in b" ]":
                    pos += 1
                values[prefix + "." + name.decode("ascii")] = data[start:pos]
            else:
                raise ParseError(pos)
            if spaces and pos + 1 < n and data[pos] == 0x20 and data[pos + 1] == 0x5D:
                pos += 1
        if pos >= n:
            raise ParseError(pos)
        pos += 1  # "]"
        if pos < n and data[pos] == 0x5B:
            pos += 1
            if spaces and pos < n and data[pos] == 0x20:
                pos += 1
            continue
        return pos


def syslog_protocol_header(data: bytes, opts: ParseOptions) -> _Header:
    """RFC 5424 header of ``data``; falls back to RFC 3164 when PRI and
    VERSION do not read as version 1; ParseError for a malformed header."""
    values: MessageDict = {}
    pos = _skip_framing(data)
    try:
        pri, pos = _pri(data, pos)
    except ValueError:
        return legacy_header(data, opts)
    version_end = data.find(b" ", pos)
    version_end = len(data) if version_end < 0 else version_end
    version = data[pos:version_end]
    if not version.isdigit() or int(version) != 1:
        return legacy_header(data, opts)
    if pri is None:
        pri = DEFAULT_PRI
    pos = _space(data, version_end)
    if data[pos:pos + 1] == b"-":
        stamp = None
        pos += 1
    else:
        scanned = scan_rfc5424(data, pos)
        if scanned is None:
            raise ParseError(pos)
        wall, pos = scanned
        try:
            stamp = to_stamp(wall, whole_stamp=opts.mktime_whole_stamp)
        except (OverflowError, ValueError):
            stamp = None
    pos = _space(data, pos)
    host, pos = _hostname(data, pos)
    if pos >= len(data) or data[pos] != 0x20:
        raise ParseError(pos + 1)
    pos += 1
    if host is not None and host != b"-":
        values["HOST"] = host
    pos = _column(data, pos, values, "PROGRAM", 48)
    pos = _space(data, pos)
    pos = _column(data, pos, values, "PID", 128)
    pos = _space(data, pos)
    pos = _column(data, pos, values, "MSGID", 32)
    pos = _space(data, pos)
    if pos < len(data) and data[pos] in b"-[":
        pos = _sd(data, pos, values, opts.sd_space_tolerant)
    msg = b""
    if pos < len(data):
        pos = _space(data, pos)
        msg = data[pos:]
        if msg.startswith(_BOM):
            msg = msg[3:]
    return _Header(values, pri, stamp, msg)


def _finish(header: _Header, peer: Peer, opts: ParseOptions, now: float) -> MessageDict:
    values = header.values
    pri, facility, severity = pri_fields(header.pri)
    date, iso = render(header.stamp if header.stamp is not None else received_stamp(now))
    host = values.get("HOST")
    if not opts.keep_hostname or not host:
        host = peer.name
    program = values.get("PROGRAM", b"")
    pid = values.get("PID", b"")
    legacy = values.get("LEGACY_MSGHDR")
    if legacy:
        msghdr = legacy
    elif program:
        msghdr = program + (b"[" + pid + b"]: " if pid else b": ")
    else:
        msghdr = b""
    out: MessageDict = {
        "HOST": host, "HOST_FROM": peer.name, "SOURCEIP": peer.ip, "PROGRAM": program, "PID": pid,
        "MSGID": values.get("MSGID", b""), "MSG": header.msg, "PRI": pri, "FACILITY": facility,
        "SEVERITY": severity, "DATE": date, "ISODATE": iso, "MSGHDR": msghdr,
    }
    for name, value in values.items():
        if name not in out:
            out[name] = value
    return out


def error_message(data: bytes, position: int, peer: Peer, opts: ParseOptions, now: float) -> MessageDict:
    """The message syslog-ng generates in place of ``data``, which it could
    not parse at ``position``."""
    if position > 0:
        text = b"Error processing log message: " + data[:position - 1] + b">@<" + data[position - 1:]
    else:
        text = b"Error processing log message: " + data
    values = {"PROGRAM": b"syslog-ng", "PID": peer.own_pid, "HOST": peer.own_host}
    out = _finish(_Header(values, ERROR_PRI, None, text), peer, opts, now)
    out[LOCAL] = b"1"
    return out


def parse(data: bytes, opts: ParseOptions, peer: Peer, now: float | None = None) -> MessageDict:
    """One framed message -> its name-value pairs; never raises."""
    data = rstrip(data, opts.parser_strips_cr)
    if now is None:
        now = time.time()
    try:
        header = (syslog_protocol_header if opts.syslog_protocol else legacy_header)(data, opts)
    except ParseError as exc:
        return error_message(data, exc.position, peer, opts, now)
    return _finish(header, peer, opts, now)
