"""The syslog-ng family: real syslog-ng and AxoSyslog binaries as
implementations under test.

The shared concept is ``installation.Installation``: a syslog-ng-like binary
of some version at some place, with its tools.  Around it:

* ``version``: the one version parser, and what a version means (config
  ``@version``, parallelize() and its AxoSyslog options, per-partition
  counters, the reference profile that models it);
* ``installation``: find one (explicit path or prefix, ``$PARBENCH_SYSLOG_NG``,
  the private root in the data home, ``$PATH``);
* ``debian``: ``parbench install syslog-ng``, a private root from Debian's
  packages;
* ``target``: run one under a scenario (``--impl syslog-ng[:PATH]``);
* ``stats``: what ``syslog-ng-ctl`` reports; ``loggen``: its load generator.

The config text itself comes from ``harness.render``, shared with the
reference, which reads the same language.
"""
