"""The checker against fake outputs of broken targets: each breakage gives
exactly its anomaly, with the exact witness, and nothing else; the verdict
looks only at the anomalies the expectation prohibits."""
import json

import numpy as np
import pytest

from parbench.harness import checks
from parbench.harness.checks import CHECKS, Anomaly, check
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


ANOMALIES = ("lost", "duplicated", "unexpected", "malformed", "nonmonotonic-per-key", "nonmonotonic-per-connection")


def run(plan, lines, expected=None):
    rec = parse_capture(Capture.from_bytes(b"".join(lines)))
    return check(rec, expected or plan.expected), rec


def counts(r):
    assert tuple(r.anomalies) == ANOMALIES  # every check ran, in the registry's order
    return tuple(r.anomalies[name].count for name in ANOMALIES)


def test_faithful_output_passes_everything(plan):
    r, _ = run(plan, rows_of(plan, 0) + rows_of(plan, 1))
    assert counts(r) == (0, 0, 0, 0, 0, 0)
    assert r.stats["received"] == r.stats["sent"] == 800
    assert r.stats["inverted_pair_share"] == 0 and r.stats["max_displacement"] == 0
    assert all(a.witnesses == [] for a in r.anomalies.values())
    for exp in (PER_KEY, PER_CONN, NONE):
        assert r.verdict(exp) == ("pass", [])


def test_losing_one_message(plan):
    a = rows_of(plan, 0)
    lost = a.pop(123)
    r, _ = run(plan, a + rows_of(plan, 1))
    assert counts(r) == (1, 0, 0, 0, 0, 0)
    key = int(plan.key_index[0][123])
    assert r.anomalies["lost"].witnesses == [{"conn": 0, "cseq": 123, "key": key, "key_name": plan.key_names[key],
                                              "kseq": int(plan.kseq_flat[123])}]
    assert plan.key_names[key].encode() in lost
    verdict, reasons = r.verdict(PER_KEY)
    assert verdict == "fail" and len(reasons) == 1
    assert reasons[0].startswith("lost: 1 message sent, never received (first: conn=0, cseq=123, ")
    assert r.verdict(Expectation("per-key", loss_allowed=True)) == ("pass", [])


def test_duplicating_one_message(plan):
    a = rows_of(plan, 0)
    a.insert(300, a[50])  # the copy arrives much later
    r, _ = run(plan, a + rows_of(plan, 1))
    assert counts(r) == (0, 1, 0, 0, 0, 0)  # the late copy is not also an order violation
    assert r.stats["duplicate_copies"] == 1
    assert r.anomalies["duplicated"].witnesses == [{"conn": 0, "cseq": 50, "key": int(plan.key_index[0][50]),
                                                    "count": 2, "arrivals": [50, 300], "lines": [51, 301]}]
    verdict, reasons = r.verdict(Expectation("none", loss_allowed=True))
    assert verdict == "fail" and reasons[0].startswith("duplicated: 1 message received more than once")


def test_swapping_two_same_key_messages(plan):
    a = rows_of(plan, 0)
    keys = plan.key_index[0]
    i = 10
    same_key = np.flatnonzero(keys == keys[i])
    j = int(same_key[same_key > i][0])  # the next message of that key
    a[i], a[j] = a[j], a[i]
    r, _ = run(plan, a + rows_of(plan, 1))
    assert counts(r)[:5] == (0, 0, 0, 0, 1)
    k = int(keys[i])
    ks = int(plan.kseq_flat[i])
    assert r.anomalies["nonmonotonic-per-key"].witnesses == [{
        "conn": 0, "key": k, "key_name": plan.key_names[k], "kseq_before": ks + 1, "kseq_after": ks,
        "arrival_before": i, "arrival_after": j, "line_before": i + 1, "line_after": j + 1}]
    assert r.count("nonmonotonic-per-connection") >= 1
    assert r.stats["max_displacement"] == 1
    assert r.verdict(PER_KEY)[0] == "fail"
    assert r.verdict(NONE) == ("pass", [])


def test_reordering_across_keys_only_is_not_a_per_key_violation(plan):
    a = rows_of(plan, 0)
    keys = plan.key_index[0]
    # stable sort by key: every key's messages keep their order, the interleaving is gone
    reordered = [a[i] for i in np.argsort(keys, kind="stable")]
    r, _ = run(plan, reordered + rows_of(plan, 1))
    assert counts(r)[:5] == (0, 0, 0, 0, 0)
    assert r.count("nonmonotonic-per-connection") == len(set(keys.tolist())) - 1  # one drop per key boundary
    w = r.anomalies["nonmonotonic-per-connection"].witnesses[0]
    assert w["conn"] == 0 and w["cseq_after"] < w["cseq_before"] and w["key_after"] == w["key_before"] + 1
    assert r.verdict(PER_KEY) == ("pass", [])
    verdict, reasons = r.verdict(PER_CONN)
    assert verdict == "fail" and reasons[0].startswith("nonmonotonic-per-connection: ")


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
    w = r.anomalies["unexpected"].witnesses
    assert (w[0]["conn"], w[0]["arrival"], w[0]["why"]) == (4, 800, "no connection 4 (sent 2)")
    assert (w[1]["cseq"], w[1]["why"]) == (450, "connection 0 sent only 400 messages")
    assert r.verdict(NONE)[0] == "fail"
    # a message claiming (conn 1, cseq 0) with another key was never sent; the real one is then lost
    real = rows_of(plan, 1)
    k = int(plan.key_index[1][0])
    forged = real[0][:-1 - 56 + 13] + b"%08x" % ((k + 1) % 6) + real[0][-1 - 56 + 21:]
    r2, _ = run(plan, rows_of(plan, 0) + [forged] + real[1:])
    assert (r2.count("lost"), r2.count("unexpected"), r2.count("malformed")) == (1, 1, 0)
    assert r2.anomalies["unexpected"].witnesses[0]["why"] == f"sent key {k} kseq 0 at this cseq"
    assert r2.anomalies["lost"].witnesses[0]["conn"] == 1 and r2.anomalies["lost"].witnesses[0]["cseq"] == 0


def test_malformed_line_fails_the_verdict(plan):
    r, _ = run(plan, rows_of(plan, 0) + [b"no trailer here\n"] + rows_of(plan, 1))
    assert counts(r) == (0, 0, 0, 1, 0, 0)
    assert r.anomalies["malformed"].witnesses == [{"stream": 0, "line": 401, "text": "no trailer here"}]
    verdict, reasons = r.verdict(NONE)
    assert verdict == "fail" and reasons[0].startswith("malformed: 1 output line") and "no trailer here" in reasons[0]


def test_round_robin_disorder_is_quantified():
    # one key, 10 messages, arrival 0 1 2 5 3 4 6 7 8 9: one inverted adjacent pair of 9, message 5 displaced by 2
    p = build_plan(Workload(connections=1, messages_per_connection=10, keys=("only",), message_size=150))
    a = [bytes(x) for x in render_connection(p, 0)]
    order = [0, 1, 2, 5, 3, 4, 6, 7, 8, 9]
    r, _ = run(p, [a[i] for i in order])
    assert r.count("nonmonotonic-per-key") == 1 and r.stats["key_pairs"] == 9
    assert r.stats["inverted_pair_share"] == pytest.approx(1 / 9)
    assert r.stats["inverted_pair_share_by_key"] == {"only": pytest.approx(1 / 9)}
    assert r.stats["max_displacement"] == 2
    assert r.verdict(NONE) == ("pass", [])


def test_many_witnesses_are_capped_but_counted(plan):
    r, _ = run(plan, rows_of(plan, 1))  # connection 0 entirely lost
    assert r.count("lost") == 400 and len(r.anomalies["lost"].witnesses) == 10
    assert [w["cseq"] for w in r.anomalies["lost"].witnesses] == list(range(10))


def test_order_across_streams_uses_receive_time(plan):
    a = b"".join(rows_of(plan, 0)[:200])
    b = b"".join(rows_of(plan, 0)[200:])
    # the second half arrives on another output connection, received earlier
    caps = Capture([Stream(a, np.array([len(a)]), np.array([200])), Stream(b, np.array([len(b)]), np.array([100]))])
    r = check(parse_capture(caps), plan.expected_for(np.array([400, 0])))
    assert r.count("nonmonotonic-per-connection") == 1 and r.count("nonmonotonic-per-key") > 0
    assert r.anomalies["nonmonotonic-per-connection"].witnesses[0]["cseq_before"] == 399


def test_to_json_is_json_ready_with_every_anomaly_and_the_stats(plan):
    a = rows_of(plan, 0)
    a.pop(0)
    r, _ = run(plan, a + a[:2] + rows_of(plan, 1))
    d = json.loads(json.dumps(r.to_json()))
    assert list(d["anomalies"]) == list(ANOMALIES)
    assert d["anomalies"]["lost"]["count"] == 1 and d["anomalies"]["duplicated"]["count"] == 2
    assert d["anomalies"]["lost"]["witnesses"][0]["cseq"] == 0
    for k in ("sent", "received", "duplicate_copies", "incomplete_tails", "key_pairs", "inverted_pair_share",
              "inverted_pair_share_by_key", "max_displacement"):
        assert k in d["stats"], k


def test_empty_capture_loses_everything(plan):
    r, _ = run(plan, [])
    assert r.count("lost") == 800 and r.stats["received"] == 0 and r.stats["key_pairs"] == 0


# ---------------------------------------------------------------- verdicts and the registry

def test_expectations_prohibit_registered_anomalies_only():
    names = {c.name for c in CHECKS}
    assert names == set(ANOMALIES)
    for ordering in ("per-key", "per-connection", "none"):
        for loss_allowed in (False, True):
            prohibited = Expectation(ordering, loss_allowed).prohibited
            assert set(prohibited) <= names
            assert ("lost" in prohibited) == (not loss_allowed)
            assert ("nonmonotonic-per-key" in prohibited) == (ordering != "none")
            assert ("nonmonotonic-per-connection" in prohibited) == (ordering == "per-connection")
            assert {"duplicated", "unexpected", "malformed"} <= set(prohibited)


def test_an_incomplete_capture_makes_losses_unknown_but_not_other_anomalies(plan):
    a = rows_of(plan, 0)
    del a[10:20]  # as if the collector dropped them
    r, _ = run(plan, a + rows_of(plan, 1))
    assert r.verdict(PER_KEY) == ("fail", [r.verdict(PER_KEY)[1][0]])
    verdict, reasons = r.verdict(PER_KEY, incomplete="accept failed: too many open files")
    assert verdict == "unknown"
    assert reasons[0] == ("capture incomplete, so missing messages may be the collector's: "
                          "accept failed: too many open files")
    assert reasons[1].startswith("lost: 10 messages")
    # a duplicate is never the collector's doing: proof against the target even so
    r2, _ = run(plan, a + a[:1] + rows_of(plan, 1))
    verdict, reasons = r2.verdict(PER_KEY, incomplete="receive thread died")
    assert verdict == "fail" and any(x.startswith("duplicated: 1 message") for x in reasons)
    # nothing missing: the incomplete capture still passes
    r3, _ = run(plan, rows_of(plan, 0) + rows_of(plan, 1))
    assert r3.verdict(PER_KEY, incomplete="receive thread did not stop") == ("pass", [])


def test_a_prohibited_anomaly_nobody_checked_is_no_pass(plan):
    r, _ = run(plan, rows_of(plan, 0) + rows_of(plan, 1))
    del r.anomalies["duplicated"]
    assert r.verdict(PER_KEY) == ("unknown", ["duplicated: not checked"])
    assert r.verdict(NONE)[0] == "unknown"


def test_a_new_check_is_one_registered_function(plan, monkeypatch):
    """A check added to the registry runs, lands in the map with its
    witnesses, and decides the verdict of an expectation prohibiting it."""
    monkeypatch.setattr(checks, "CHECKS", list(CHECKS))

    @checks.anomaly("late", unit=("late message", "late messages"), description="received after 10 others")
    def late(ctx):
        late_ones = np.flatnonzero(ctx.records.cseq[:len(ctx.records)] + 10 < ctx.records.arrival)
        return Anomaly(len(late_ones), [{"arrival": int(i)} for i in late_ones[:2]])

    r, _ = run(plan, rows_of(plan, 1) + rows_of(plan, 0))  # connection 0 after 400 lines of connection 1: late
    assert list(r.anomalies)[-1] == "late" and r.count("late") == 400
    assert r.anomalies["late"].witnesses == [{"arrival": 400}, {"arrival": 401}]

    class Prohibits:
        prohibited = ("late",)

    assert r.verdict(Prohibits()) == ("fail", ["late: 400 late messages (first: arrival=400)"])
    with pytest.raises(ValueError, match="already registered"):
        checks.anomaly("lost", unit=("x", "x"), description="x")(late)


def test_hundreds_of_copies_are_counted_exactly(plan):
    a = rows_of(plan, 0)
    r, _ = run(plan, a + [a[7]] * 300 + rows_of(plan, 1))
    assert counts(r) == (0, 1, 0, 0, 0, 0)
    assert r.stats["duplicate_copies"] == 300
    (w,) = r.anomalies["duplicated"].witnesses
    assert (w["cseq"], w["count"], len(w["arrivals"])) == (7, 301, 10)
