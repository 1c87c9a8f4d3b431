"""AxoSyslog's log2 histogram, so the reference's batch sizes read like the
real ``parallelized_batch_size`` / ``parallelized_input_batch_size``.

AxoSyslog registers both with 14 buckets from 2^0 (``lib/logscheduler.c``,
``stats_register_aggregator_hist(..., round_to_log2(1), 14, ...)``): a value
``v`` counts in bucket ``ceil(log2 v)`` (``round_to_log2()`` in
``lib/compat/pow2.h``; 0 and 1 in the first), the last bucket takes
everything above 4096 (``lib/stats/aggregator/stats-histogram.c``).  The
bucket labels are the upper bounds ``1, 2, 4, ..., 4096, +Inf``, and each
bucket counts only its own values: unlike Prometheus' convention, the counts
are not cumulative.
"""
from __future__ import annotations

#: AxoSyslog's bucket count for the parallelize() histograms
BUCKETS = 14
#: bucket labels, as ``le="..."`` in ``syslog-ng-ctl stats prometheus``
BUCKET_LABELS = tuple(str(1 << i) for i in range(BUCKETS - 1)) + ("+Inf",)


def bucket_of(value: int) -> int:
    """The bucket index of ``value`` (``round_to_log2``, clamped to the last bucket)."""
    return min(max(int(value) - 1, 0).bit_length(), BUCKETS - 1)


class Log2Histogram:
    """Sum, count and per-bucket counts of integer observations (not thread-safe:
    the caller holds its lock)."""

    __slots__ = ("sum", "count", "buckets")

    def __init__(self) -> None:
        self.sum = 0
        self.count = 0
        self.buckets = [0] * BUCKETS

    def add(self, value: int) -> None:
        self.sum += value
        self.count += 1
        self.buckets[bucket_of(value)] += 1

    def to_dict(self) -> dict:
        """``{"sum": S, "count": C, "buckets": {"1": n, "2": n, ..., "+Inf": n}}``"""
        return {"sum": self.sum, "count": self.count, "buckets": dict(zip(BUCKET_LABELS, self.buckets))}
