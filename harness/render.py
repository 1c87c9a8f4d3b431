"""Scenario + partition count -> syslog-ng configuration text.

One renderer for both the reference (which reads syslog-ng's own config
language, see ``reference/config.py``) and a real syslog-ng, so both run the
same pipeline.  Differences by dialect:

* ``reference``: the synthetic ``parbench-cost()`` stage is rendered when the
  scenario asks for CPU or latency cost.
* ``syslog-ng``: there is no ``parbench-cost()``; the stage is left out
  (``config_notes`` says so, the report shows it).  ``batch-size()`` and
  ``log-fetch-limit()`` inside ``parallelize()`` are AxoSyslog options; for a
  syslog-ng version without them they are left out too.

Every string taken from a scenario is emitted by ``quote`` and every number
is formatted from an int/float, so a scenario value arrives verbatim and
can never end a statement or inject configuration of its own.  What
syslog-ng's config reader expands, and how ``quote`` keeps it literal:

* in a double-quoted string, ``\\`` escapes (``\\n``, ``\\xHH``, ``\\"``,
  ``\\\\``): ``\\`` and ``"`` are escaped, control characters written as
  ``\\xHH`` (always two digits, so a following hex digit stays literal);
  NUL cannot be represented (a C string ends there) and is refused;
* backtick references: before lexing, syslog-ng replaces `` `NAME` `` on
  every line, inside strings and comments too, with a ``@define``, a block
  argument or an environment variable; ```` `` ```` stands for one literal
  backtick.  In the ``syslog-ng`` dialect every backtick is doubled.  The
  reference's reader has no backtick references, so in the ``reference``
  dialect a backtick is written as it is;
* ``@`` pragmas and the old ``include`` statement are recognised at the
  start of a line only; a string never holds a raw line break, so a value
  cannot start a line.  syslog-ng reads its config in pieces of a few
  kilobytes and applies the line rules to each piece, so a rendered line
  is kept below ``MAX_LINE_CHARS`` (a longer one is refused).

What a template does with ``$`` (``partition-key("$HOST")``) is the
template language, by design: the value reaches it unchanged.
"""
from __future__ import annotations

import numbers
from typing import Any

from parbench.harness.syslog_ng.version import Version

DIALECTS = ("reference", "syslog-ng")

# syslog-ng's default max-connections() is 10; a scenario with more
# connections than that would be refused at the source, which is not what a
# scenario that leaves it unset means.
_DEFAULT_MAX_CONNECTIONS = 10


#: longest rendered line; syslog-ng substitutes backticks in pieces of 8 KiB
MAX_LINE_CHARS = 4000


def quote(value: Any, dialect: str = "syslog-ng") -> str:
    """A double-quoted string literal that ``dialect``'s config reader reads
    back as ``value``, verbatim (see the module's docstring).  ValueError
    for a value holding NUL, which no config string can carry."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown config dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
    text = str(value)
    if "\0" in text:
        raise ValueError(f"a config string cannot hold a NUL character, got {text!r}")
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "`" and dialect == "syslog-ng":
            out.append("``")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _int(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or int(value) != value:
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return str(int(value))


def _number(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")) or number < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    if number == int(number):
        return str(int(number))
    return f"{number:.6f}".rstrip("0")


def _supports_parallelize_tuning(dialect: str, version: str | None) -> bool:
    """batch-size()/log-fetch-limit() inside parallelize() exist in AxoSyslog
    (4.17+/4.22+), not in the syslog-ng line.  Without a version: the
    reference's default profile (AxoSyslog's) has them, an unknown real
    syslog-ng is assumed not to."""
    if version is None:
        return dialect == "reference"
    return Version.parse(version).has_parallelize_tuning


def _has_cost(pipeline: Any) -> bool:
    return bool(getattr(pipeline, "cost_cpu_us", 0) or getattr(pipeline, "cost_latency_us", 0))


DEFAULT_CONFIG_VERSION = (4, 8)


def config_version(version: str | None) -> tuple[int, int]:
    """(major, minor) for the ``@version`` line, from any version spelling
    the harness passes around (``harness.syslog_ng.version.Version.parse``: a
    detected version, a profile name, a bare number); None is the default
    (4.8).  Anything without a "major.minor" number is a ValueError rather
    than a silently wrong ``@version``."""
    if version is None:
        return DEFAULT_CONFIG_VERSION
    return Version.parse(version).major_minor


#: time-reopen() for every implementation: a lost destination connection is
#: retried after it (syslog-ng's default, 60 s, is longer than a whole run)
TIME_REOPEN_S = 1


def with_global_options(text: str, options: list[str]) -> str:
    """``text`` (a rendered config) with an ``options { ... };`` block of
    ``options`` (already config syntax) right after its ``@version`` line."""
    first, _, rest = text.partition("\n")
    if not first.startswith("@version"):
        raise ValueError(f"a rendered config starts with its @version line, not {first[:60]!r}")
    return f"{first}\noptions {{ {'; '.join(options)}; }};\n{rest}"


def _version_line(version: str | None) -> str:
    major, minor = config_version(version)
    return f"@version: {major}.{minor}"


def config_notes(scenario: Any, partitions: int, dialect: str = "reference", version: str | None = None) -> list[str]:
    """What of the scenario's pipeline the rendered config leaves out, and why."""
    notes: list[str] = []
    pipeline = scenario.pipeline
    if dialect == "syslog-ng" and _has_cost(pipeline):
        notes.append(
            "parbench-cost() (cpu-us/latency-us) exists only in the reference; "
            "the syslog-ng config has no cost stage, so its figures are not comparable on cost"
        )
    if partitions and not _supports_parallelize_tuning(dialect, version):
        if getattr(pipeline, "batch_size", None) is not None or getattr(pipeline, "parallelize_fetch_limit", None) is not None:
            notes.append(
                f"batch-size()/log-fetch-limit() inside parallelize() are AxoSyslog options; "
                f"left out for {version or dialect}"
            )
    return notes


def render_config(
    scenario: Any,
    partitions: int,
    out_port: int,
    in_port: int = 0,
    dialect: str = "reference",
    version: str | None = None,
) -> str:
    """The config text: one loopback source (network(), or syslog() for
    octet-counted framing), optional parallelize(), optional cost stage,
    one loopback tcp destination writing ``$MSG\\n``."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown config dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
    workload = scenario.workload
    pipeline = scenario.pipeline

    # Framing belongs to the source driver, never to the bytes: tcp() and
    # network() read newline-terminated text only; RFC 6587 octet counting
    # is the syslog() driver's (which also parses RFC 5424, falling back to
    # RFC 3164 for other lines: the same result for both formats parbench
    # generates).
    octet_counted = getattr(workload, "framing", "newline") == "octet-counted"
    driver = "syslog" if octet_counted else "network"
    src_opts = [
        'ip("127.0.0.1")',
        f"port({_int(in_port, 'in_port')})",
        'transport("tcp")',
    ]
    if getattr(pipeline, "log_iw_size", None) is not None:
        src_opts.append(f"log-iw-size({_int(pipeline.log_iw_size, 'log_iw_size')})")
    max_conn = getattr(pipeline, "max_connections", None)
    if max_conn is None:
        max_conn = max(_DEFAULT_MAX_CONNECTIONS, int(workload.connections))
    src_opts.append(f"max-connections({_int(max_conn, 'max_connections')})")
    if getattr(pipeline, "log_fetch_limit", None) is not None:
        src_opts.append(f"log-fetch-limit({_int(pipeline.log_fetch_limit, 'log_fetch_limit')})")
    src_opts += ["keep-hostname(yes)", "use-dns(no)"]
    if workload.format == "rfc5424" and not octet_counted:
        src_opts.append("flags(syslog-protocol)")

    lines = [
        _version_line(version),
        "# rendered by parbench (harness/render.py) for scenario " + quote(scenario.name, dialect),
        "",
        "source s_parbench {",
        f"    {driver}(" + " ".join(src_opts) + ");",
        "};",
        "",
    ]

    path = ["source(s_parbench);"]
    if partitions:
        par_opts = [f"partitions({_int(partitions, 'partitions')})"]
        if pipeline.partition_key:
            par_opts.append(f"partition-key({quote(pipeline.partition_key, dialect)})")
        if _supports_parallelize_tuning(dialect, version):
            if getattr(pipeline, "batch_size", None) is not None:
                par_opts.append(f"batch-size({_int(pipeline.batch_size, 'batch_size')})")
            if getattr(pipeline, "parallelize_fetch_limit", None) is not None:
                par_opts.append(
                    f"log-fetch-limit({_int(pipeline.parallelize_fetch_limit, 'parallelize_fetch_limit')})"
                )
        path.append("parallelize(" + " ".join(par_opts) + ");")

    if dialect == "reference" and _has_cost(pipeline):
        lines += [
            "parser p_parbench_cost {",
            f"    parbench-cost(cpu-us({_number(pipeline.cost_cpu_us or 0, 'cost_cpu_us')})"
            f" latency-us({_number(pipeline.cost_latency_us or 0, 'cost_latency_us')}));",
            "};",
            "",
        ]
        path.append("parser(p_parbench_cost);")

    lines += [
        "destination d_parbench {",
        f'    tcp("127.0.0.1" port({_int(out_port, "out_port")}) template("$MSG\\n"));',
        "};",
        "",
    ]
    path.append("destination(d_parbench);")
    if getattr(pipeline, "flow_control", False):
        path.append("flags(flow-control);")

    lines.append("log {")
    lines += ["    " + element for element in path]
    lines.append("};")
    longest = max(lines, key=len)
    if len(longest) > MAX_LINE_CHARS:
        raise ValueError(f"a rendered config line would be {len(longest)} characters long, longer than "
                         f"{MAX_LINE_CHARS} (syslog-ng reads its config in pieces): {longest[:60]}...")
    return "\n".join(lines) + "\n"
