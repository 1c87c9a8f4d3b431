"""The parbench reference parallelizer.

A small, faithful model of syslog-ng / AxoSyslog ``parallelize()``.  It runs
in-process (``reference.engine``) and as a TCP service (``reference.service``)
configured by a syslog-ng configuration file (``reference.config``).

This package never imports ``harness``: the harness drives it like any other
implementation, from the outside.
"""
