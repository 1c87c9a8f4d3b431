"""The wire format of parbench traffic: the one place that knows its layout.

Every generated message is exactly ``size`` bytes without its framing (the
newline, or the ``LEN `` prefix of octet counting): a syslog header carrying
the key, deterministic padding, and a fixed-width trailer at the end of MSG::

    |pb:CCCCCCCC:KKKKKKKK:SSSSSSSS:QQQQQQQQ:TTTTTTTTTTTTTTTT
     4 + 8 +1 + 8 +1 + 8 +1 + 8 +1 + 16 = 56 bytes, lowercase hex

C connection index, K key index (into the scenario's key list), S sequence
number within (connection, key), Q sequence number within the connection, T
send time (``time.time_ns()``).  The sender encodes with ``hex8`` / ``hex16``
into the field slices; the collector finds the trailer as the 56 bytes before
each newline and decodes whole blocks of them with ``decode_trailers``, with
no Python loop per message.  ``Expected`` is what was sent, for the checker.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAILER_LEN = 56
TRAILER_PREFIX = b"|pb:"
# Byte offsets of the trailer fields, relative to the trailer start.
CONN = slice(4, 12)
KEY = slice(13, 21)
KSEQ = slice(22, 30)
CSEQ = slice(31, 39)
TIME = slice(40, 56)
_FIELDS = (CONN, KEY, KSEQ, CSEQ, TIME)

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# byte value -> its two lowercase hex characters, laid out in memory as (hi, lo)
_HEX2 = (_HEX[np.arange(256) >> 4].astype("<u2") | (_HEX[np.arange(256) & 15].astype("<u2") << 8))
# hex character -> its value; 0xFF for anything else
_UNHEX = np.full(256, 0xFF, dtype=np.uint8)
_UNHEX[_HEX] = np.arange(16, dtype=np.uint8)
# what every trailer holds at fixed positions: the prefix and the separators
_FIXED_POS = np.r_[0:len(TRAILER_PREFIX), [f.stop for f in _FIELDS[:-1]]]
_FIXED_VAL = np.frombuffer(TRAILER_PREFIX + b":" * (len(_FIELDS) - 1), dtype=np.uint8)
_HEX_POS = np.concatenate([np.arange(f.start, f.stop) for f in _FIELDS])
_HI_POS = _HEX_POS[0::2]
_LO_POS = _HEX_POS[1::2]

# The syslog header before MSG: fixed except for the key's field.
_PRI = b"<13>"
_DATE_3164 = b"Jan  1 00:00:00"
_DATE_5424 = b"2026-01-01T00:00:00.000000Z"
_DEFAULT_HOST = b"pbhost"
_DEFAULT_PROGRAM = b"parbench"
_PID = b"4242"
_FILLER = b"parbench-filler-abcdefghijklmnopqrstuvwxyz-0123456789-"


def trailer(conn: int = 0, key: int = 0, kseq: int = 0, cseq: int = 0, send_ns: int = 0) -> bytes:
    return b"|pb:%08x:%08x:%08x:%08x:%016x" % (conn, key, kseq, cseq, send_ns & 0xFFFFFFFFFFFFFFFF)


def hex8(values: np.ndarray) -> np.ndarray:
    """uint32 values -> (n, 8) uint8 lowercase hex."""
    b = np.ascontiguousarray(values, dtype=">u4").view(np.uint8).reshape(-1, 4)
    return _HEX2[b].view(np.uint8).reshape(-1, 8)


def hex16(value: int) -> np.ndarray:
    return np.frombuffer(b"%016x" % (value & 0xFFFFFFFFFFFFFFFF), dtype=np.uint8)


def decode_trailers(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 56) uint8 trailers -> (ok mask, (n_ok, 6) big-endian u4 words C K S Q Th Tl)."""
    ok = (t[:, _FIXED_POS] == _FIXED_VAL).all(axis=1)
    hi = _UNHEX[t[:, _HI_POS]]
    lo = _UNHEX[t[:, _LO_POS]]
    raw = (hi << 4) | lo
    ok &= ((hi | lo) < 16).all(axis=1)
    if not ok.all():
        raw = raw[ok]
    return ok, np.ascontiguousarray(raw).view(">u4")


def header(fmt: str, key_field: str, key: str) -> bytes:
    """The syslog header (RFC 3164 or 5424) whose ``key_field`` holds ``key``."""
    k = key.encode("ascii")
    host = k if key_field == "HOST" else _DEFAULT_HOST
    prog = k if key_field == "PROGRAM" else _DEFAULT_PROGRAM
    if fmt == "rfc3164":
        return b"%s%s %s %s[%s]: " % (_PRI, _DATE_3164, host, prog, _PID)
    sd = b"-"
    if key_field.startswith(".SDATA."):
        sd_id, _, name = key_field[len(".SDATA."):].rpartition(".")
        sd = b'[%s %s="%s"]' % (sd_id.encode(), name.encode(), k)
    return b"%s1 %s %s %s %s pb %s " % (_PRI, _DATE_5424, host, prog, _PID, sd)


def min_message_size(fmt: str, key_field: str, keys: tuple[str, ...]) -> int:
    """The smallest ``size`` that fits the longest header and the trailer."""
    return max(len(header(fmt, key_field, k)) for k in keys) + TRAILER_LEN


def frame_prefix(framing: str, size: int) -> bytes:
    return b"%d " % size if framing == "octet-counted" else b""


def frame_suffix(framing: str) -> bytes:
    return b"\n" if framing == "newline" else b""


def message(fmt: str, key_field: str, key: str, key_index: int, size: int) -> bytes:
    """One message of exactly ``size`` bytes (unframed) for key ``key``, its
    trailer's C, S, Q and T fields zero (the sender fills them in)."""
    head = header(fmt, key_field, key)
    pad = size - TRAILER_LEN - len(head)
    if pad < 0:
        raise ValueError(f"message size {size} too small for key {key!r} (at least {len(head) + TRAILER_LEN})")
    filler = _FILLER * (pad // len(_FILLER) + 1)
    return head + filler[:pad] + trailer(key=key_index)


@dataclass(frozen=True)
class Expected:
    """What was sent, for the checker: per connection, the key index and the
    per-(connection, key) sequence number of each message in send order."""

    key_names: tuple[str, ...]
    sent: np.ndarray  # int64 (n_connections,): messages sent per connection
    offsets: np.ndarray  # int64 (n_connections + 1,): start of each connection in the flat arrays
    key_flat: np.ndarray  # key index of message cseq of connection c at offsets[c] + cseq
    kseq_flat: np.ndarray  # uint32, its sequence number within (c, key)

    @property
    def n_connections(self) -> int:
        return len(self.sent)

    @property
    def n_keys(self) -> int:
        return len(self.key_names)

    @property
    def total(self) -> int:
        return int(self.offsets[-1])

    def conn_key_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(conn, key, count) for every (connection, key) pair that was sent."""
        conn = np.repeat(np.arange(self.n_connections, dtype=np.int64), self.sent)
        pair = conn * self.n_keys + self.key_flat
        uniq, counts = np.unique(pair, return_counts=True)
        return uniq // self.n_keys, uniq % self.n_keys, counts
