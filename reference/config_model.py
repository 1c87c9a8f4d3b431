"""The parsed configuration: what ``reference.config`` produces and the
engine and service consume.

Plain data, no behaviour.  Every element remembers where it was written
(``Location``) so that later checks can point at the file, line and column.
Defaults are syslog-ng's own where it has one.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class GlobalOptions:
    log_msg_size: int = 65536
    log_fetch_limit: int = 10
    log_iw_size: int = 1000
    stats_level: int | None = None  # accepted, not used


@dataclass
class SourceDriver:
    """tcp(), network() or syslog() on TCP: one listening socket."""

    kind: str  # "tcp" | "network" | "syslog"
    loc: Location
    ip: str = "127.0.0.1"  # parbench binds loopback only
    port: int = 514  # port(0) = any free port (reported in the ready file)
    transport: str = "tcp"  # as written in transport(), lowercase
    # How a connection's bytes are cut into messages, decided by the driver
    # and its transport: "text" (newline or NUL ends a message) or "framed"
    # (RFC 6587 octet counting, LEN SP MSG).
    framing: str = "text"
    # None = inherit from options {} (log_iw_size, log_fetch_limit, log_msg_size).
    log_iw_size: int | None = None
    max_connections: int = 10
    log_fetch_limit: int | None = None
    log_msg_size: int | None = None
    keep_hostname: bool = False
    use_dns: bool = True  # $HOST_FROM (and $HOST without keep-hostname) is the peer's name
    use_fqdn: bool = False  # the peer's name as resolved, not cut at the first dot
    syslog_protocol: bool = False  # flags(syslog-protocol), or the syslog() driver: parse RFC 5424
    flags: tuple[str, ...] = ()


@dataclass
class Source:
    name: str | None  # None for an inline (anonymous) source
    drivers: list[SourceDriver]
    loc: Location


@dataclass
class DestinationDriver:
    kind: str  # "tcp" | "network" | "file"
    loc: Location
    host: str | None = None  # tcp/network
    port: int | None = None  # tcp/network
    path: str | None = None  # file
    template: str | None = None  # None = syslog-ng's default line format


@dataclass
class Destination:
    name: str | None
    drivers: list[DestinationDriver]
    loc: Location


@dataclass
class CostStage:
    """parbench-cost(): a parbench extension, not a syslog-ng parser.

    cpu_us: CPU work per message, done in a way that releases the GIL (as a C
    parser would).  latency_us: a wait per batch (a slow network hop).
    """

    loc: Location
    cpu_us: float = 0.0
    latency_us: float = 0.0


@dataclass
class Parser:
    name: str | None
    stages: list[CostStage]
    loc: Location


@dataclass
class Parallelize:
    loc: Location
    partitions: int | None = None  # None or 0 = bypass
    partition_key: str | None = None  # template text
    batch_size: int | None = None  # None = the profile's default
    log_fetch_limit: int | None = None  # drain limit; None = profile default, 0 = none


@dataclass
class LogPath:
    """One log { } statement.

    ``sources`` feed it; ``pipeline`` is the ordered list of elements the
    messages pass through (Parser, Parallelize, Destination).  Elements before
    a Parallelize run in the source connection's thread, the rest in the
    partition's drain job.
    """

    sources: list[Source]
    pipeline: list[Parser | Parallelize | Destination]
    loc: Location
    flow_control: bool = False
    flags: tuple[str, ...] = ()


@dataclass
class Config:
    file: str
    version: str | None
    options: GlobalOptions = field(default_factory=GlobalOptions)
    sources: dict[str, Source] = field(default_factory=dict)
    destinations: dict[str, Destination] = field(default_factory=dict)
    parsers: dict[str, Parser] = field(default_factory=dict)
    log_paths: list[LogPath] = field(default_factory=list)
