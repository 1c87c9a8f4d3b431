"""`parbench serve` frames each connection the way its source driver says:
tcp() and network() read text whatever the first byte is (the service used
to guess octet counting from a leading digit and close the connection,
losing all of it), syslog() reads octet counting."""
from __future__ import annotations

import socket
import time

import pytest

from loopback import LoopbackListener
from parbench.harness.targets.process import free_loopback_port
from parbench.harness.targets.reference import ReferenceTarget

CONF = """\
@version: 4.8
source s_text {{ tcp(ip("127.0.0.1") port({text}) keep-hostname(yes) use-dns(no)); }};
source s_framed {{ syslog(ip("127.0.0.1") port({framed}) keep-hostname(yes) use-dns(no)); }};
destination d {{ tcp("127.0.0.1" port({out}) template("$HOST|$PROGRAM|$MSG\\n")); }};
log {{ source(s_text); source(s_framed); destination(d); }};
"""


@pytest.fixture
def service(tmp_path):
    out = LoopbackListener()
    ports = {"text": free_loopback_port(), "framed": free_loopback_port()}
    target = ReferenceTarget(profile="syslog-ng-4.8")
    try:
        target.start_config(CONF.format(out=out.port, **ports), list(ports.values()), tmp_path, deadline_s=60)
        yield ports, out
    finally:
        target.stop()
        out.close()


def send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)


def lines(out: LoopbackListener, count: int) -> list[bytes]:
    deadline = time.monotonic() + 20
    while out.newlines < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return out.lines()


def test_a_text_connection_that_starts_with_digits_loses_nothing(service):
    ports, out = service
    send(ports["text"], b"12 <13>Oct 11 22:14:15 h1 app: one\n5 hello\n27 x\0<13>Oct 11 22:14:15 h2 app: nul\n")
    assert sorted(lines(out, 4)) == sorted([b"127.0.0.1|<13>Oct|11 22:14:15 h1 app: one", b"127.0.0.1|hello|",
                                            b"127.0.0.1|x|", b"h2|app|nul"])


def test_syslog_driver_reads_octet_counting(service):
    ports, out = service
    first = b"<13>1 - h3 app - - - line\nbreak"
    send(ports["framed"], b"%d %s17 <13>1 - - - - - -" % (len(first), first))
    assert sorted(lines(out, 3)) == [b"127.0.0.1||", b"break", b"h3|app|line"]
