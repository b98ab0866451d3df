"""An evaluator :class:`~signalbox.evaluator.processor.Output` with no broker behind it.

Every record is acknowledged at once, so what runs is the evaluator alone: the
processor's tests subclass it to keep what was written, and ``bench/processor.py``
uses it as is to time the evaluator's own work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from types import SimpleNamespace
from typing import Any

from signalbox.common.deadletter import Letter
from signalbox.evaluator.engine import ApprovalOutcome, ApprovalRequest


class AcknowledgedOutput:
    """Acknowledges each record as it is queued; ``records`` counts them, and each
    acknowledgement's ``offset`` is that count unless the caller gives one."""

    def __init__(self) -> None:
        self.records = 0

    def ack(self, offset: int | None = None) -> Awaitable[Any]:
        self.records += 1
        done = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(offset=self.records if offset is None else offset))
        return done

    async def command(self, key: bytes, value: bytes, partition: int,
                      headers: Sequence[tuple[str, bytes]] = ()) -> Awaitable[Any]:
        return self.ack()

    async def changelog(self, key: bytes, value: bytes, partition: int) -> Awaitable[Any]:
        return self.ack()

    async def dead_letter(self, letter: Letter, partition: int) -> Awaitable[Any]:
        return self.ack()

    async def approval(self, request: ApprovalRequest,
                       partition: int) -> Awaitable[Any] | None:
        return None

    async def settled(self, outcome: ApprovalOutcome,
                      partition: int) -> Awaitable[Any] | None:
        return None
