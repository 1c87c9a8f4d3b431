"""The input-source interface between the engine and whatever feeds a
connection (reference.inputs): the in-process MessageQueue, a socket-like
input driven only through the public protocol, and a check that the service
reaches into no private name of another object."""
from __future__ import annotations

import ast
import collections
import threading
from pathlib import Path

import pytest

from parbench.errors import RunFailure
from parbench.reference.engine import Engine
from parbench.reference.inputs import InputSource, MessageQueue, SubmitTimeout
from test_engine import BlockedSink, ListSink, config, msgs

REPO = Path(__file__).resolve().parents[1]


class ScriptedInput:
    """A socket-like input: a chunk "arrives" each time the engine asks to be
    told about more input (``watch``), from another thread, as a poller would
    report readability; after the last chunk comes the end of the stream."""

    def __init__(self, chunks):
        self.chunks = collections.deque(chunks)
        self.buffer: collections.deque = collections.deque()
        self.eof = False
        self.closed = False
        self.watches = 0
        self.releases = 0
        self.on_input = None

    def arrive(self):
        if self.chunks:
            self.buffer.extend(self.chunks.popleft())
        else:
            self.eof = True
        self.on_input()

    def attach(self, on_input):
        self.on_input = on_input

    def take(self, limit):
        out = []
        while len(out) < limit and self.buffer:
            out.append(self.buffer.popleft())
        return out

    def has_input(self):
        return bool(self.buffer)

    def may_have_input(self):
        return bool(self.buffer) or not (self.eof or self.closed)

    def at_end(self):
        return (self.eof or self.closed) and not self.buffer

    def buffered(self):
        return len(self.buffer)

    def watch(self):
        self.watches += 1
        threading.Timer(0.001, self.arrive).start()

    def close(self):
        self.closed = True

    def release(self):
        self.releases += 1


def test_scripted_input_satisfies_the_protocol_statically():
    inp: InputSource = ScriptedInput([])  # a type checker would flag a missing method
    assert all(callable(getattr(inp, name)) for name in
               ("attach", "take", "has_input", "may_have_input", "at_end", "watch", "close", "release"))


@pytest.mark.parametrize("partitions,key", [(None, None), (3, "$HOST"), (2, None)])
def test_a_socket_like_input_is_read_to_its_end_through_the_protocol(partitions, key):
    chunks = [msgs(25)[i:i + 5] for i in range(0, 25, 5)]
    sink = ListSink()
    engine = Engine(config(partitions, key, fetch=3), "axosyslog-4.26", workers=2, sinks={"out": sink})
    inp = ScriptedInput(chunks)
    try:
        conn = engine.connect("in", inp)
        inp.arrive()
        assert engine.drain(10)  # the connection finished on the input's end of stream
        assert inp.releases == 1
        assert inp.watches == 5  # once after each chunk; the last one brought the end of stream
        conn.close()  # closing a finished connection releases nothing twice
        assert inp.releases == 1
    finally:
        assert engine.stop(5)
    assert not engine.errors
    assert sorted(m["SEQ"] for m in sink.got) == list(range(25))
    if partitions is None:
        assert [m["SEQ"] for m in sink.got] == list(range(25))


def test_a_full_window_suspends_an_input_that_may_have_more():
    sink = BlockedSink()
    # window = log-iw-size / max-connections = 4, fetch 2
    engine = Engine(config(2, "$HOST", fetch=2, iw=4, max_conn=1), "axosyslog-4.26", workers=2,
                    sinks={"out": sink})
    inp = ScriptedInput([msgs(20)])
    try:
        conn = engine.connect("in", inp)
        inp.arrive()
        assert engine._pool.wait_idle(5)
        assert conn.in_flight == 4 and len(inp.buffer) == 16
        assert engine.counters()["sources"][0]["window_full_suspensions_total"] == 1
        assert inp.watches == 0  # suspended, not idle: nobody asked the poller
        sink.gate.set()
        assert engine.drain(10)
    finally:
        sink.gate.set()
        assert engine.stop(5)
    assert sorted(m["SEQ"] for m in sink.got) == list(range(20))
    assert inp.releases == 1


def test_message_queue_offer_submit_and_close():
    with pytest.raises(RuntimeError, match="not attached"):
        MessageQueue(capacity=3).offer([1])
    q = MessageQueue(capacity=3)
    calls = []
    q.attach(lambda: calls.append(1))
    assert q.offer([1, 2, 3, 4, 5]) == 3 and calls == [1]
    assert q.offer([6]) == 0 and calls == [1]  # nothing taken: nothing announced
    assert q.has_input() and q.may_have_input() and not q.at_end()
    assert q.take(2) == [1, 2]
    with pytest.raises(SubmitTimeout) as info:
        q.submit([7, 8, 9], timeout=0.05)
    assert isinstance(info.value, RunFailure) and isinstance(info.value, TimeoutError)
    assert q.take(10) == [3, 7, 8]
    q.close()
    with pytest.raises(RuntimeError, match="closed"):
        q.offer([10])
    assert q.at_end() and not q.may_have_input()


def test_submit_waits_for_room_and_then_hands_everything_over():
    q = MessageQueue(capacity=2)
    q.attach(lambda: None)
    taken = []
    done = threading.Event()

    def consume():
        while not done.is_set() or q.has_input():
            taken.extend(q.take(1))

    t = threading.Thread(target=consume)
    t.start()
    try:
        q.submit(list(range(50)), timeout=10)
    finally:
        done.set()
        t.join(10)
    assert taken == list(range(50))


def test_the_service_touches_no_private_name_of_another_object():
    tree = ast.parse((REPO / "reference" / "service.py").read_text())
    foreign = [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr.startswith("_")
               and not node.attr.startswith("__")
               and not (isinstance(node.value, ast.Name) and node.value.id == "self")]
    assert foreign == []
