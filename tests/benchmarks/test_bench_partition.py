"""Speed of partition choice, framing and parsing (run with --benchmark-only).

Target: KeyedPlacer.place well over 1M msg/s, because the engine must
dispatch >= 1M msg/s with a key at partitions(4); parsing feeds the service's
>= 150k msg/s end to end.
"""
import pytest

from parbench.reference.message import Framer, format_default, make_parser
from parbench.reference.partition import KeyedPlacer, RoundRobinPlacer, g_str_hash, g_str_hash_many
from parbench.reference.template import compile_template

HOSTS = [b"web-%02d.example" % i for i in range(16)]  # 13-byte host names
KEYS16 = [b"key-%012d" % i for i in range(1000)]      # 16-byte keys


def batch_of(n=1000):
    return [{"HOST": HOSTS[i % 16], "PROGRAM": b"app", "MSG": b"m%d" % i} for i in range(n)]


def test_g_str_hash_16_byte_keys(benchmark):
    benchmark.group = "partition: g_str_hash (1000 keys of 16 bytes per round)"
    benchmark(lambda: [g_str_hash(k) for k in KEYS16])


def test_g_str_hash_many_16_byte_keys(benchmark):
    benchmark.group = "partition: g_str_hash (1000 keys of 16 bytes per round)"
    benchmark(g_str_hash_many, KEYS16)


@pytest.mark.parametrize("template", ["$HOST", "$HOST/$PROGRAM"])
def test_keyed_place_1000_messages_16_hosts(benchmark, template):
    benchmark.group = "partition: place a batch of 1000 messages"
    placer = KeyedPlacer(4, compile_template(template))
    msgs = batch_of()
    placer.place(msgs)
    benchmark(placer.place, msgs)


def test_round_robin_place_1000(benchmark):
    benchmark.group = "partition: place a batch of 1000 messages"
    placer = RoundRobinPlacer(4, batch_size=100)
    benchmark(placer.place, 1000)


def _stream(n=1000):
    return b"".join(b"<13>Nov  6 12:00:00 %s app[1]: %s\n" % (HOSTS[i % 16], b"x" * 150)
                    for i in range(n))


def test_framer_1000_lines(benchmark):
    benchmark.group = "message: 1000 messages of ~200 bytes"
    data = _stream()
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]

    def run():
        framer = Framer(65536)
        return [m for c in chunks for m in framer.feed(c)]
    assert len(run()) == 1000
    benchmark(run)


@pytest.mark.parametrize("proto", [False, True])
def test_parse_1000(benchmark, proto):
    benchmark.group = "message: 1000 messages of ~200 bytes"
    if proto:
        raws = [b"<13>1 2026-11-06T12:00:00Z %s app 1 - - %s" % (HOSTS[i % 16], b"x" * 150)
                for i in range(1000)]
    else:
        raws = _stream().split(b"\n")[:-1]
    parse = make_parser(proto, True, b"127.0.0.1")
    benchmark(parse, raws)


def test_format_default_1000(benchmark):
    benchmark.group = "message: 1000 messages of ~200 bytes"
    msgs = make_parser(False, True, b"127.0.0.1")(_stream().split(b"\n")[:-1])
    benchmark(lambda: b"".join(map(format_default, msgs)))
