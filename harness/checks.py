"""Exactly-once and ordering checks with exact witnesses (Jepsen's names).

``check(records, expected, ordering)`` compares what the collector parsed with
what the workload sent and reports:

* ``lost``: sent, never received (connection, cseq, key);
* ``duplicated``: received more than once (connection, cseq, count, arrival
  positions of every copy); ``duplicate_copies`` counts the extra copies;
* ``unexpected``: received but never sent: an out-of-range connection or
  sequence number, or a key / per-key sequence that does not match what was
  sent at that (connection, cseq);
* ``nonmonotonic`` per (connection, key) and per connection: an adjacent pair,
  in arrival order, of messages of the same group whose sequence number goes
  down (the key, both sequence numbers, both arrival positions);
* for orderings allowed to break, the share of inverted adjacent pairs per
  key (same (connection, key) group) and the largest displacement (how far a
  message's arrival rank within its group is from its send rank).

"per-key" always means per (connection, key): parallelize() keeps the order
of one key from one connection; the same key from different connections is
interleaved at batch granularity and has no order to check.

Order across several output streams (a target with several writer
connections): the records come in the collector's global arrival order,
which is the byte order within a stream and the chunk receive time across
streams (see ``harness.collector``).  A copy of a duplicated message takes no
part in the order checks (only its first arrival does), so one duplicate is
reported once, as a duplicate.

Everything is vectorized (bincount, argsort, diff); only the few witnesses
are turned into Python objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parbench.harness.collector import Records
from parbench.harness.wire import Expected

N_WITNESSES = 10


@dataclass
class CheckResult:
    ordering: str | None
    sent: int
    received: int  # well-formed lines, copies included
    malformed: int
    lost: int
    duplicated: int  # distinct messages received more than once
    duplicate_copies: int  # extra copies in total
    unexpected: int
    nonmonotonic_per_key: int
    nonmonotonic_per_connection: int
    key_pairs: int  # adjacent same-(connection, key) pairs looked at
    inverted_pair_share: float
    max_displacement: int
    inverted_pair_share_by_key: dict[str, float] = field(default_factory=dict)
    witnesses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    malformed_examples: list[str] = field(default_factory=list)
    incomplete_tails: int = 0

    def verdict(self, expectation: Any) -> tuple[bool, list[str]]:
        """Compare with the scenario's expectation (``Expectation`` or a dict
        with ``ordering`` and ``loss_allowed``): (ok, reasons it is not)."""
        if isinstance(expectation, dict):
            ordering, loss_allowed = expectation.get("ordering", "per-key"), expectation.get("loss_allowed", False)
        else:
            ordering, loss_allowed = expectation.ordering, expectation.loss_allowed
        w = self.witnesses
        reasons: list[str] = []
        if self.lost and not loss_allowed:
            reasons.append(f"lost {self.lost} of {self.sent} messages (first: {_fmt(w['lost'][0])})")
        if self.duplicated:
            reasons.append(f"duplicated {self.duplicated} messages ({self.duplicate_copies} extra copies; "
                           f"first: {_fmt(w['duplicated'][0])})")
        if self.unexpected:
            reasons.append(f"{self.unexpected} unexpected messages, never sent (first: {_fmt(w['unexpected'][0])})")
        if self.malformed:
            ex = f" (first: {self.malformed_examples[0]})" if self.malformed_examples else ""
            reasons.append(f"{self.malformed} malformed output lines without a parbench trailer{ex}")
        if ordering in ("per-key", "per-connection") and self.nonmonotonic_per_key:
            reasons.append(f"per-key order broken: {self.nonmonotonic_per_key} nonmonotonic pairs "
                           f"(first: {_fmt(w['nonmonotonic_per_key'][0])})")
        if ordering == "per-connection" and self.nonmonotonic_per_connection:
            reasons.append(f"per-connection order broken: {self.nonmonotonic_per_connection} nonmonotonic pairs "
                           f"(first: {_fmt(w['nonmonotonic_per_connection'][0])})")
        return (not reasons), reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "ordering": self.ordering,
            "sent": self.sent,
            "received": self.received,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "duplicate_copies": self.duplicate_copies,
            "unexpected": self.unexpected,
            "malformed": self.malformed,
            "incomplete_tails": self.incomplete_tails,
            "nonmonotonic_per_key": self.nonmonotonic_per_key,
            "nonmonotonic_per_connection": self.nonmonotonic_per_connection,
            "key_pairs": self.key_pairs,
            "inverted_pair_share": self.inverted_pair_share,
            "inverted_pair_share_by_key": dict(self.inverted_pair_share_by_key),
            "max_displacement": self.max_displacement,
            "witnesses": {k: [dict(x) for x in v] for k, v in self.witnesses.items()},
            "malformed_examples": list(self.malformed_examples),
        }


def _fmt(w: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in w.items())


def _where(records: Records, i: int) -> dict[str, int]:
    return {"arrival": int(records.arrival[i]), "stream": int(records.stream[i]), "line": int(records.line[i]) + 1}


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

    Returns (order, same, inv): order sorts by group (stable); same[i] / inv[i]
    say whether sorted elements i and i+1 are a same-group pair / an
    inverted one."""
    order = _stable_group_order(groups, n_groups)
    gs = groups[order] if n_groups > 1 else groups
    ss = seq[order] if n_groups > 1 else seq
    same = gs[1:] == gs[:-1]
    inv = same & (ss[1:] < ss[:-1])
    return order, gs, ss, same, inv


def check(records: Records, expected: Expected, ordering: str | None = None) -> CheckResult:
    n = len(records)
    n_conn = expected.n_connections
    n_keys = max(1, expected.n_keys)
    total = expected.total
    sent = expected.sent
    offsets = expected.offsets
    names = expected.key_names

    # -- match every record with the message sent at (conn, cseq)
    # in-place steps: the temporaries here set the peak memory per message
    in_range = records.conn < n_conn
    c_idx = records.conn.astype(np.int64)
    c_idx[~in_range] = 0
    valid = records.cseq < sent[c_idx]
    valid &= in_range
    del in_range
    flat = offsets[c_idx]
    del c_idx
    flat += records.cseq
    flat[~valid] = 0
    if total:
        valid &= (expected.key_flat[flat] == records.key) & (expected.kseq_flat[flat] == records.kseq)
    else:
        valid[:] = False
    flat[~valid] = -1
    all_valid = bool(valid.all())

    witnesses: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "lost", "duplicated", "unexpected", "nonmonotonic_per_key", "nonmonotonic_per_connection")}

    unexpected_idx = np.flatnonzero(~valid)
    for i in unexpected_idx[:N_WITNESSES]:
        conn, cseq = int(records.conn[i]), int(records.cseq[i])
        if conn >= n_conn:
            why = f"no connection {conn} (sent {n_conn})"
        elif cseq >= sent[conn]:
            why = f"connection {conn} sent only {int(sent[conn])} messages"
        else:
            why = (f"sent key {int(expected.key_flat[offsets[conn] + cseq])} "
                   f"kseq {int(expected.kseq_flat[offsets[conn] + cseq])} at this cseq")
        witnesses["unexpected"].append({"conn": conn, "cseq": cseq, "key": int(records.key[i]),
                                        "kseq": int(records.kseq[i]), **_where(records, i), "why": why})

    # -- exactly once
    counts = np.bincount(flat[valid] if not all_valid else flat, minlength=total)
    lost_idx = np.flatnonzero(counts == 0)
    for f in lost_idx[:N_WITNESSES]:
        c = int(np.searchsorted(offsets, f, side="right") - 1)
        k = int(expected.key_flat[f])
        witnesses["lost"].append({"conn": c, "cseq": int(f - offsets[c]), "key": k, "key_name": names[k],
                                  "kseq": int(expected.kseq_flat[f])})
    dup_cells = np.flatnonzero(counts > 1)
    duplicate_copies = int((counts[dup_cells] - 1).sum())
    use = None  # records taking part in the order checks (None = all valid ones)
    if len(dup_cells) or not all_valid:
        use = valid.copy()
    if len(dup_cells):
        dup_rec = np.flatnonzero(valid & (counts[np.maximum(flat, 0)] > 1))
        _, first = np.unique(flat[dup_rec], return_index=True)
        use[dup_rec] = False
        use[dup_rec[first]] = True
        shown = dup_cells[:N_WITNESSES]
        hit = dup_rec[np.isin(flat[dup_rec], shown)]
        for f in shown:
            c = int(np.searchsorted(offsets, f, side="right") - 1)
            copies = hit[flat[hit] == f]
            witnesses["duplicated"].append({"conn": c, "cseq": int(f - offsets[c]), "key": int(expected.key_flat[f]),
                                            "count": int(counts[f]),
                                            "arrivals": [int(records.arrival[i]) for i in copies[:N_WITNESSES]],
                                            "lines": [int(records.line[i]) + 1 for i in copies[:N_WITNESSES]]})
    del counts, flat

    sel = np.flatnonzero(use) if use is not None else None
    conn = records.conn if sel is None else records.conn[sel]
    key = records.key if sel is None else records.key[sel]

    def rec_index(pos: np.ndarray) -> np.ndarray:
        return pos if sel is None else sel[pos]

    # -- per (connection, key) order
    kseq = records.kseq if sel is None else records.kseq[sel]
    n_groups = n_conn * n_keys
    gtype = np.uint16 if n_groups <= 0xFFFF else np.uint32 if n_groups <= 0xFFFFFFFF else np.int64
    if n_conn > 1:
        groups = conn.astype(gtype)
        groups *= gtype(n_keys)
        groups += key.astype(gtype, copy=False)
    else:
        groups = key.astype(gtype, copy=False)
    order, gs, ks, same, inv = _adjacent_inversions(groups, n_groups, kseq)
    key_pairs = int(same.sum())
    inv_pos = np.flatnonzero(inv)
    n_inv_key = len(inv_pos)
    max_disp = 0
    share_by_key: dict[str, float] = {}
    if n_inv_key:
        later = order[inv_pos + 1]
        first_shown = inv_pos[np.argsort(later, kind="stable")[:N_WITNESSES]]
        for p in first_shown:
            a, b = rec_index(order[p]), rec_index(order[p + 1])
            k = int(records.key[b])
            witnesses["nonmonotonic_per_key"].append({
                "conn": int(records.conn[b]), "key": k, "key_name": names[k] if k < len(names) else None,
                "kseq_before": int(records.kseq[a]), "kseq_after": int(records.kseq[b]),
                "arrival_before": int(records.arrival[a]), "arrival_after": int(records.arrival[b]),
                "line_before": int(records.line[a]) + 1, "line_after": int(records.line[b]) + 1})
        # displacement: arrival rank vs send rank within the group, both in group-sorted space
        by_seq = np.lexsort((ks, gs))
        max_disp = int(np.abs(np.arange(len(by_seq)) - by_seq).max()) if len(by_seq) else 0
        pair_key = (gs[1:] % n_keys)
        pairs_per_key = np.bincount(pair_key[same], minlength=n_keys)
        inv_per_key = np.bincount(pair_key[inv], minlength=n_keys)
        for k in np.flatnonzero(inv_per_key):
            share_by_key[names[k] if k < len(names) else str(k)] = float(inv_per_key[k] / pairs_per_key[k])
    del order, gs, ks, same, inv, groups, kseq

    # -- per connection order
    cseq = records.cseq if sel is None else records.cseq[sel]
    order, gs, cs, same, inv = _adjacent_inversions(conn, n_conn, cseq)
    inv_pos = np.flatnonzero(inv)
    n_inv_conn = len(inv_pos)
    if n_inv_conn:
        later = order[inv_pos + 1]
        for p in inv_pos[np.argsort(later, kind="stable")[:N_WITNESSES]]:
            a, b = rec_index(order[p]), rec_index(order[p + 1])
            witnesses["nonmonotonic_per_connection"].append({
                "conn": int(records.conn[b]), "key_before": int(records.key[a]), "key_after": int(records.key[b]),
                "cseq_before": int(records.cseq[a]), "cseq_after": int(records.cseq[b]),
                "arrival_before": int(records.arrival[a]), "arrival_after": int(records.arrival[b]),
                "line_before": int(records.line[a]) + 1, "line_after": int(records.line[b]) + 1})

    return CheckResult(
        ordering=ordering, sent=total, received=n, malformed=records.malformed, lost=len(lost_idx),
        duplicated=len(dup_cells), duplicate_copies=duplicate_copies, unexpected=len(unexpected_idx),
        nonmonotonic_per_key=n_inv_key, nonmonotonic_per_connection=n_inv_conn, key_pairs=key_pairs,
        inverted_pair_share=float(n_inv_key / key_pairs) if key_pairs else 0.0, max_displacement=max_disp,
        inverted_pair_share_by_key=share_by_key, witnesses=witnesses,
        malformed_examples=list(records.malformed_examples), incomplete_tails=records.incomplete_tails)
