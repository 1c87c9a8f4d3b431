"""The one parser of syslog-ng / AxoSyslog versions.

The harness meets a version in four spellings: ``syslog-ng --version``
output, a detected version as parbench writes it ("syslog-ng 4.8.1",
"axosyslog 4.26.0"), a reference profile name ("syslog-ng-4.8",
"axosyslog-4.26") and a bare number ("4.8.1").  ``Version.parse`` reads the
last three, ``Version.from_version_output`` the first; what a version means
(its ``@version`` line, whether it has parallelize() and AxoSyslog's
parallelize() options, which reference profile models it) is a property of
``Version``, so the differences between versions are data in one place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SYSLOG_NG = "syslog-ng"
AXOSYSLOG = "axosyslog"
#: parallelize() exists from syslog-ng 4.3 on
PARALLELIZE_SINCE = (4, 3)
#: the syslog-ng line ends at 4.11 (so far); higher numbers are AxoSyslog's only
LAST_SYSLOG_NG = (4, 11)
#: reference profile per product
REFERENCE_PROFILES = {SYSLOG_NG: "syslog-ng-4.8", AXOSYSLOG: "axosyslog-4.26"}

_NUMBERS = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?:\.(\d+))?")
_AXOSYSLOG = re.compile(r"axosyslog|axoflow", re.I)
# "--version" output: first line "<name> <major> (<full version>)"; older or
# patched builds have at least "Installer-Version: X.Y.Z".
_VERSION_LINE = re.compile(r"^(?P<name>[A-Za-z][\w-]*)\s+\d+\s+\((?P<version>\d+\.\d+(?:\.\d+)?)[^)]*\)", re.M)
_INSTALLER_LINE = re.compile(r"^Installer-Version:\s*(?P<version>\d+\.\d+(?:\.\d+)?)", re.M)


@dataclass(frozen=True)
class Version:
    product: str  # SYSLOG_NG or AXOSYSLOG
    numbers: tuple[int, ...]  # (major, minor) or (major, minor, patch)

    @classmethod
    def parse(cls, text: str) -> "Version":
        """"syslog-ng 4.8.1", "axosyslog 4.26.0", "syslog-ng-4.8", "4.8.1" ->
        Version.  A bare number is syslog-ng up to 4.11 and AxoSyslog above.
        ValueError when there is no "major.minor" in ``text``."""
        match = _NUMBERS.search(str(text))
        if match is None:
            raise ValueError(f"no major.minor version number in {text!r}")
        numbers = tuple(int(g) for g in match.groups() if g is not None)
        if _AXOSYSLOG.search(str(text)):
            product = AXOSYSLOG
        elif SYSLOG_NG in str(text).lower():
            product = SYSLOG_NG
        else:
            product = AXOSYSLOG if numbers[:2] > LAST_SYSLOG_NG else SYSLOG_NG
        return cls(product, numbers)

    @classmethod
    def from_version_output(cls, text: str) -> "Version":
        """What ``syslog-ng --version`` printed -> Version.  AxoSyslog builds
        say axosyslog on the first line or mention it (axoflow) elsewhere."""
        match = _VERSION_LINE.search(text) or _INSTALLER_LINE.search(text)
        if match is None:
            raise ValueError(f"no version found in --version output: {text.strip()[:120]!r}")
        numbers = tuple(int(n) for n in match.group("version").split("."))
        return cls(AXOSYSLOG if _AXOSYSLOG.search(text) else SYSLOG_NG, numbers)

    def __str__(self) -> str:
        return f"{self.product} {'.'.join(map(str, self.numbers))}"

    @property
    def major_minor(self) -> tuple[int, int]:
        return self.numbers[0], self.numbers[1]

    @property
    def is_axosyslog(self) -> bool:
        return self.product == AXOSYSLOG

    @property
    def has_parallelize(self) -> bool:
        return self.major_minor >= PARALLELIZE_SINCE

    @property
    def has_parallelize_tuning(self) -> bool:
        """batch-size() / log-fetch-limit() inside parallelize(): AxoSyslog
        options (4.17+ / 4.22+), absent from the syslog-ng line."""
        return self.is_axosyslog

    @property
    def has_partition_counters(self) -> bool:
        """Per-partition ``parallelized_*`` metrics (at stats level 4):
        AxoSyslog's; syslog-ng 4.8 exposes none."""
        return self.is_axosyslog

    @property
    def reference_profile(self) -> str:
        """The reference's version profile that models this version;
        ValueError for a version without parallelize()."""
        if not self.has_parallelize:
            raise ValueError(f"{self}: parallelize() needs syslog-ng >= {'.'.join(map(str, PARALLELIZE_SINCE))}")
        return REFERENCE_PROFILES[self.product]


def parse_version_output(text: str) -> str:
    """``syslog-ng --version`` output -> "syslog-ng 4.8.1" / "axosyslog 4.26.0"."""
    return str(Version.from_version_output(text))


def reference_profile_for(version: str) -> str:
    """The reference's version profile that models a detected implementation
    (syslog-ng 4.3-4.11 -> "syslog-ng-4.8", any AxoSyslog -> "axosyslog-4.26")."""
    return Version.parse(version).reference_profile
