"""parbench in a pytest suite: what a syslog-ng / AxoSyslog developer writes.

With parbench installed, pytest loads its plugin (fixtures parbench_run,
parbench_check, parbench_impl); nothing to import.  Run:

    pytest examples/test_with_parbench.py                          # the reference parallelizer
    pytest examples/test_with_parbench.py --installdir /opt/axosyslog   # your build (DIR/sbin/syslog-ng)

A run or capture that breaks its scenario's expectation fails the test with
the anomaly and its witnesses (which connection, which sequence number) in
the assertion message.
"""
from __future__ import annotations


def test_per_key_order_holds_with_and_without_parallelize(parbench_run):
    """A shipped scenario, swept the way `parbench run` does: every run must
    keep each (connection, key)'s order and lose nothing."""
    results = parbench_run("chatty-single-sender", partitions=[0, 4], quick=True)
    assert [run.partitions for run in results.runs] == [0, 4]
    assert all(run.verdict == "pass" for run in results.runs)
    assert all(run.checks.count("lost") == 0 for run in results.runs)


def test_round_robin_spreads_every_message_exactly_once(parbench_impl, parbench_check):
    """Start an implementation, send the scenario's traffic, check the output
    it wrote: round-robin may reorder, but not lose or duplicate."""
    running = parbench_impl.start("round-robin", partitions=2, quick=True)
    sent = running.send()
    assert sent.complete
    capture = running.stop()
    checked = parbench_check(capture, running.scenario, sent=running.sent)
    assert checked.result.stats["received"] == int(running.sent.sum())


def test_a_capture_from_a_file(tmp_path, parbench_impl, parbench_check):
    """What `parbench collect` or your own destination wrote, read back from a file."""
    from parbench.harness.collector import write_capture

    running = parbench_impl.start("hot-key", partitions=4, quick=True)
    running.send()
    capture_file = tmp_path / "output.log"
    write_capture(running.stop(), capture_file)
    parbench_check(capture_file, running.scenario, sent=running.sent)
