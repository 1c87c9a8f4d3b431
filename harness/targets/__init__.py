"""Implementations under test, all behind one interface.

* ``base``: the ``Target`` interface (start, stop, version, reference
  profile) and its errors;
* ``kind``: what a kind of implementation declares (``TargetKind``) and the
  ``--impl [NAME=]KIND[:ARG]`` spec (``ImplSpec``);
* ``registry``: the one table of kinds, and every reading of a spec;
* ``process``: running, watching and stopping a program;
* ``reference``, ``command``: the built-in kinds ``reference`` and
  ``command:ARGV``; ``syslog-ng[:PATH]`` lives in ``harness.syslog_ng``.
"""
