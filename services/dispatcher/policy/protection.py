"""Customer protection rules, pure: quiet hours and frequency caps.

Both apply to the customer audience only, and a critical command skips both
(opt-outs are checked elsewhere and never skipped).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signalbox.dispatcher.policy.rules import FrequencyCap, QuietHours


def zone(name: str | None, default: str) -> ZoneInfo:
    """The customer's zone; the configured default when unknown or unset."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
            pass
    return ZoneInfo(default)


def quiet_until(now_ms: int, timezone: str | None, quiet: QuietHours) -> int | None:
    """Epoch ms when the quiet window that holds ``now`` ends, or None outside it."""
    if quiet.start == quiet.end:
        return None
    tz = zone(timezone, quiet.default_timezone)
    local = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(tz)
    t = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside = quiet.start <= t < quiet.end
        end_day = local.date()
    else:  # wraps midnight, e.g. 21:00-08:00
        inside = t >= quiet.start or t < quiet.end
        end_day = local.date() + timedelta(days=1) if t >= quiet.start else local.date()
    if not inside:
        return None
    end = datetime.combine(end_day, quiet.end, tzinfo=tz)
    return int(end.astimezone(UTC).timestamp() * 1000)


def cap_reached(sent_at: Iterable[int], now_ms: int, cap: FrequencyCap) -> bool:
    """True when ``cap.max`` messages were already sent within the last ``cap.per_seconds``."""
    since = now_ms - cap.per_ms
    return sum(1 for t in sent_at if t > since) >= cap.max
