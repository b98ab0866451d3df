"""The ``policy:`` section of the dispatcher's config, checked and frozen.

```yaml
policy:
  defaults:                      # every channel, unless overridden below
    max_attempts: 5              # transient failures before the command is failed (DLQ)
    backoff_seconds: 0.5         # exponential back-off base, full jitter
    backoff_cap_seconds: 30
    deadline_seconds: 86400      # from the first attempt or deferral: then failed
    timeout_seconds: 60          # bound on one channel call (drivers time out sooner)
    breaker: {failures: 5, cooldown_seconds: 30}
    rate_per_second: 0           # 0 = unlimited; token bucket with `burst`
    burst: 10
    concurrency: 8               # calls in flight per channel
  channels:
    sms: {rate_per_second: 10, concurrency: 4}
  frequency_caps:                # customer audience, per customer and channel
    email: {max: 3, per_seconds: 86400}
  quiet_hours:                   # customer SMS and email are deferred, never dropped
    start: "21:00"
    end: "08:00"
    default_timezone: Europe/Berlin
    channels: [sms, email]
```

Defaults for attempts and back-off come from ``DISPATCHER_*`` variables (their one
default is in :mod:`signalbox.common.settings`), so a deployment without a config
file behaves as before. Quiet hours and caps are off unless configured. The section
is read with :class:`~signalbox.common.fields.Fields`: every error is a
:class:`~signalbox.common.fields.ConfigError` naming the key path under ``policy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signalbox.common.fields import Fields
from signalbox.common.settings import DispatcherSettings


@dataclass(frozen=True)
class ChannelPolicy:
    """How one channel retries and is protected; attempts and back-off default to the
    ``DISPATCHER_*`` settings' defaults (the one place they are defined)."""

    max_attempts: int = DispatcherSettings.max_attempts
    backoff_seconds: float = DispatcherSettings.backoff_s
    backoff_cap_seconds: float = DispatcherSettings.backoff_cap_s
    deadline_seconds: float = 86_400.0
    timeout_seconds: float = 60.0
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 30.0
    rate_per_second: float = 0.0
    burst: int = 10
    concurrency: int = 8


@dataclass(frozen=True)
class FrequencyCap:
    max: int
    per_seconds: float

    @property
    def per_ms(self) -> int:
        return int(self.per_seconds * 1000)


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    default_timezone: str = "UTC"
    channels: frozenset[str] = frozenset({"sms", "email"})


@dataclass(frozen=True)
class PolicyConfig:
    defaults: ChannelPolicy = ChannelPolicy()
    channels: Mapping[str, ChannelPolicy] = field(default_factory=dict)
    frequency_caps: Mapping[str, FrequencyCap] = field(default_factory=dict)
    quiet_hours: QuietHours | None = None

    def channel(self, name: str) -> ChannelPolicy:
        return self.channels.get(name, self.defaults)

    def longest_wait_s(self) -> float:
        """An upper bound of any wait the dispatcher sets: a retry record due later than
        this from now was not written by it (two days cover quiet hours, DST and skew)."""
        waits = [2 * 86_400.0]
        for c in (self.defaults, *self.channels.values()):
            waits += [c.backoff_cap_seconds, 2 * c.backoff_seconds,
                      1.5 * c.breaker_cooldown_seconds]
        return max(waits)


_NUMBERS = {f.name: f.type for f in fields(ChannelPolicy)}
_AT_LEAST_ONE = ("max_attempts", "concurrency", "burst")
_BREAKER = {"failures": "breaker_failures", "cooldown_seconds": "breaker_cooldown_seconds"}


def _channel(f: Fields, base: ChannelPolicy) -> ChannelPolicy:
    f.only(*_NUMBERS, "breaker")
    breaker = f.child("breaker")
    breaker.only(*_BREAKER)
    changes: dict[str, Any] = {}
    for reader, key, name in [*((f, k, k) for k in _NUMBERS),
                               *((breaker, k, n) for k, n in _BREAKER.items())]:
        if key in reader.data:
            minimum = 1 if name in _AT_LEAST_ONE else 0
            changes[name] = reader.integer(key, 0, minimum) if _NUMBERS[name] == "int" \
                else reader.number(key, 0.0, minimum)
    return replace(base, **changes)


def _clock_time(f: Fields, key: str) -> time:
    value = f.text(key)
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise f.error(key, f"expected HH:MM, got {value!r}") from None


def _quiet_hours(f: Fields) -> QuietHours:
    f.only("start", "end", "default_timezone", "channels")
    f.require("start", "end")
    zone = f.text("default_timezone", QuietHours.default_timezone)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise f.error("default_timezone", f"unknown time zone {zone!r}") from None
    channels = f.names("channels", "channel names", tuple(sorted(QuietHours.channels)))
    return QuietHours(_clock_time(f, "start"), _clock_time(f, "end"), zone, frozenset(channels))


def policy_from_mapping(raw: Mapping[str, Any] | None, settings: DispatcherSettings,
                        source: str = "") -> PolicyConfig:
    """The checked policy; every problem names its path under ``policy`` (and ``source``,
    the file it came from, when given)."""
    root = Fields(raw, "policy", source)
    root.only("defaults", "channels", "frequency_caps", "quiet_hours")
    base = ChannelPolicy(max_attempts=settings.max_attempts, backoff_seconds=settings.backoff_s,
                         backoff_cap_seconds=settings.backoff_cap_s)
    defaults = _channel(root.child("defaults"), base)
    channels = {name: _channel(c, defaults) for name, c in root.child("channels").items()}
    caps: dict[str, FrequencyCap] = {}
    for name, cap in root.child("frequency_caps").items():
        cap.only("max", "per_seconds")
        cap.require("max", "per_seconds")
        caps[name] = FrequencyCap(cap.integer("max", 0, 1), cap.number("per_seconds", 0.0, 1))
    quiet = root.data.get("quiet_hours")
    return PolicyConfig(
        defaults=defaults, channels=channels, frequency_caps=caps,
        quiet_hours=None if quiet is None else _quiet_hours(root.child("quiet_hours")))
