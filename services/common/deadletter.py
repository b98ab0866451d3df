"""Dead-letter records: the reason and the original bytes, so nothing is lost."""

from __future__ import annotations

from typing import Any

from signalbox.common.clock import now_ms


def dead_letter(
    *,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error_type: str,
    reason: str,
    failed_at: int | None = None,
) -> dict[str, Any]:
    """A ``signalbox.DeadLetter`` record for a message that could not be processed."""
    return {
        "service": service,
        "source_topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "value": value,
        "error_type": error_type,
        "reason": reason,
        "failed_at": now_ms() if failed_at is None else failed_at,
    }
