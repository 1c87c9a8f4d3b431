"""The all-macro template of a diff run, and its output records.

Every implementation writes each message as one record: the value of every
macro in ``FIELDS`` (every macro the reference accepts, aliases included,
and ``$SDATA``, which holds every ``.SDATA.*`` pair), separated by the
ASCII unit separator ``\\x1f`` and ended by the record separator and a
newline, ``\\x1e\\n``, so that values with spaces, brackets or newlines
still split exactly (a case must not contain ``\\x1e\\n`` or ``\\x1f``).

Masking (``mask``) replaces only what depends on the moment and the process
rather than on the bytes sent: a date equal to the received time of the
case (a message without a timestamp, or a parse error) becomes
``<received>``, and the implementation's own process id (in the message it
generates in place of one it cannot parse) becomes ``<pid>``.
"""
from __future__ import annotations

import time

#: every macro of the template, in record order ($MSG last: it is the
#: longest and the most likely to differ)
FIELDS: tuple[str, ...] = (
    "HOST", "FULLHOST", "HOST_FROM", "FULLHOST_FROM", "SOURCEIP",
    "PROGRAM", "PID", "MSGID",
    "PRI", "FACILITY", "FACILITY_NUM", "SEVERITY", "SEVERITY_NUM", "PRIORITY", "LEVEL", "LEVEL_NUM",
    "DATE", "ISODATE",
    "MSGHDR", "LEGACY_MSGHDR", "SDATA",
    "MESSAGE", "MSGONLY", "MSG",
)
UNIT = b"\x1f"
END = b"\x1e\n"
TEMPLATE = "\x1f".join(f"${{{name}}}" for name in FIELDS) + "\x1e\n"
DATE_FIELDS = ("DATE", "ISODATE")
RECEIVED = b"<received>"
PID_MASK = b"<pid>"

Record = dict[str, bytes]


def split_records(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete records in ``data`` and the unfinished rest."""
    parts = data.split(END)
    return parts[:-1], parts[-1]


def parse_record(raw: bytes) -> Record:
    """One record -> its fields; a record with the wrong number of fields
    (a value holding the separator) keeps the raw bytes under ``RAW``."""
    values = raw.split(UNIT)
    if len(values) != len(FIELDS):
        return {"RAW": raw}
    return dict(zip(FIELDS, values))


def received_dates(start: float, end: float) -> set[bytes]:
    """$DATE and $ISODATE spellings (local time, syslog-ng's defaults) of
    every second from ``start`` - 1 to ``end`` + 1."""
    out: set[bytes] = set()
    for second in range(int(start) - 1, int(end) + 2):
        t = time.localtime(second)
        offset = t.tm_gmtoff
        sign = "+" if offset >= 0 else "-"
        hours, minutes = divmod(abs(offset) // 60, 60)
        out.add(time.strftime("%b %e %H:%M:%S", t).encode())
        out.add((time.strftime("%Y-%m-%dT%H:%M:%S", t) + f"{sign}{hours:02d}:{minutes:02d}").encode())
    return out


def mask(record: Record, received: set[bytes], pid: int | None) -> Record:
    """``record`` with the received time and the own process id masked."""
    if "RAW" in record:
        return record
    out = dict(record)
    for name in DATE_FIELDS:
        if out.get(name) in received:
            out[name] = RECEIVED
    if pid is not None:
        own = b"%d" % pid
        if out.get("PID") == own:
            out["PID"] = PID_MASK
        header = out.get("MSGHDR", b"")
        if header.endswith(b"[" + own + b"]: "):
            out["MSGHDR"] = header[:-len(own) - 3] + PID_MASK + b"]: "
    return out
