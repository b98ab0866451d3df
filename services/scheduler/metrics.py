"""Prometheus metrics of the scheduler."""

from prometheus_client import Counter, Gauge

TICKS_SENT = Counter("signalbox_scheduler_ticks_total", "Tick records written")
LAST_TICK = Gauge("signalbox_scheduler_last_tick_timestamp_seconds",
                  "Time carried by the last tick sent (Unix seconds)")
