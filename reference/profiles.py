"""Version profiles: what each real implementation does differently.

Each difference between versions is a field here, never a version test in
the code (docs/semantics.md, "Versions", has the table of which version does
what, and where upstream).  Each profile names the real versions it models
(``models``) and those it was checked against by running them
(``checked_against``; docs/axosyslog.md has the measured tables).  A profile
is chosen on the command line (``--profile``) and defaults to the newest
AxoSyslog.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # The real versions this profile models, and those it was checked
    # against (the same per-partition counts, batch sizes, options, limit).
    models: str
    checked_against: tuple[str, ...]
    # Largest partitions()/workers() value the implementation runs; a larger
    # one is clamped with a warning, or rejected when clamp_partitions is False.
    max_partitions: int
    clamp_partitions: bool
    # workers()/worker-partition-key() spellings accepted by parallelize().
    accepts_worker_aliases: bool
    # batch-size() and log-fetch-limit() accepted inside parallelize().
    accepts_batch_size: bool
    accepts_parallelize_fetch_limit: bool
    # Round-robin start: "zero" = every input thread starts at partition 0;
    # "thread_index" = input thread i starts at i % N.
    round_robin_start: str
    # batch-size() default when not given (0 = per-message round-robin).
    default_batch_size: int
    # Whether partition-key() together with batch-size() is allowed.
    key_with_batch_size: bool
    # Staging list handed over as soon as it reaches batch-size (4.26+).
    early_handover: bool
    # Messages a partition drain job processes before yielding; None = no
    # limit (drains the FIFO until empty).
    default_drain_limit: int | None
    # What the real implementation prints when it clamps partitions(N)
    # ({specified}, {used}); None: it clamps silently, and the reference
    # says so in its own words.
    clamp_warning: str | None = None
    # Message parsing (docs/semantics.md, "Message parsing"):
    # trailing carriage returns are removed from every message before
    # parsing (AxoSyslog), not only from the lines of a text transport.
    parser_strips_cr: bool = False
    # Spaces after "[" and before "]" of an SD element are tolerated.
    sd_space_tolerant: bool = False
    # A stamp is converted with one mktime() of the whole wall-clock time, so
    # minutes or seconds that carry into the next hour are corrected away
    # again (syslog-ng); AxoSyslog converts the top of the hour and adds the
    # minutes and seconds.
    mktime_whole_stamp: bool = True


SYSLOG_NG_4_8 = Profile(
    name="syslog-ng-4.8",
    models="syslog-ng 4.3 - 4.11 (4.11 also spells workers()), AxoSyslog up to 4.16",
    checked_against=("syslog-ng 4.8.1",),
    max_partitions=16,
    # syslog-ng 4.8.1 (Debian 13) was seen here accepting partitions(17),
    # (32) and (64) without an error or a warning and delivering everything,
    # so a config it runs must run on the reference too: clamp, don't reject.
    clamp_partitions=True,
    accepts_worker_aliases=False,
    accepts_batch_size=False,
    accepts_parallelize_fetch_limit=False,
    round_robin_start="zero",
    default_batch_size=0,
    key_with_batch_size=False,
    early_handover=False,
    default_drain_limit=None,
    clamp_warning=None,
)

AXOSYSLOG_4_26 = Profile(
    name="axosyslog-4.26",
    # 4.27.0 changed nothing in parallelize() (lib/logscheduler.c differs
    # only in address bookkeeping) and measured the same, so no profile of
    # its own.
    models="AxoSyslog 4.26 and later",
    checked_against=("axosyslog 4.26.0", "axosyslog 4.27.0"),
    max_partitions=32,
    clamp_partitions=True,
    accepts_worker_aliases=True,
    accepts_batch_size=True,
    accepts_parallelize_fetch_limit=True,
    round_robin_start="thread_index",
    default_batch_size=100,
    key_with_batch_size=True,
    early_handover=True,
    default_drain_limit=1000,
    clamp_warning=("parallelize() currently supports up to {used} workers, falling back to the maximum "
                   "supported; specified_workers='{specified}', used_workers='{used}'"),
    parser_strips_cr=True,
    sd_space_tolerant=True,
    mktime_whole_stamp=False,
)

def limit_partitions(profile: Profile, partitions: int) -> tuple[int, str | None]:
    """The partition count ``profile`` really runs for ``partitions(N)``, and
    a warning when it differs.  Raises ValueError when the profile rejects N."""
    if partitions < 0:
        raise ValueError(f"partitions({partitions}): expected 0 (bypass) or a positive count")
    if partitions <= profile.max_partitions:
        return partitions, None
    if not profile.clamp_partitions:
        raise ValueError(
            f"found {partitions} partitions; profile {profile.name} accepts at most {profile.max_partitions}"
        )
    if profile.clamp_warning is not None:
        return profile.max_partitions, profile.clamp_warning.format(specified=partitions, used=profile.max_partitions)
    return profile.max_partitions, (
        f"partitions {partitions} is more than profile {profile.name} allows; clamped to {profile.max_partitions}"
    )


PROFILES: dict[str, Profile] = {p.name: p for p in (SYSLOG_NG_4_8, AXOSYSLOG_4_26)}
DEFAULT_PROFILE = AXOSYSLOG_4_26.name


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}; known profiles: {', '.join(sorted(PROFILES))}"
        ) from None
