"""The pure delivery-policy rules: config, back-off, breakers, limits, quiet hours, caps."""

from __future__ import annotations

import random
import re
from datetime import datetime, time

import pytest
from aiokafka import TopicPartition

from signalbox.common.fields import ConfigError
from signalbox.common.settings import DispatcherSettings, Settings
from signalbox.dispatcher.commit import OffsetTracker
from signalbox.dispatcher.policy.backoff import backoff_seconds
from signalbox.dispatcher.policy.breaker import Breakers
from signalbox.dispatcher.policy.protection import cap_reached, quiet_until
from signalbox.dispatcher.policy.rate_limits import TokenBucket
from signalbox.dispatcher.policy.retry import (
    DeliveryState,
    ripe_at,
    state_from_headers,
    tier_for,
)
from signalbox.dispatcher.policy.rules import (
    ChannelPolicy,
    FrequencyCap,
    QuietHours,
    policy_from_mapping,
)
from signalbox.testing import ManualClock

SETTINGS = DispatcherSettings(max_attempts=7, backoff_s=0.2)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_policy_defaults_come_from_settings_and_channels_override_them() -> None:
    policy = policy_from_mapping({
        "defaults": {"timeout_seconds": 20, "breaker": {"failures": 3}},
        "channels": {"sms": {"max_attempts": 2, "rate_per_second": 5, "concurrency": 2}},
        "frequency_caps": {"email": {"max": 3, "per_seconds": 86400}},
        "quiet_hours": {"start": "21:00", "end": "08:00", "default_timezone": "Europe/Berlin"},
    }, SETTINGS)
    email, sms = policy.channel("email"), policy.channel("sms")
    assert (email.max_attempts, email.backoff_seconds, email.timeout_seconds) == (7, 0.2, 20)
    assert (sms.max_attempts, sms.rate_per_second, sms.concurrency, sms.timeout_seconds,
            sms.breaker_failures) == (2, 5, 2, 20, 3)
    assert policy.frequency_caps["email"] == FrequencyCap(3, 86400)
    assert policy.quiet_hours == QuietHours(time(21), time(8), "Europe/Berlin",
                                            frozenset({"sms", "email"}))
    assert policy_from_mapping(None, SETTINGS).quiet_hours is None


@pytest.mark.parametrize(("raw", "message"), [
    ({"channels": {"sms": {"max_attempts": 0}}},
     "policy.channels.sms.max_attempts: must be at least 1"),
    ({"channels": {"sms": {"retries": 3}}}, "policy.channels.sms.retries: unknown key"),
    ({"defaults": {"timeout_seconds": "soon"}},
     "policy.defaults.timeout_seconds: expected a number"),
    ({"frequency_caps": {"email": {"max": 3}}},
     "policy.frequency_caps.email.per_seconds: required"),
    ({"quiet_hours": {"start": "25:00", "end": "08:00"}},
     "policy.quiet_hours.start: expected HH:MM"),
    ({"quiet_hours": {"start": "21:00", "end": "08:00", "default_timezone": "Mars/Base"}},
     "policy.quiet_hours.default_timezone: unknown time zone"),
    ({"retry": {}}, "policy.retry: unknown key"),
])
def test_policy_errors_name_the_path(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        policy_from_mapping(raw, SETTINGS)


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = ChannelPolicy(backoff_seconds=1, backoff_cap_seconds=10)
    rng = random.Random(4)
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)):
        delays = [backoff_seconds(policy, attempt, rng) for _ in range(300)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8  # spread over the whole range, not fixed


def test_breaker_opens_after_consecutive_failures_then_allows_one_trial() -> None:
    clock = ManualClock(0)
    b = Breakers(clock)
    assert not b.failed("smtp:25", 3, 30) and not b.failed("smtp:25", 3, 30)
    assert b.wait_seconds("smtp:25", 3, 30) == 0  # two failures: still closed
    assert b.failed("smtp:25", 3, 30)  # the third opens it
    assert b.wait_seconds("smtp:25", 3, 30) == pytest.approx(30)
    assert b.wait_seconds("other:25", 3, 30) == 0  # per endpoint
    clock.advance(30)
    assert b.wait_seconds("smtp:25", 3, 30) == 0  # half-open: this caller is the trial
    assert b.wait_seconds("smtp:25", 3, 30) > 0  # everyone else waits for it
    b.failed("smtp:25", 3, 30)  # the trial failed: open again
    assert b.wait_seconds("smtp:25", 3, 30) == pytest.approx(30)
    clock.advance(31)
    assert b.wait_seconds("smtp:25", 3, 30) == 0
    b.succeeded("smtp:25")
    assert b.wait_seconds("smtp:25", 3, 30) == 0 and b.wait_seconds("smtp:25", 3, 30) == 0


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = ManualClock(0)
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    assert bucket.take() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.take() == 0
    assert TokenBucket(rate=0, burst=1, clock=clock).take() == 0  # unlimited


QUIET = QuietHours(time(21), time(8), "Europe/Berlin")


def test_quiet_hours_end_in_the_customers_zone() -> None:
    # 22:30 in New York is inside 21:00-08:00; the window ends 08:00 New York time.
    now = ms("2026-11-23T03:30:00+00:00")
    assert quiet_until(now, "America/New_York", QUIET) == ms("2026-11-23T08:00:00-05:00")
    # The same instant is 04:30 in Berlin (the default zone): ends 08:00 Berlin.
    assert quiet_until(now, None, QUIET) == ms("2026-11-23T08:00:00+01:00")
    assert quiet_until(now, "Not/AZone", QUIET) == ms("2026-11-23T08:00:00+01:00")
    # Midday in Berlin: not quiet.
    assert quiet_until(ms("2026-11-23T11:00:00+00:00"), None, QUIET) is None
    # A window that does not wrap midnight.
    lunch = QuietHours(time(12), time(14), "UTC")
    assert quiet_until(ms("2026-11-23T13:00:00+00:00"), None, lunch) == \
        ms("2026-11-23T14:00:00+00:00")
    assert quiet_until(ms("2026-11-23T14:00:00+00:00"), None, lunch) is None


def test_quiet_hours_across_a_daylight_saving_change() -> None:
    # Berlin leaves summer time on 2026-10-25 at 03:00; 08:00 that morning is UTC+1.
    now = ms("2026-10-24T22:00:00+00:00")  # 00:00 local, summer time
    assert quiet_until(now, None, QUIET) == ms("2026-10-25T08:00:00+01:00")


def test_frequency_cap_counts_the_window_only() -> None:
    cap = FrequencyCap(max=2, per_seconds=3600)
    now = ms("2026-11-23T12:00:00+00:00")
    hour_ago = now - 3_600_000
    assert not cap_reached([hour_ago, now - 10], now, cap)  # one is outside the window
    assert cap_reached([now - 20, now - 10], now, cap)
    assert not cap_reached([], now, cap)


def test_delivery_state_travels_in_headers_and_tiers_cover_the_wait() -> None:
    state = DeliveryState(attempts=2, first_attempt_ms=5, due_ms=99, reason="SMTP 451 ✓",
                          replay="dlq:1:7")
    assert state_from_headers(state.headers()) == state
    assert state_from_headers(None) == DeliveryState()
    assert [tier_for(w) for w in (0, 0.5, 1, 5, 30, 300, 3000, 40_000)] == \
        [0, 0, 0, 0, 1, 2, 3, 4]
    # Held for its tier's delay, or less when due sooner (shortest tier only).
    assert ripe_at(due_ms=50_000, written_ms=0, tier=4) == 50_000
    assert ripe_at(due_ms=9_000_000, written_ms=0, tier=4) == 3_600_000


def test_offsets_never_pass_a_command_in_flight() -> None:
    tp = TopicPartition("commands", 0)
    offsets = OffsetTracker()
    for offset in (10, 11, 12):
        offsets.start(tp, offset)
    offsets.done(tp, 12)
    offsets.done(tp, 11)
    assert offsets.position(tp) == 10  # 10 still running: 11 and 12 are re-read after a crash
    offsets.done(tp, 10)
    assert offsets.position(tp) == 13



def test_a_channel_policy_defaults_to_what_an_unconfigured_dispatcher_does() -> None:
    """One default each: the back-off cap is DISPATCHER_BACKOFF_CAP_SECONDS' 30 s, whether
    the policy is built from settings or constructed directly."""
    assert ChannelPolicy() == policy_from_mapping(None, Settings.from_env({}).dispatcher).defaults
    assert ChannelPolicy().backoff_cap_seconds == 30.0
