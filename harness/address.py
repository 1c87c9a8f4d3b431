"""Network addresses given on the command line (``HOST:PORT``, ``[::1]:PORT``,
``PORT``) and the loopback-only rule of ``parbench send`` / ``collect``.

parbench talks to loopback unless the user says otherwise: another address
needs ``--allow-remote``, so a typo in a host name never floods a production
server with test traffic.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from parbench.errors import UsageError

LOOPBACK_NAMES = ("localhost",)
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_address(text: str, option: str, *, default_host: str | None = None, allow_port_zero: bool = False
                  ) -> Address:
    """``HOST:PORT``, ``[IPv6]:PORT`` or, with ``default_host``, a bare ``PORT``;
    UsageError naming ``option`` otherwise."""
    text = text.strip()
    expected = "HOST:PORT" + (" or PORT" if default_host else "")
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise UsageError(f"{option}: expected {expected} ([::1]:PORT for IPv6), got {text!r}")
    elif text.isdigit() and default_host:
        host, port = default_host, text
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise UsageError(f"{option}: expected {expected} ([::1]:PORT for IPv6), got {text!r}")
    if not port.isdigit() or not (0 if allow_port_zero else 1) <= int(port) <= 65535:
        low = 0 if allow_port_zero else 1
        raise UsageError(f"{option}: expected a port number {low}..65535, got {port!r} in {text!r}")
    return Address(host, int(port))


def require_loopback(address: Address, option: str, allow_remote: bool) -> None:
    """UsageError for a non-loopback address unless ``--allow-remote`` was given."""
    if not allow_remote and not address.loopback:
        raise UsageError(f"{option} {address}: not a loopback address; parbench talks to 127.0.0.1 / ::1 "
                         "unless you add --allow-remote")
