"""Timestamps of syslog headers: which forms are read, and what they mean.

The behaviour follows syslog-ng (docs/semantics.md, "Message parsing"):
``scan_rfc3164_timestamp()`` and ``scan_rfc5424_timestamp()`` in
lib/timeutils/scan-timestamp.c, ``wall_clock_time_guess_missing_year()`` in
lib/timeutils/wallclocktime.c, and
``convert_and_normalize_wall_clock_time_to_unix_time_with_tz_hint()`` in
lib/timeutils/conv.c.

RFC 3164 headers (``scan_rfc3164``), tried in this order on the bytes at
the position:

* ISO 8601 when the shape fits (``YYYY-MM-DD`` then ``T`` or a space, then
  ``hh:mm:ss``): optional fraction after ``.`` or ``,``; ``Z``, or a zone
  ``+hh:mm`` (with the colon; ``+hhmm`` is no zone and stays in the text);
  without a zone, local time;
* Cisco PIX/ASA ``Mmm dd YYYY hh:mm:ss`` (the year before the time), an
  optional ``:`` after it;
* LinkSys ``Mmm dd hh:mm:ss YYYY`` (the year after the time, then white
  space);
* BSD ``Mmm dd hh:mm:ss``, the day padded with a space or a zero, or a
  single digit (``Mmm d hh:mm:ss``); optional fraction.  The year is
  guessed: the current one, except for a December stamp read in January
  (last year) and a January stamp read in December (next year).

Month names start with their upper-case letter; the other two letters
are matched without regard to case.  A number field of width
W accepts leading spaces within its W characters (``" 6"``, even ``"  "``,
which reads as 0).  One ``:`` after any of these stamps is skipped.

RFC 5424 headers (``scan_rfc5424``): the ISO form only.

Values out of range are not errors: like C's ``mktime()``, Feb 30 becomes
Mar 1 or 2.  syslog-ng then subtracts the hours ``mktime()`` carried (it
corrects for a daylight saving change that way), so an hour of 24 or more
counts twice: ``25:00:00`` lands on 01:00 two days on.  With
``whole_stamp`` (syslog-ng) the whole time is normalized, so minute 60 or
second 60 that carry into the next hour are taken back (``22:60:00`` is
22:00); without it (AxoSyslog, whose ``cached_mktime()`` converts the top
of the hour and adds minutes and seconds) they are not (23:00).

Rendering (``render``): ``$DATE`` is ``Mmm dd hh:mm:ss`` (day padded with a
space) and ``$ISODATE`` ``YYYY-MM-DDThh:mm:ss+hh:mm`` (syslog-ng's default
``frac-digits(0)``; the year is not padded: year 1 is ``1-01-01...``),
both in the stamp's own zone.
"""
from __future__ import annotations

import time
from typing import NamedTuple

MONTH_NAMES = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
               b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
_MONTHS = {name.lower(): index for index, name in enumerate(MONTH_NAMES)}
_DIGITS = frozenset(b"0123456789")
_SPACES = frozenset(b" \t\n\v\f\r")


class WallClock(NamedTuple):
    """A stamp as written: ``year`` None when the text gave none; ``mon``
    0-11; ``gmtoff`` None when the text gave no zone (local time)."""

    year: int | None
    mon: int
    mday: int
    hour: int
    min: int
    sec: int
    gmtoff: int | None = None


class Stamp(NamedTuple):
    """A point in time and the zone it is shown in."""

    unix: int
    gmtoff: int


def _int(data: bytes, pos: int, width: int) -> tuple[int, int] | None:
    """A number of exactly ``width`` characters: leading spaces, then digits."""
    end = pos + width
    if end > len(data):
        return None
    i = pos
    while i < end and data[i] == 0x20:
        i += 1
    value = 0
    while i < end:
        c = data[i]
        if c not in _DIGITS:
            return None
        value = value * 10 + c - 48
        i += 1
    return value, end


def _char(data: bytes, pos: int, ch: int) -> int | None:
    return pos + 1 if pos < len(data) and data[pos] == ch else None


def _month(data: bytes, pos: int) -> int | None:
    # The first letter is compared as it is (an upper-case one), the other
    # two without regard to case: "OCT" and "Oct" are October, "oct" is not.
    if pos + 3 > len(data) or not 0x41 <= data[pos] <= 0x5A:
        return None
    return _MONTHS.get(data[pos:pos + 3].lower())


def _fraction(data: bytes, pos: int) -> int:
    """Skip a fraction of a second (``.`` or ``,`` then digits)."""
    n = len(data)
    if pos < n and data[pos] in b".,":
        pos += 1
        while pos < n and data[pos] in _DIGITS:
            pos += 1
    return pos


def _fields(data: bytes, pos: int, spec: tuple) -> tuple[list[int], int] | None:
    """Read ``spec``: ints are field widths, bytes one expected character
    (of the alternatives given); the number fields and the end position."""
    values = []
    for item in spec:
        if isinstance(item, int):
            got = _int(data, pos, item)
            if got is None:
                return None
            values.append(got[0])
            pos = got[1]
        else:
            if pos >= len(data) or data[pos] not in item:
                return None
            pos += 1
    return values, pos


_ISO = (4, b"-", 2, b"-", 2, b"T ", 2, b":", 2, b":", 2)
_PIX = (b" ", 2, b" ", 4, b" ", 2, b":", 2, b":", 2)
_LINKSYS = (b" ", 2, b" ", 2, b":", 2, b":", 2, b" ", 4)
_BSD_TIME = (b" ", 2, b":", 2, b":", 2)


def _is_iso(data: bytes, pos: int) -> bool:
    return (len(data) - pos >= 19 and data[pos + 4] == 0x2D and data[pos + 7] == 0x2D
            and data[pos + 10] in b"T " and data[pos + 13] == 0x3A and data[pos + 16] == 0x3A)


def _zone(data: bytes, pos: int) -> tuple[int | None, int]:
    """``Z``, ``+hh:mm`` / ``-hh:mm`` (not followed by a digit), or none."""
    n = len(data)
    if pos < n and data[pos] == 0x5A:  # Z
        return 0, pos + 1
    z = data[pos:pos + 7]
    if (len(z) >= 6 and z[0] in b"+-" and z[1] in _DIGITS and z[2] in _DIGITS and z[3] == 0x3A
            and z[4] in _DIGITS and z[5] in _DIGITS and (len(z) < 7 or z[6] not in _DIGITS)):
        offset = ((z[1] - 48) * 10 + z[2] - 48) * 3600 + ((z[4] - 48) * 10 + z[5] - 48) * 60
        return (-offset if z[0] == 0x2D else offset), pos + 6
    return None, pos


def _iso(data: bytes, pos: int) -> tuple[WallClock, int] | None:
    got = _fields(data, pos, _ISO)
    if got is None:
        return None
    (year, mon, mday, hour, minute, sec), pos = got
    pos = _fraction(data, pos)
    gmtoff, pos = _zone(data, pos)
    return WallClock(year, mon - 1, mday, hour, minute, sec, gmtoff), pos


def _bsd(data: bytes, pos: int) -> tuple[WallClock, int] | None:
    s = data[pos:pos + 21]
    n = len(s)
    if n < 14 or s[3] != 0x20:
        return None
    mon = _month(data, pos)
    if mon is None:
        return None
    if (n >= 21 and s[6] == 0x20 and s[11] == 0x20 and s[14] == 0x3A and s[17] == 0x3A
            and s[20] in b": " and all(c in _DIGITS for c in s[7:11])):
        got = _fields(data, pos + 3, _PIX)
        if got is None:
            return None
        (mday, year, hour, minute, sec), end = got
        if end < len(data) and data[end] == 0x3A:
            end += 1
        return WallClock(year, mon, mday, hour, minute, sec), end
    if (n >= 21 and s[6] == 0x20 and s[9] == 0x3A and s[12] == 0x3A and s[15] == 0x20
            and all(c in _DIGITS for c in s[16:20]) and s[20] in _SPACES):
        got = _fields(data, pos + 3, _LINKSYS)
        if got is None:
            return None
        (mday, hour, minute, sec, year), end = got
        return WallClock(year, mon, mday, hour, minute, sec), end
    padded = n >= 15 and s[6] == 0x20 and s[9] == 0x3A and s[12] == 0x3A
    unpadded = s[4] in _DIGITS and s[5] == 0x20 and s[8] == 0x3A and s[11] == 0x3A
    if not (padded or unpadded):
        return None
    at = pos + 4
    day = _int(data, at, 2) or _int(data, at, 1)
    if day is None:
        return None
    got = _fields(data, day[1], _BSD_TIME)
    if got is None:
        return None
    (hour, minute, sec), end = got
    return WallClock(None, mon, day[0], hour, minute, sec), _fraction(data, end)


def scan_rfc3164(data: bytes, pos: int) -> tuple[WallClock, int] | None:
    """The stamp at ``pos`` of an RFC 3164 header and the position after it."""
    got = _iso(data, pos) if _is_iso(data, pos) else _bsd(data, pos)
    if got is None:
        return None
    stamp, end = got
    if end < len(data) and data[end] == 0x3A:
        end += 1
    return stamp, end


def scan_rfc5424(data: bytes, pos: int) -> tuple[WallClock, int] | None:
    return _iso(data, pos)


def guess_year(mon: int, now: time.struct_time) -> int:
    """The year of a stamp without one, month ``mon`` (0-11), read at ``now``."""
    if mon == 11 and now.tm_mon == 1:
        return now.tm_year - 1
    if mon == 0 and now.tm_mon == 12:
        return now.tm_year + 1
    return now.tm_year


def to_stamp(wall: WallClock, now: time.struct_time | None = None, whole_stamp: bool = True) -> Stamp:
    """The moment ``wall`` names; OverflowError/ValueError for a year the
    platform's mktime cannot represent."""
    year = wall.year if wall.year is not None else guess_year(wall.mon, now or time.localtime())
    if whole_stamp:
        seconds = int(time.mktime((year, wall.mon + 1, wall.mday, wall.hour, wall.min, wall.sec, 0, 0, -1)))
        normalized_hour = time.localtime(seconds).tm_hour
    else:
        top = int(time.mktime((year, wall.mon + 1, wall.mday, wall.hour, 0, 0, 0, 0, -1)))
        normalized_hour = time.localtime(top).tm_hour
        seconds = top + wall.min * 60 + wall.sec
    local_gmtoff = time.localtime(seconds).tm_gmtoff
    target = local_gmtoff if wall.gmtoff is None else wall.gmtoff
    seconds += local_gmtoff - (normalized_hour - wall.hour) * 3600 - target
    return Stamp(seconds, target)


def received_stamp(now: float) -> Stamp:
    seconds = int(now)
    return Stamp(seconds, time.localtime(seconds).tm_gmtoff)


def render(stamp: Stamp) -> tuple[bytes, bytes]:
    """($DATE, $ISODATE) of ``stamp`` in its own zone."""
    t = time.gmtime(stamp.unix + stamp.gmtoff)
    sign = b"+" if stamp.gmtoff >= 0 else b"-"
    hours, minutes = divmod(abs(stamp.gmtoff) // 60, 60)
    date = b"%s %2d %02d:%02d:%02d" % (MONTH_NAMES[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    iso = b"%d-%02d-%02dT%02d:%02d:%02d%s%02d:%02d" % (
        t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, sign, hours, minutes)
    return date, iso

