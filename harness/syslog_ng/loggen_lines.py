"""Plain loggen traffic, checked: parse captured loggen lines into records.

Every message loggen generates carries, at a fixed place in its MSG,
``seq: %010d, thread: %04d``: the message's sequence number within its
connection (from 0) and the connection's index (loggen's thread).  Both
loggens print it the same way (syslog-ng 4.8 and AxoSyslog, RFC 3164 and
5424, framed or not)::

    <38>2026-11-30T06:13:20 localhost prg00000[1234]: seq: 0000000002, thread: 0001, runid: ...

A server's output line keeps that text wherever its template puts MSG, so
the parser looks for the pattern in each line (the last occurrence, MSG
being at the end) rather than at an offset: with numpy over whole blocks of
the file, never a Python loop per line.  The result is the same ``Records``
the trailer parser makes, with connection = thread and one key, so the same
checks find loss, duplicates and per-connection order.
"""
from __future__ import annotations

import sys

import numpy as np

from parbench.harness.collector import Records
from parbench.harness.wire import Expected

PREFIX = b"seq: "
MIDDLE = b", thread: "
SEQ_DIGITS = 10
THREAD_DIGITS = 4
SEQ_AT = len(PREFIX)  # 5
MIDDLE_AT = SEQ_AT + SEQ_DIGITS  # 15
THREAD_AT = MIDDLE_AT + len(MIDDLE)  # 25
PATTERN_LEN = THREAD_AT + THREAD_DIGITS  # 29
KEY_NAME = "loggen"
N_EXAMPLES = 5
BLOCK_BYTES = 64 << 20

_FIXED_POS = np.r_[np.arange(len(PREFIX)), MIDDLE_AT + np.arange(len(MIDDLE))]
_FIXED_VAL = np.frombuffer(PREFIX + MIDDLE, dtype=np.uint8)
_SEQ_POS = SEQ_AT + np.arange(SEQ_DIGITS)
_THREAD_POS = THREAD_AT + np.arange(THREAD_DIGITS)
_SEQ_WEIGHTS = 10 ** np.arange(SEQ_DIGITS - 1, -1, -1, dtype=np.int64)
_THREAD_WEIGHTS = 10 ** np.arange(THREAD_DIGITS - 1, -1, -1, dtype=np.int64)
_ALL_POS = np.arange(PATTERN_LEN)


def _digits(window: np.ndarray, positions: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = window[:, positions].astype(np.int64) - 48
    ok = ((d >= 0) & (d <= 9)).all(axis=1)
    return d @ weights, ok


def parse_block(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Complete lines -> (line index of each loggen line, thread, seq, newline offsets)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    cand = np.flatnonzero(buf[:max(0, len(buf) - PATTERN_LEN + 1)] == PREFIX[0])
    # cheap filters first, then the whole pattern on the few left
    cand = cand[(buf[cand + 3] == PREFIX[3]) & (buf[cand + MIDDLE_AT + 2] == MIDDLE[2])]
    window = buf[cand[:, None] + _ALL_POS] if len(cand) else np.zeros((0, PATTERN_LEN), np.uint8)
    ok = (window[:, _FIXED_POS] == _FIXED_VAL).all(axis=1)
    seq, seq_ok = _digits(window, _SEQ_POS, _SEQ_WEIGHTS)
    thread, thread_ok = _digits(window, _THREAD_POS, _THREAD_WEIGHTS)
    ok &= seq_ok & thread_ok & (seq <= 0xFFFFFFFF)
    pos, seq, thread = cand[ok], seq[ok], thread[ok]
    line = np.searchsorted(nl, pos)  # the line whose newline follows the match
    keep = line < len(nl)
    pos, seq, thread, line = pos[keep], seq[keep], thread[keep], line[keep]
    # the last match of a line: MSG is at its end, whatever the template put before it
    last = np.r_[line[1:] != line[:-1], True] if len(line) else np.zeros(0, bool)
    return line[last], thread[last], seq[last], nl


def parse_files(paths: list[str]) -> Records:
    """Captures of loggen traffic (``-`` = stdin) -> Records (one stream per file)."""
    parts = []
    examples: list[dict] = []
    lines_total = malformed = incomplete = 0
    for stream, path in enumerate(paths):
        f = sys.stdin.buffer if path == "-" else open(path, "rb")
        rest = b""
        line_offset = 0
        try:
            while True:
                block = f.read(BLOCK_BYTES)
                if not block:
                    break
                data = rest + block if rest else block
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                if not cut:
                    continue
                line, thread, seq, nl = parse_block(data[:cut])
                n_lines = len(nl)
                bad = n_lines - len(line)
                if bad:
                    malformed += bad
                    good = np.zeros(n_lines, bool)
                    good[line] = True
                    for i in np.flatnonzero(~good)[:max(0, N_EXAMPLES - len(examples))]:
                        start = nl[i - 1] + 1 if i else 0
                        text = data[start:nl[i]][:160].decode("utf-8", "replace")
                        examples.append({"stream": stream, "line": int(line_offset + i + 1), "text": text})
                parts.append((thread.astype(np.uint32), seq.astype(np.uint32),
                              np.full(len(line), stream, np.uint32), line + line_offset))
                line_offset += n_lines
        finally:
            if f is not sys.stdin.buffer:
                f.close()
        lines_total += line_offset
        incomplete += 1 if rest else 0
    if parts:
        thread, seq, stream_ix, line = (np.concatenate(col) for col in zip(*parts))
    else:
        thread = seq = stream_ix = np.zeros(0, np.uint32)
        line = np.zeros(0, np.int64)
    n = len(thread)
    zeros32, zeros64 = np.zeros(n, np.uint32), np.zeros(n, np.int64)
    return Records(conn=thread, key=zeros32, kseq=seq, cseq=seq, sent_ns=zeros64, recv_ns=zeros64.copy(),
                   arrival=np.arange(n, dtype=np.int64), stream=stream_ix, line=line.astype(np.int64),
                   lines_total=lines_total, malformed=malformed, malformed_examples=examples,
                   incomplete_tails=incomplete, has_recv_times=False)


def expected(records: Records, connections: int | None = None, sent_per_connection: int | None = None
             ) -> Expected:
    """What loggen sent, for the checks: ``connections`` (loggen's
    --active-connections; default: the highest thread seen + 1), each
    ``sent_per_connection`` messages (loggen's -n; default: the highest
    seq seen from it + 1, so a loss at the very end of a connection is
    invisible), one key."""
    n_conn = connections if connections is not None else (int(records.conn.max()) + 1 if len(records) else 0)
    if sent_per_connection is not None:
        sent = np.full(n_conn, sent_per_connection, dtype=np.int64)
    else:
        sent = np.zeros(n_conn, dtype=np.int64)
        ok = records.conn < n_conn
        np.maximum.at(sent, records.conn[ok].astype(np.int64), records.cseq[ok].astype(np.int64) + 1)
    offsets = np.zeros(n_conn + 1, dtype=np.int64)
    np.cumsum(sent, out=offsets[1:])
    total = int(offsets[-1])
    kseq = (np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1], sent)).astype(np.uint32)
    return Expected((KEY_NAME,), sent, offsets, np.zeros(total, np.uint16), kseq)
