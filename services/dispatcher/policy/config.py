"""The ``policy:`` section of the dispatcher's config, checked and frozen.

```yaml
policy:
  defaults:                      # every channel, unless overridden below
    max_attempts: 5              # transient failures before the command is failed (DLQ)
    backoff_seconds: 0.5         # exponential back-off base, full jitter
    backoff_cap_seconds: 300
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

Defaults for attempts and back-off come from ``DISPATCHER_*`` variables, so a
deployment without a config file behaves as before. Quiet hours and caps are off
unless configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signalbox.common.errors import SignalboxError
from signalbox.common.settings import Settings


class PolicyError(SignalboxError, ValueError):
    """The ``policy:`` section has a value the dispatcher cannot use (path and reason)."""

    what = "policy setting"


@dataclass(frozen=True)
class ChannelPolicy:
    max_attempts: int = 5
    backoff_seconds: float = 0.5
    backoff_cap_seconds: float = 300.0
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


def _number(path: str, value: Any, integer: bool, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            (integer and not isinstance(value, int)):
        raise PolicyError(f"{path}: expected {'an integer' if integer else 'a number'}, "
                          f"got {value!r}")
    if value < minimum:
        raise PolicyError(f"{path}: must be at least {minimum}, got {value}")
    return value


def _mapping(path: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path}: expected a mapping, got {type(value).__name__}")
    return value


def _channel(path: str, raw: Mapping[str, Any], base: ChannelPolicy) -> ChannelPolicy:
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "breaker":
            b = _mapping(f"{path}.breaker", value)
            for sub, name, integer in (("failures", "breaker_failures", True),
                                       ("cooldown_seconds", "breaker_cooldown_seconds", False)):
                if sub in b:
                    changes[name] = _number(f"{path}.breaker.{sub}", b[sub], integer, 0)
            unknown = set(b) - {"failures", "cooldown_seconds"}
            if unknown:
                raise PolicyError(f"{path}.breaker: unknown keys {sorted(unknown)}")
            continue
        if key not in _NUMBERS:
            raise PolicyError(f"{path}.{key}: unknown setting (known: "
                              f"{', '.join(sorted([*_NUMBERS, 'breaker']))})")
        integer = _NUMBERS[key] == "int"
        minimum = 1 if key in ("max_attempts", "concurrency", "burst") else 0
        changes[key] = _number(f"{path}.{key}", value, integer, minimum)
    return replace(base, **changes)


def _clock_time(path: str, value: Any) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise PolicyError(f"{path}: expected HH:MM, got {value!r}") from None


def _quiet_hours(path: str, raw: Mapping[str, Any]) -> QuietHours:
    unknown = set(raw) - {"start", "end", "default_timezone", "channels"}
    if unknown:
        raise PolicyError(f"{path}: unknown keys {sorted(unknown)}")
    for key in ("start", "end"):
        if key not in raw:
            raise PolicyError(f"{path}.{key}: required")
    zone = str(raw.get("default_timezone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"{path}.default_timezone: unknown time zone {zone!r}") from None
    channels = raw.get("channels", ["sms", "email"])
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise PolicyError(f"{path}.channels: expected a list of channel names")
    return QuietHours(_clock_time(f"{path}.start", raw["start"]),
                      _clock_time(f"{path}.end", raw["end"]), zone, frozenset(channels))


def policy_from_mapping(raw: Mapping[str, Any] | None, settings: Settings) -> PolicyConfig:
    """The checked policy; every problem names its path under ``policy``."""
    root = _mapping("policy", raw)
    unknown = set(root) - {"defaults", "channels", "frequency_caps", "quiet_hours"}
    if unknown:
        raise PolicyError(f"policy: unknown keys {sorted(unknown)}")
    base = ChannelPolicy(max_attempts=settings.dispatcher_max_attempts,
                         backoff_seconds=settings.dispatcher_backoff_s,
                         backoff_cap_seconds=settings.dispatcher_backoff_cap_s)
    defaults = _channel("policy.defaults", _mapping("policy.defaults", root.get("defaults")),
                        base)
    channels = {name: _channel(f"policy.channels.{name}", _mapping(
        f"policy.channels.{name}", value), defaults)
        for name, value in _mapping("policy.channels", root.get("channels")).items()}
    caps: dict[str, FrequencyCap] = {}
    for name, value in _mapping("policy.frequency_caps", root.get("frequency_caps")).items():
        path = f"policy.frequency_caps.{name}"
        cap = _mapping(path, value)
        if set(cap) != {"max", "per_seconds"}:
            raise PolicyError(f"{path}: expected exactly the keys max and per_seconds")
        caps[name] = FrequencyCap(int(_number(f"{path}.max", cap["max"], True, 1)),
                                  _number(f"{path}.per_seconds", cap["per_seconds"], False, 1))
    quiet = root.get("quiet_hours")
    return PolicyConfig(
        defaults=defaults, channels=channels, frequency_caps=caps,
        quiet_hours=None if quiet is None else _quiet_hours(
            "policy.quiet_hours", _mapping("policy.quiet_hours", quiet)))
