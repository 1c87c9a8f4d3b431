"""The checker against fake outputs of broken targets: each breakage gives
exactly its anomaly, with the exact witness, and nothing else."""
import json

import numpy as np
import pytest

from parbench.harness.checks import check
from parbench.harness.collector import Capture, Stream, parse_capture
from parbench.harness.scenario import Expectation, Workload, generate_host_names
from parbench.harness.workload import build_plan, render_connection

PER_KEY = Expectation("per-key", False)
PER_CONN = Expectation("per-connection", False)
NONE = Expectation("none", False)


@pytest.fixture(scope="module")
def plan():
    return build_plan(Workload(connections=2, messages_per_connection=400, keys=generate_host_names(6, 2),
                               message_size=180, seed=5))


def rows_of(plan, conn):
    return [bytes(r) for r in render_connection(plan, conn)]


def run(plan, lines, ordering="per-key", expected=None):
    rec = parse_capture(Capture.from_bytes(b"".join(lines)))
    return check(rec, expected or plan.expected, ordering), rec


def counts(r):
    return (r.lost, r.duplicated, r.unexpected, r.malformed, r.nonmonotonic_per_key, r.nonmonotonic_per_connection)


def test_faithful_output_passes_everything(plan):
    r, _ = run(plan, rows_of(plan, 0) + rows_of(plan, 1))
    assert counts(r) == (0, 0, 0, 0, 0, 0)
    assert r.received == r.sent == 800 and r.inverted_pair_share == 0 and r.max_displacement == 0
    for exp in (PER_KEY, PER_CONN, NONE):
        assert r.verdict(exp) == (True, [])


def test_losing_one_message(plan):
    a = rows_of(plan, 0)
    lost = a.pop(123)
    r, _ = run(plan, a + rows_of(plan, 1))
    assert counts(r) == (1, 0, 0, 0, 0, 0)
    key = int(plan.key_index[0][123])
    assert r.witnesses["lost"] == [{"conn": 0, "cseq": 123, "key": key, "key_name": plan.key_names[key],
                                    "kseq": int(plan.kseq_flat[123])}]
    assert plan.key_names[key].encode() in lost
    ok, reasons = r.verdict(PER_KEY)
    assert not ok and len(reasons) == 1 and reasons[0].startswith("lost 1 of 800 messages")
    assert r.verdict(Expectation("per-key", loss_allowed=True)) == (True, [])


def test_duplicating_one_message(plan):
    a = rows_of(plan, 0)
    a.insert(300, a[50])  # the copy arrives much later
    r, _ = run(plan, a + rows_of(plan, 1))
    assert counts(r) == (0, 1, 0, 0, 0, 0)  # the late copy is not also an order violation
    assert r.duplicate_copies == 1
    assert r.witnesses["duplicated"] == [{"conn": 0, "cseq": 50, "key": int(plan.key_index[0][50]), "count": 2,
                                          "arrivals": [50, 300], "lines": [51, 301]}]
    ok, reasons = r.verdict(Expectation("none", loss_allowed=True))
    assert not ok and reasons[0].startswith("duplicated 1 messages")


def test_swapping_two_same_key_messages(plan):
    a = rows_of(plan, 0)
    keys = plan.key_index[0]
    i = 10
    same_key = np.flatnonzero(keys == keys[i])
    j = int(same_key[same_key > i][0])  # the next message of that key
    a[i], a[j] = a[j], a[i]
    r, _ = run(plan, a + rows_of(plan, 1))
    assert (r.lost, r.duplicated, r.unexpected, r.nonmonotonic_per_key) == (0, 0, 0, 1)
    k = int(keys[i])
    ks = int(plan.kseq_flat[i])
    assert r.witnesses["nonmonotonic_per_key"] == [{
        "conn": 0, "key": k, "key_name": plan.key_names[k], "kseq_before": ks + 1, "kseq_after": ks,
        "arrival_before": i, "arrival_after": j, "line_before": i + 1, "line_after": j + 1}]
    assert r.nonmonotonic_per_connection >= 1
    assert r.max_displacement == 1
    assert not r.verdict(PER_KEY)[0]
    assert r.verdict(NONE) == (True, [])


def test_reordering_across_keys_only_is_not_a_per_key_violation(plan):
    a = rows_of(plan, 0)
    keys = plan.key_index[0]
    # stable sort by key: every key's messages keep their order, the interleaving is gone
    reordered = [a[i] for i in np.argsort(keys, kind="stable")]
    r, _ = run(plan, reordered + rows_of(plan, 1))
    assert (r.lost, r.duplicated, r.unexpected, r.nonmonotonic_per_key) == (0, 0, 0, 0)
    assert r.nonmonotonic_per_connection == len(set(keys.tolist())) - 1  # one drop per key boundary
    w = r.witnesses["nonmonotonic_per_connection"][0]
    assert w["conn"] == 0 and w["cseq_after"] < w["cseq_before"] and w["key_after"] == w["key_before"] + 1
    assert r.verdict(PER_KEY) == (True, [])
    ok, reasons = r.verdict(PER_CONN)
    assert not ok and reasons[0].startswith("per-connection order broken")


def test_same_key_interleaved_across_connections_is_fine_per_key(plan):
    # connection 1 entirely before connection 0, then interleaved line by line: per (conn, key) order holds
    a, b = rows_of(plan, 0), rows_of(plan, 1)
    mixed = [x for pair in zip(b, a) for x in pair]
    r, _ = run(plan, mixed)
    assert counts(r) == (0, 0, 0, 0, 0, 0)


def test_unexpected_messages(plan):
    a = rows_of(plan, 0)
    other = build_plan(Workload(connections=5, messages_per_connection=500, keys=plan.key_names, message_size=180,
                                seed=99))
    foreign_conn = bytes(render_connection(other, 4, 0, 1)[0])  # connection 4 never existed
    beyond = bytes(render_connection(other, 0, 450, 1)[0])  # cseq 450 >= 400 sent
    lines = a + rows_of(plan, 1) + [foreign_conn, beyond]
    r, _ = run(plan, lines)
    assert counts(r) == (0, 0, 2, 0, 0, 0)
    w = r.witnesses["unexpected"]
    assert (w[0]["conn"], w[0]["arrival"], w[0]["why"]) == (4, 800, "no connection 4 (sent 2)")
    assert (w[1]["cseq"], w[1]["why"]) == (450, "connection 0 sent only 400 messages")
    assert not r.verdict(NONE)[0]
    # a message claiming (conn 1, cseq 0) with another key was never sent; the real one is then lost
    real = rows_of(plan, 1)
    k = int(plan.key_index[1][0])
    forged = real[0][:-1 - 56 + 13] + b"%08x" % ((k + 1) % 6) + real[0][-1 - 56 + 21:]
    r2, _ = run(plan, rows_of(plan, 0) + [forged] + real[1:])
    assert (r2.lost, r2.unexpected, r2.malformed) == (1, 1, 0)
    assert r2.witnesses["unexpected"][0]["why"] == f"sent key {k} kseq 0 at this cseq"
    assert r2.witnesses["lost"][0]["conn"] == 1 and r2.witnesses["lost"][0]["cseq"] == 0


def test_malformed_line_fails_the_verdict(plan):
    r, _ = run(plan, rows_of(plan, 0) + [b"no trailer here\n"] + rows_of(plan, 1))
    assert counts(r) == (0, 0, 0, 1, 0, 0)
    ok, reasons = r.verdict(NONE)
    assert not ok and "malformed" in reasons[0] and "no trailer here" in reasons[0]


def test_round_robin_disorder_is_quantified():
    # one key, 10 messages, arrival 0 1 2 5 3 4 6 7 8 9: one inverted adjacent pair of 9, message 5 displaced by 2
    p = build_plan(Workload(connections=1, messages_per_connection=10, keys=("only",), message_size=150))
    a = [bytes(x) for x in render_connection(p, 0)]
    order = [0, 1, 2, 5, 3, 4, 6, 7, 8, 9]
    r, _ = run(p, [a[i] for i in order], "none")
    assert r.nonmonotonic_per_key == 1 and r.key_pairs == 9
    assert r.inverted_pair_share == pytest.approx(1 / 9)
    assert r.inverted_pair_share_by_key == {"only": pytest.approx(1 / 9)}
    assert r.max_displacement == 2
    assert r.verdict(NONE) == (True, [])


def test_many_witnesses_are_capped_but_counted(plan):
    r, _ = run(plan, rows_of(plan, 1))  # connection 0 entirely lost
    assert r.lost == 400 and len(r.witnesses["lost"]) == 10
    assert [w["cseq"] for w in r.witnesses["lost"]] == list(range(10))


def test_order_across_streams_uses_receive_time(plan):
    a = b"".join(rows_of(plan, 0)[:200])
    b = b"".join(rows_of(plan, 0)[200:])
    # the second half arrives on another output connection, received earlier
    caps = Capture([Stream(a, np.array([len(a)]), np.array([200])), Stream(b, np.array([len(b)]), np.array([100]))])
    r = check(parse_capture(caps), plan.expected_for(np.array([400, 0])), "per-key")
    assert r.nonmonotonic_per_connection == 1 and r.nonmonotonic_per_key > 0
    assert r.witnesses["nonmonotonic_per_connection"][0]["cseq_before"] == 399


def test_to_dict_is_json_ready_and_has_the_results_fields(plan):
    a = rows_of(plan, 0)
    a.pop(0)
    r, _ = run(plan, a + a[:2] + rows_of(plan, 1))
    d = json.loads(json.dumps(r.to_dict()))
    for k in ("lost", "duplicated", "unexpected", "malformed", "nonmonotonic_per_key", "nonmonotonic_per_connection",
              "inverted_pair_share", "max_displacement", "witnesses"):
        assert k in d
    assert d["lost"] == 1 and d["duplicated"] == 2


def test_empty_capture_loses_everything(plan):
    r, _ = run(plan, [])
    assert r.lost == 800 and r.received == 0 and r.key_pairs == 0
