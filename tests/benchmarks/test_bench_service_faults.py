"""Costs that must scale right, as ratios of two runs side by side:

* framing one long line: a 64 MiB line against a 16 MiB one (linear
  buffering: about 4x; copying everything so far at every chunk: about 16x);
* a good connection of `parbench serve` with two others flooding empty
  lines and empty frames, against the same connection alone (a fair loop
  shares the pool among the three; a reader that reads until the socket is
  empty starves it).
"""
from __future__ import annotations

import socket
import threading
import time

from loopback import LoopbackListener

from parbench.reference.message import Framer
from test_service_e2e import Service
from test_service_load import conf, good_messages

CHUNK = 256 * 1024


def frame_one_line(megabytes: int) -> float:
    size = megabytes << 20
    framer = Framer(size + 1)
    chunk = b"x" * CHUNK
    t0 = time.perf_counter()
    for _ in range(size // CHUNK):
        assert framer.feed(chunk) == []
    (line,) = framer.feed(b"\n")
    elapsed = time.perf_counter() - t0
    assert len(line) == size
    return elapsed


def test_long_line_framing_is_linear(benchmark):
    benchmark.group = "message: one long line"
    small = min(frame_one_line(16) for _ in range(3))
    benchmark.pedantic(frame_one_line, args=(64,), rounds=3, warmup_rounds=0)
    ratio = benchmark.stats.stats.min / small
    benchmark.extra_info["ratio_64_to_16_mib"] = round(ratio, 1)
    assert ratio < 8, f"a 64 MiB line took {ratio:.1f}x a 16 MiB one (linear: 4x, quadratic: 16x)"


def test_a_flood_slows_a_good_connection_only_by_its_share(benchmark, tmp_path):
    benchmark.group = "engine: fairness, 2000 messages beside two floods"
    count = 2000
    with LoopbackListener() as out:
        svc = Service(tmp_path, conf(out.port))
        stop = threading.Event()
        floods: list[threading.Thread] = []
        try:
            port, framed_port = (s["port"] for s in svc.wait_ready()["sources"])
            data = good_messages(count)

            def deliver() -> float:
                start = out.newlines
                t0 = time.perf_counter()
                with socket.create_connection(("127.0.0.1", port), timeout=30) as good:
                    good.sendall(data)
                    assert out.wait_lines(start + count, 120)
                return time.perf_counter() - t0

            alone = min(deliver() for _ in range(3))

            def flood(pattern: bytes, to: int) -> None:
                chunk = pattern * 32768
                with socket.create_connection(("127.0.0.1", to), timeout=5) as s:
                    while not stop.is_set():
                        try:
                            s.sendall(chunk)
                        except OSError:
                            return

            floods = [threading.Thread(target=flood, args=a, daemon=True)
                      for a in ((b"\n", port), (b"0 ", framed_port))]
            for t in floods:
                t.start()
            time.sleep(0.5)
            benchmark.pedantic(deliver, rounds=3, warmup_rounds=0)
        finally:
            stop.set()
            for t in floods:
                t.join(10)
            svc.kill()
    ratio = benchmark.stats.stats.median / alone
    benchmark.extra_info["alone_s"] = round(alone, 3)
    benchmark.extra_info["slowdown_ratio"] = round(ratio, 1)
    # Three connections share two pool threads, and the flooding senders
    # share the machine's two cores with the service.
    assert ratio < 8, f"the good connection took {ratio:.1f}x as long beside two floods"
