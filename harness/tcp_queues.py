"""Bytes the kernel holds in loopback TCP connections, from /proc/net/tcp.

When a connection breaks or a process is killed, what its sockets still held
is lost with it: the bytes a writer handed to the kernel that the peer has
not acknowledged (the writer's ``tx_queue``), and the bytes the peer's
kernel acknowledged that the reader never read (the reader's ``rx_queue``).
The fault injector reads these just before it breaks a connection, so the
loss a fault may cause is measured, not guessed.  Without /proc (not Linux)
every figure is None.
"""
from __future__ import annotations

from dataclasses import dataclass

ESTABLISHED = "01"
_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


@dataclass(frozen=True)
class Queued:
    """Bytes in the established connections to or from one local port."""

    connections: int
    to_port: int  # tx_queue of the sockets whose remote port is the port (the writers)
    at_port: int  # rx_queue of the sockets whose local port is the port (the reader's side)

    @property
    def total(self) -> int:
        return self.to_port + self.at_port


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def queued(port: int) -> Queued | None:
    """What the kernel holds in every established connection with ``port`` at
    one end (loopback: both ends are on this host), or None without /proc."""
    connections = to_port = at_port = 0
    seen = False
    for table in _TABLES:
        try:
            with open(table) as fh:
                next(fh, None)
                lines = fh.readlines()
        except OSError:
            continue
        seen = True
        for line in lines:
            fields = line.split()
            if len(fields) < 5 or fields[3] != ESTABLISHED:
                continue
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            if _port(fields[2]) == port:
                to_port += tx
                connections += 1
            elif _port(fields[1]) == port:
                at_port += rx
    return Queued(connections, to_port, at_port) if seen else None
