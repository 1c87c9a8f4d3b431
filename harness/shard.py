"""A shard of a scenario's connections: ``I/N`` owns connections I, I+N, I+2N, ...

N senders on N hosts, shards 0/N .. N-1/N, together send exactly the
scenario's traffic, each connection from one sender, so per-connection order
is still checkable in the merged captures.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from parbench.errors import UsageError

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def connections(self, n_connections: int) -> range:
        return range(self.index, n_connections, self.count)

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def parse_shard(text: str, option: str = "--shard") -> Shard:
    """``I/N`` with 0 <= I < N; UsageError (one line) otherwise."""
    m = _SHARD_RE.match(text or "")
    if not m:
        raise UsageError(f"{option}: expected I/N (this sender's index I of N senders, e.g. 0/3), got {text!r}")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or index >= count:
        raise UsageError(f"{option}: expected 0 <= I < N in I/N, got {text!r}")
    return Shard(index, count)
