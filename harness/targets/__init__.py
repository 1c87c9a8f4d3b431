"""Implementations under test, all behind ``harness.targets.base.Target``.

``get_target(spec)`` maps a command-line ``--impl`` value to a target:

* ``reference``: the reference parallelizer (``parbench serve``);
* ``command:ARGV``: any program, ``{in_port}`` / ``{out_port}`` placeholders;
* ``syslog-ng`` / ``syslog-ng:PATH``: a real syslog-ng (``harness/targets/syslog_ng.py``, imported
  only when asked for, so the harness works where it is absent).
"""
from __future__ import annotations

import importlib

from parbench.harness.targets.base import Target, TargetError, TargetPlan, TargetReport

__all__ = ["Target", "TargetError", "TargetPlan", "TargetReport", "get_target", "KNOWN_TARGETS"]

KNOWN_TARGETS = ("reference", "syslog-ng", "command:ARGV")


def get_target(spec: str, *, profile: str | None = None) -> Target:
    """A fresh target for one run. TargetError (one line) for an unknown spec."""
    spec = spec.strip()
    if spec == "reference":
        from parbench.harness.targets.reference import ReferenceTarget

        return ReferenceTarget(profile=profile)
    if spec.startswith("command:"):
        from parbench.harness.targets.command import CommandTarget

        return CommandTarget(spec[len("command:"):].strip(), name=spec)
    if spec == "syslog-ng" or spec.startswith("syslog-ng:"):
        try:
            module = importlib.import_module("parbench.harness.targets.syslog_ng")
        except ModuleNotFoundError as exc:
            if exc.name != "parbench.harness.targets.syslog_ng":
                raise
            raise TargetError("the syslog-ng target is not available in this checkout (harness/targets/syslog_ng.py)") from None
        factory = getattr(module, "make_target", None) or getattr(module, "SyslogNgTarget")
        # syslog-ng:PATH = a binary or install prefix to use.
        where = spec.split(":", 1)[1] if ":" in spec else None
        return factory(where) if where else factory()
    raise TargetError(
        f"unknown implementation {spec!r}; expected one of: reference, syslog-ng, "
        "command:ARGV (with {in_port} and {out_port})"
    )
