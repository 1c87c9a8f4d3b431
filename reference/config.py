"""The subset of syslog-ng's configuration language that parbench speaks.

``parse_config(text)`` / ``load_config(path)`` turn a syslog-ng configuration
into a ``reference.config_model.Config``, so one file can be run by the
reference (``parbench serve -f``) and by a real syslog-ng.  Three layers, one
module each:

* ``config_lexer``: text -> tokens (syslog-ng's lexical rules); ``ConfigError``;
* ``config_syntax``: tokens -> statements and blocks of options, shape only;
* ``config_semantics``: statements -> ``Config``, every option checked
  against the supported subset and the version profile.

Anything outside the supported subset is rejected with a ``ConfigError``
(a ``parbench.errors.UsageError``, exit status 2) whose text is
``FILE:LINE:COLUMN: <what was found>; <what is supported>``; nothing ever
starts half-configured.  ``parbench config-check FILE`` runs the same checks
from the command line (``reference.config_check``).
"""
from __future__ import annotations

import os
import sys

from parbench.reference.config_lexer import ConfigError
from parbench.reference.config_model import Config, Location, Parallelize, Parser
from parbench.reference.config_semantics import WarnFn, build
from parbench.reference.profiles import DEFAULT_PROFILE, Profile, get_profile

__all__ = ["ConfigError", "describe", "load_config", "parse_config"]


def _stderr_warn(text: str) -> None:
    print(text, file=sys.stderr)


def parse_config(
    text: str,
    file: str = "<string>",
    profile: Profile | None = None,
    warn: WarnFn | None = None,
) -> Config:
    """Parse syslog-ng configuration text; raise ConfigError on anything unsupported."""
    prof = profile if profile is not None else get_profile(DEFAULT_PROFILE)
    return build(text, file, prof, warn or _stderr_warn)


def load_config(
    path: str | os.PathLike,
    profile: Profile | None = None,
    warn: WarnFn | None = None,
) -> Config:
    """Read and parse a configuration file; a missing or unreadable file is a ConfigError (at 0:0)."""
    file = os.fspath(path)
    try:
        with open(file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(
            Location(file, 0, 0),
            f"cannot read the configuration file ({exc.strerror or exc}); expected a readable syslog-ng configuration file",
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(
            Location(file, line, col), f"invalid UTF-8 byte 0x{data[exc.start]:02x}; expected UTF-8 text"
        ) from None
    return parse_config(text, file, profile, warn)


def describe(cfg: Config) -> list[str]:
    """A one-line summary per log path, as ``parbench config-check`` prints it."""
    lines = [f"{cfg.file}: @version {cfg.version or '(none)'}, {len(cfg.log_paths)} log path(s)"]
    for index, path in enumerate(cfg.log_paths):
        srcs = ", ".join(
            f"{s.name or '(inline)'}={d.kind}({d.ip}:{d.port}{' rfc5424' if d.syslog_protocol else ''})"
            for s in path.sources for d in s.drivers
        )
        steps = []
        for element in path.pipeline:
            if isinstance(element, Parallelize):
                if not element.partitions:
                    steps.append("parallelize(bypass)")
                else:
                    key = f" key={element.partition_key}" if element.partition_key is not None else " round-robin"
                    steps.append(f"parallelize({element.partitions}{key})")
            elif isinstance(element, Parser):
                steps.append(f"parser {element.name or '(inline)'}")
            else:
                outs = ", ".join(d.path or f"{d.host}:{d.port}" for d in element.drivers)
                steps.append(f"destination {element.name or '(inline)'}({outs})")
        flow = " flow-control" if path.flow_control else ""
        lines.append(f"  log[{index}]{flow}: {srcs} -> " + " -> ".join(steps))
    return lines
