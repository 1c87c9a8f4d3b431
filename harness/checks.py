"""Exactly-once and ordering checks: a map of anomalies with exact witnesses
(Jepsen / Elle style).

``check(records, expected)`` compares what the collector parsed with what the
workload sent and returns ``CheckResult(anomalies, stats)``: for every check
in ``CHECKS``, ``anomalies[name] = Anomaly(count, witnesses)``.  The checks:

* ``lost``: sent, never received (connection, cseq, key);
* ``duplicated``: received more than once (connection, cseq, count, arrival
  positions of every copy); ``stats["duplicate_copies"]`` counts the extra
  copies;
* ``unexpected``: received but never sent: an out-of-range connection or
  sequence number, or a key / per-key sequence that does not match what was
  sent at that (connection, cseq);
* ``malformed``: an output line without a parbench trailer (stream, line,
  its text);
* ``nonmonotonic-per-key`` and ``nonmonotonic-per-connection``: an adjacent
  pair, in arrival order, of messages of the same (connection, key) / the
  same connection whose sequence number goes down (the key, both sequence
  numbers, both arrival positions).

Statistics in ``stats``: ``sent``, ``received`` (well-formed lines, copies
included), ``duplicate_copies``, ``incomplete_tails``, and for orderings
allowed to break, ``key_pairs`` (adjacent same-(connection, key) pairs looked
at), ``inverted_pair_share`` (of those, the share whose sequence goes down),
``inverted_pair_share_by_key`` and ``max_displacement`` (how far a message's
arrival rank within its group is from its send rank).

"per-key" always means per (connection, key): parallelize() keeps the order
of one key from one connection; the same key from different connections is
interleaved at batch granularity and has no order to check.

Order across several output streams (a target with several writer
connections): the records come in the collector's global arrival order,
which is the byte order within a stream and the chunk receive time across
streams (see ``harness.collector``).  A copy of a duplicated message takes no
part in the order checks (only its first arrival does), so one duplicate is
reported once, as a duplicate.

The verdict (``CheckResult.verdict``) looks only at the anomalies the
scenario's expectation prohibits: "pass", "fail", or "unknown" when the
capture is incomplete (the collector lost output) and every prohibited
anomaly found could be the collector's doing.

A new check is one function decorated with ``@anomaly(...)``: it takes the
shared ``CheckContext`` and returns its ``Anomaly``; results, the report
and ``parbench check`` pick it up by iterating over the map.  Everything is
vectorized (bincount, argsort, diff); only the few witnesses become Python
objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from parbench.harness.collector import Records
from parbench.harness.wire import Expected

N_WITNESSES = 10
PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
VERDICTS = (PASS, FAIL, UNKNOWN)


@dataclass
class Anomaly:
    count: int
    witnesses: list[dict[str, Any]] = field(default_factory=list)  # the first few, exact

    def to_json(self) -> dict[str, Any]:
        return {"count": int(self.count), "witnesses": [dict(w) for w in self.witnesses]}


@dataclass(frozen=True)
class Check:
    name: str
    find: Callable[["CheckContext"], Anomaly]
    unit: tuple[str, str]  # what is counted: singular, plural
    description: str  # one line for reports
    # Missing output (a capture the collector could not complete) can show
    # up as this anomaly, so it is not proof against the target then.
    missing_output_can_cause: bool = False

    def describe(self, anomaly: Anomaly) -> str:
        unit = self.unit[0] if anomaly.count == 1 else self.unit[1]
        first = f" (first: {format_witness(anomaly.witnesses[0])})" if anomaly.witnesses else ""
        return f"{self.name}: {anomaly.count} {unit}{first}"


CHECKS: list[Check] = []


def anomaly(name: str, *, unit: tuple[str, str], description: str,
            missing_output_can_cause: bool = False) -> Callable:
    """Register the decorated function as the check finding anomaly ``name``."""
    def register(find: Callable[["CheckContext"], Anomaly]) -> Callable[["CheckContext"], Anomaly]:
        if any(c.name == name for c in CHECKS):
            raise ValueError(f"a check for {name!r} is already registered")
        CHECKS.append(Check(name, find, unit, description, missing_output_can_cause))
        return find
    return register


def check_named(name: str) -> Check | None:
    return next((c for c in CHECKS if c.name == name), None)


def format_witness(w: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in w.items())


@dataclass
class CheckResult:
    anomalies: dict[str, Anomaly]  # in CHECKS order
    stats: dict[str, Any] = field(default_factory=dict)

    def count(self, name: str) -> int:
        found = self.anomalies.get(name)
        return found.count if found else 0

    def verdict(self, expectation: Any, incomplete: str | None = None) -> tuple[str, list[str]]:
        """(verdict, reasons) for an expectation (anything with ``prohibited``
        anomaly names).  ``incomplete`` says why the capture may miss output
        the target sent; then anomalies that missing output can cause make
        the verdict "unknown" instead of "fail"."""
        reasons: list[str] = []
        proof = False  # an anomaly that missing output cannot explain
        not_checked = False  # a prohibited anomaly nobody looked for is no pass
        for name in expectation.prohibited:
            found = self.anomalies.get(name)
            registered = check_named(name)
            if found is None or registered is None:
                reasons.append(f"{name}: not checked")
                not_checked = True
            elif found.count:
                reasons.append(registered.describe(found))
                proof = proof or not registered.missing_output_can_cause
        if proof:
            verdict = FAIL
        elif (incomplete and reasons) or not_checked:
            verdict = UNKNOWN
        else:
            verdict = FAIL if reasons else PASS
        if incomplete and reasons:
            reasons.insert(0, f"capture incomplete, so missing messages may be the collector's: {incomplete}")
        return verdict, reasons

    def to_json(self) -> dict[str, Any]:
        return {"anomalies": {name: a.to_json() for name, a in self.anomalies.items()},
                "stats": dict(self.stats)}


class CheckContext:
    """What the checks share: every record matched with the message sent at
    its (connection, cseq), and which records take part in order checks.

    ``valid``: records that match a sent message; ``arrivals``: how often
    each sent message (by flat index) arrived, saturated at 255 (uint8, so
    it costs a byte a message while the order checks run); ``dup_cells`` /
    ``dup_counts``: the sent messages received more than once and their
    exact arrival counts; ``dup_records`` / ``dup_flat``: the records of
    those messages and their flat indices; ``ordered``: indices of the
    records the order checks look at (every valid record's first arrival),
    None when that is all of them.  Checks add statistics to ``stats``."""

    def __init__(self, records: Records, expected: Expected):
        self.records = records
        self.expected = expected
        self.stats: dict[str, Any] = {"sent": expected.total, "received": len(records),
                                      "incomplete_tails": records.incomplete_tails}
        n_conn = expected.n_connections
        sent = expected.sent
        # in-place steps: the temporaries here set the peak memory per message
        in_range = records.conn < n_conn
        c_idx = records.conn.astype(np.int64)
        c_idx[~in_range] = 0
        valid = records.cseq < sent[c_idx]
        valid &= in_range
        del in_range
        flat = expected.offsets[c_idx]
        del c_idx
        flat += records.cseq
        flat[~valid] = 0
        if expected.total:
            valid &= (expected.key_flat[flat] == records.key) & (expected.kseq_flat[flat] == records.kseq)
        else:
            valid[:] = False
        flat[~valid] = -1
        all_valid = bool(valid.all())
        self.valid = valid
        counts = np.bincount(flat[valid] if not all_valid else flat, minlength=expected.total)
        self.dup_cells = np.flatnonzero(counts > 1)
        self.dup_counts = counts[self.dup_cells]
        use = valid.copy() if len(self.dup_cells) or not all_valid else None
        self.dup_records = np.zeros(0, np.int64)
        self.dup_flat = np.zeros(0, np.int64)
        if len(self.dup_cells):
            self.dup_records = np.flatnonzero(valid & (counts[np.maximum(flat, 0)] > 1))
            self.dup_flat = flat[self.dup_records]
            _, first = np.unique(self.dup_flat, return_index=True)
            use[self.dup_records] = False
            use[self.dup_records[first]] = True
        del flat
        self.arrivals = np.minimum(counts, 255, out=counts).astype(np.uint8)
        del counts
        self.ordered = np.flatnonzero(use) if use is not None else None

    def take(self, column: np.ndarray) -> np.ndarray:
        """A record column restricted to the records the order checks use."""
        return column if self.ordered is None else column[self.ordered]

    def record_index(self, pos: np.ndarray) -> np.ndarray:
        """Positions among the ordered records -> record indices."""
        return pos if self.ordered is None else self.ordered[pos]

    def where(self, i: int) -> dict[str, int]:
        r = self.records
        return {"arrival": int(r.arrival[i]), "stream": int(r.stream[i]), "line": int(r.line[i]) + 1}

    def connection_of(self, flat_index: int) -> int:
        return int(np.searchsorted(self.expected.offsets, flat_index, side="right") - 1)


def check(records: Records, expected: Expected) -> CheckResult:
    """Run every registered check; see the module docstring."""
    ctx = CheckContext(records, expected)
    anomalies = {c.name: c.find(ctx) for c in CHECKS}
    return CheckResult(anomalies, ctx.stats)


# ---------------------------------------------------------------- exactly once

@anomaly("lost", unit=("message sent, never received", "messages sent, never received"),
         description="sent, never received", missing_output_can_cause=True)
def _lost(ctx: CheckContext) -> Anomaly:
    exp = ctx.expected
    lost = np.flatnonzero(ctx.arrivals == 0)
    witnesses = []
    for f in lost[:N_WITNESSES]:
        c = ctx.connection_of(f)
        k = int(exp.key_flat[f])
        witnesses.append({"conn": c, "cseq": int(f - exp.offsets[c]), "key": k, "key_name": exp.key_names[k],
                          "kseq": int(exp.kseq_flat[f])})
    return Anomaly(len(lost), witnesses)


@anomaly("duplicated", unit=("message received more than once", "messages received more than once"),
         description="received more than once (counted once per message; stats: duplicate_copies)")
def _duplicated(ctx: CheckContext) -> Anomaly:
    exp, rec = ctx.expected, ctx.records
    cells = ctx.dup_cells
    ctx.stats["duplicate_copies"] = int((ctx.dup_counts - 1).sum())
    witnesses = []
    shown = cells[:N_WITNESSES]
    in_shown = np.isin(ctx.dup_flat, shown)
    hit, hit_flat = ctx.dup_records[in_shown], ctx.dup_flat[in_shown]
    for f, count in zip(shown, ctx.dup_counts):
        c = ctx.connection_of(f)
        copies = hit[hit_flat == f][:N_WITNESSES]
        witnesses.append({"conn": c, "cseq": int(f - exp.offsets[c]), "key": int(exp.key_flat[f]),
                          "count": int(count),
                          "arrivals": [int(rec.arrival[i]) for i in copies],
                          "lines": [int(rec.line[i]) + 1 for i in copies]})
    return Anomaly(len(cells), witnesses)


@anomaly("unexpected", unit=("message received, never sent", "messages received, never sent"),
         description="received, never sent (no such connection or sequence number, or another key there)")
def _unexpected(ctx: CheckContext) -> Anomaly:
    exp, rec = ctx.expected, ctx.records
    n_conn = exp.n_connections
    bad = np.flatnonzero(~ctx.valid)
    witnesses = []
    for i in bad[:N_WITNESSES]:
        conn, cseq = int(rec.conn[i]), int(rec.cseq[i])
        if conn >= n_conn:
            why = f"no connection {conn} (sent {n_conn})"
        elif cseq >= exp.sent[conn]:
            why = f"connection {conn} sent only {int(exp.sent[conn])} messages"
        else:
            why = (f"sent key {int(exp.key_flat[exp.offsets[conn] + cseq])} "
                   f"kseq {int(exp.kseq_flat[exp.offsets[conn] + cseq])} at this cseq")
        witnesses.append({"conn": conn, "cseq": cseq, "key": int(rec.key[i]), "kseq": int(rec.kseq[i]),
                          **ctx.where(i), "why": why})
    return Anomaly(len(bad), witnesses)


@anomaly("malformed", unit=("output line without a parbench trailer", "output lines without a parbench trailer"),
         description="output lines without a parbench trailer", missing_output_can_cause=True)
def _malformed(ctx: CheckContext) -> Anomaly:
    return Anomaly(ctx.records.malformed, [dict(e) for e in ctx.records.malformed_examples])


# ---------------------------------------------------------------- order

def _stable_group_order(groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Indices sorting by group, keeping arrival order within a group
    (radix sort when the group id fits 16 bits)."""
    if n_groups <= 1:
        return np.arange(len(groups), dtype=np.int64)
    if n_groups <= 0xFFFF:  # numpy's stable sort is a radix sort for 16-bit keys
        return np.argsort(groups.astype(np.uint16, copy=False), kind="stable")
    return np.argsort(groups, kind="stable")


def _adjacent_inversions(groups: np.ndarray, n_groups: int, seq: np.ndarray):
    """Adjacent same-group pairs in arrival order whose seq goes down.

    Returns (order, gs, ss, same, inv): order sorts by group (stable); gs /
    ss are groups and seq in that order; same[i] / inv[i] say whether sorted
    elements i and i+1 are a same-group pair / an inverted one."""
    order = _stable_group_order(groups, n_groups)
    gs = groups[order] if n_groups > 1 else groups
    ss = seq[order] if n_groups > 1 else seq
    same = gs[1:] == gs[:-1]
    inv = same & (ss[1:] < ss[:-1])
    return order, gs, ss, same, inv


def _first_inversions(order: np.ndarray, inv_pos: np.ndarray) -> np.ndarray:
    """The inverted pairs whose later message arrived first (witness order)."""
    later = order[inv_pos + 1]
    return inv_pos[np.argsort(later, kind="stable")[:N_WITNESSES]]


@anomaly("nonmonotonic-per-key", unit=("adjacent pair out of order", "adjacent pairs out of order"),
         description="adjacent messages of one (connection, key) received out of send order")
def _nonmonotonic_per_key(ctx: CheckContext) -> Anomaly:
    rec, exp = ctx.records, ctx.expected
    names = exp.key_names
    n_conn = exp.n_connections
    n_keys = max(1, exp.n_keys)
    conn = ctx.take(rec.conn)
    key = ctx.take(rec.key)
    kseq = ctx.take(rec.kseq)
    n_groups = n_conn * n_keys
    gtype = np.uint16 if n_groups <= 0xFFFF else np.uint32 if n_groups <= 0xFFFFFFFF else np.int64
    if n_conn > 1:
        groups = conn.astype(gtype)
        groups *= gtype(n_keys)
        groups += key.astype(gtype, copy=False)
    else:
        groups = key.astype(gtype, copy=False)
    del conn, key
    order, gs, ks, same, inv = _adjacent_inversions(groups, n_groups, kseq)
    del groups, kseq
    key_pairs = int(same.sum())
    inv_pos = np.flatnonzero(inv)
    max_disp = 0
    share_by_key: dict[str, float] = {}
    witnesses = []
    if len(inv_pos):
        for p in _first_inversions(order, inv_pos):
            a, b = ctx.record_index(order[p]), ctx.record_index(order[p + 1])
            k = int(rec.key[b])
            witnesses.append({
                "conn": int(rec.conn[b]), "key": k, "key_name": names[k] if k < len(names) else None,
                "kseq_before": int(rec.kseq[a]), "kseq_after": int(rec.kseq[b]),
                "arrival_before": int(rec.arrival[a]), "arrival_after": int(rec.arrival[b]),
                "line_before": int(rec.line[a]) + 1, "line_after": int(rec.line[b]) + 1})
        # displacement: arrival rank vs send rank within the group, both in group-sorted space
        by_seq = np.lexsort((ks, gs))
        max_disp = int(np.abs(np.arange(len(by_seq)) - by_seq).max()) if len(by_seq) else 0
        pair_key = gs[1:] % n_keys
        pairs_per_key = np.bincount(pair_key[same], minlength=n_keys)
        inv_per_key = np.bincount(pair_key[inv], minlength=n_keys)
        for k in np.flatnonzero(inv_per_key):
            share_by_key[names[k] if k < len(names) else str(k)] = float(inv_per_key[k] / pairs_per_key[k])
    ctx.stats.update(key_pairs=key_pairs,
                     inverted_pair_share=float(len(inv_pos) / key_pairs) if key_pairs else 0.0,
                     inverted_pair_share_by_key=share_by_key, max_displacement=max_disp)
    return Anomaly(len(inv_pos), witnesses)


@anomaly("nonmonotonic-per-connection", unit=("adjacent pair out of order", "adjacent pairs out of order"),
         description="adjacent messages of one connection received out of send order")
def _nonmonotonic_per_connection(ctx: CheckContext) -> Anomaly:
    rec = ctx.records
    conn = ctx.take(rec.conn)
    cseq = ctx.take(rec.cseq)
    order, _, _, _, inv = _adjacent_inversions(conn, ctx.expected.n_connections, cseq)
    inv_pos = np.flatnonzero(inv)
    witnesses = []
    for p in _first_inversions(order, inv_pos) if len(inv_pos) else ():
        a, b = ctx.record_index(order[p]), ctx.record_index(order[p + 1])
        witnesses.append({
            "conn": int(rec.conn[b]), "key_before": int(rec.key[a]), "key_after": int(rec.key[b]),
            "cseq_before": int(rec.cseq[a]), "cseq_after": int(rec.cseq[b]),
            "arrival_before": int(rec.arrival[a]), "arrival_after": int(rec.arrival[b]),
            "line_before": int(rec.line[a]) + 1, "line_after": int(rec.line[b]) + 1})
    return Anomaly(len(inv_pos), witnesses)
