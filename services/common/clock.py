"""The wall clock, read only at the edges (ingest stamps, dispatcher outcomes, scheduler)."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
