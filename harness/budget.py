"""The memory a run of a scenario takes in the harness, against what this
machine can give, checked before anything starts.

What a run holds, per message the workload plans (``connections x
messages_per_connection``, or the cap of a duration-bound plan):

* the plan: the key index (2 or 4 bytes) and the sequence number within its
  key (4 bytes) of every message, and one framed row per key;
* while the plan is built, about ``PLAN_BUILD_BYTES_PER_MESSAGE`` of
  temporaries per message of one connection (random draws, sort orders);
* the sender: one chunk of framed rows per connection (at most
  ``workload.SEND_CHUNK_BYTES``);
* the collector and the checks: ``COLLECT_AND_CHECK_BYTES_PER_MESSAGE`` per
  message received (records of every line, and the checks' sort orders and
  masks: the peak of ``tests/benchmarks/test_bench_harness.py``,
  ``test_memory_per_tracked_message``), plus up to twice
  ``collector.Collector``'s compaction threshold of raw bytes per output
  stream.

The limit is ``$PARBENCH_MEMORY_LIMIT`` (bytes, or with a K/M/G suffix) when
set, else ``AVAILABLE_SHARE`` of this machine's MemAvailable (the rest is
for the implementation under test), lowered to what a cgroup memory limit
leaves.  A scenario above it is refused with exit 2 and the figures; with
no way to tell the limit, nothing is refused.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

from parbench.harness.collector import COMPACT_BYTES
from parbench.harness.scenario import ScenarioError
from parbench.harness.wire import frame_prefix, frame_suffix
from parbench.harness.workload import SEND_CHUNK_BYTES, planned_messages

#: measured peak of parse + check per message (test_bench_harness.py)
COLLECT_AND_CHECK_BYTES_PER_MESSAGE = 72
#: temporaries of building one connection's key sequence, per message (measured: 34-64)
PLAN_BUILD_BYTES_PER_MESSAGE = 64
#: share of MemAvailable the harness may plan to use
AVAILABLE_SHARE = 0.8
ENV_LIMIT = "PARBENCH_MEMORY_LIMIT"

_SIZE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)(i?[bB])?\s*")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class MemoryPlan:
    messages: int  # messages the plan holds
    plan_bytes: int  # kept for the whole run
    build_bytes: int  # temporaries while the plan is built
    sender_bytes: int
    collect_bytes: int  # collector + checks

    @property
    def peak_bytes(self) -> int:
        return self.plan_bytes + max(self.build_bytes, self.sender_bytes + self.collect_bytes)


def planned_memory(workload: Any, *, collect: bool = True) -> MemoryPlan:
    """What a run of ``workload`` takes; ``collect=False``: sending only
    (``parbench send``: no collector, no checks)."""
    per_connection = planned_messages(workload)
    messages = int(workload.connections) * per_connection
    n_keys = len(workload.keys)
    key_bytes = 2 if n_keys <= 0xFFFF else 4
    framed = (len(frame_prefix(workload.framing, workload.message_size)) + workload.message_size
              + len(frame_suffix(workload.framing)))
    chunk_rows = min(per_connection, max(1, SEND_CHUNK_BYTES // framed))
    return MemoryPlan(
        messages=messages,
        plan_bytes=messages * (key_bytes + 4) + n_keys * framed,
        build_bytes=per_connection * PLAN_BUILD_BYTES_PER_MESSAGE,
        sender_bytes=int(workload.connections) * chunk_rows * framed,
        collect_bytes=messages * COLLECT_AND_CHECK_BYTES_PER_MESSAGE + 2 * COMPACT_BYTES if collect else 0,
    )


def parse_size(text: str) -> int | None:
    """``"2G"``, ``"512M"``, ``"1.5GiB"``, ``"1000000"`` -> bytes (binary units)."""
    match = _SIZE_RE.fullmatch(text)
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), if limited."""
    try:
        with open("/proc/self/cgroup") as fh:
            path = next((line.strip().split(":", 2)[2] for line in fh if line.startswith("0::")), None)
        if path is None:
            return None
        base = f"/sys/fs/cgroup{path}"
        with open(f"{base}/memory.max") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open(f"{base}/memory.current") as fh:
            return max(0, int(limit) - int(fh.read().strip()))
    except (OSError, ValueError):
        return None


def memory_limit() -> tuple[int | None, str]:
    """(bytes the harness may plan to use, where that figure comes from);
    (None, why) when there is no way to tell.  ValueError for a malformed
    ``$PARBENCH_MEMORY_LIMIT``."""
    given = os.environ.get(ENV_LIMIT)
    if given:
        size = parse_size(given)
        if size is None:
            raise ValueError(f"${ENV_LIMIT}: expected a size such as 4G or 512M, got {given!r}")
        return size, f"${ENV_LIMIT}"
    available = _mem_available()
    room = _cgroup_room()
    if available is None and room is None:
        return None, "no MemAvailable in /proc/meminfo"
    candidates = [(int(available * AVAILABLE_SHARE), f"{AVAILABLE_SHARE:.0%} of MemAvailable")] if available else []
    if room is not None:
        candidates.append((int(room * AVAILABLE_SHARE), f"{AVAILABLE_SHARE:.0%} of the cgroup's memory.max"))
    return min(candidates)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_fits(scenario: Any, *, collect: bool = True) -> MemoryPlan:
    """The scenario's memory plan; ScenarioError (exit 2, with the figures)
    when it would not fit under ``memory_limit()``."""
    plan = planned_memory(scenario.workload, collect=collect)
    try:
        limit, source = memory_limit()
    except ValueError as exc:
        raise ScenarioError(scenario.path, None, str(exc)) from None
    if limit is None or plan.peak_bytes <= limit:
        return plan
    wl = scenario.workload
    key = "workload.messages_per_connection" if wl.messages_per_connection is not None else "workload.duration_s"
    per_message = plan.peak_bytes / max(1, plan.messages)
    fits = max(0, math.floor(limit / per_message)) if per_message else 0
    raise ScenarioError(
        scenario.path, key,
        f"expected a workload whose run fits in memory: {plan.messages:,} messages "
        f"({wl.connections:,} connections x {planned_messages(wl):,}) need about {human(plan.peak_bytes)} in "
        f"the harness ({'plan, sender, collector and checks' if collect else 'plan and sender'}, about "
        f"{per_message:.0f} bytes a message), more "
        f"than the {human(limit)} it may use ({source}); about {fits:,} messages would fit")
