"""Which ticks are due. Pure: the clock reading is an argument.

Tick times are aligned to the interval (``at`` is a multiple of it), so two
scheduler replicas, or a restarted one, emit the same ticks with the same ids;
the evaluator treats a tick it has seen as a no-op. After an outage only the
latest due tick is emitted: a tick means "time has reached ``at``", so it
catches up everything that fell due in the gap.
"""

from __future__ import annotations

from typing import Any


def aligned(now_ms: int, interval_ms: int) -> int:
    """The latest tick time at or before ``now_ms``."""
    return now_ms - now_ms % interval_ms


def next_due(after_ms: int, interval_ms: int) -> int:
    """The first tick time strictly after ``after_ms``."""
    return aligned(after_ms, interval_ms) + interval_ms


def tick_records(
    at: int, partitions: int, interval_ms: int, emitted_by: str
) -> list[dict[str, Any]]:
    """One ``signalbox.Tick`` record per partition, in partition order."""
    return [
        {"tick_id": f"{p}:{at}", "partition": p, "at": at, "interval_ms": interval_ms,
         "emitted_by": emitted_by}
        for p in range(partitions)
    ]
