"""parbench: test and measure syslog-ng / AxoSyslog parallelize()."""

__version__ = "0.1.0"
