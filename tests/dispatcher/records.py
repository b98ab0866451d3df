"""Writing ActionCommand records for the dispatcher and reading its results back, in tests
(the records themselves: :mod:`signalbox.testing.action_commands`)."""

from __future__ import annotations

import asyncio
from typing import Any

from signalbox.common import schemas
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_COMMANDS, ACTIONS_RESULTS
from signalbox.testing.action_commands import codec
from tests.support.kafka import consume, drain, produce


def send(settings: Settings, *records: tuple[str, bytes], key: bytes = b"cus-1") -> None:
    """Write commands to partition 0 of ``actions.commands``, as the evaluator would."""
    k = settings.kafka
    produce(k.bootstrap_servers, k.topic(ACTIONS_COMMANDS), [(key, v) for _, v in records],
            partition=0)


async def results(settings: Settings, count: int) -> dict[str, Any]:
    """The first ``count`` results on ``actions.results``, by command id (waits up to 60 s)."""
    k = settings.kafka
    got = await asyncio.to_thread(consume, k.bootstrap_servers, k.topic(ACTIONS_RESULTS),
                                  count, 60)
    out = {}
    for r in got:
        result = codec.decode(schemas.ACTION_RESULT, r.value)
        out[result["command_id"]] = result
    return out


async def all_results(settings: Settings) -> list[dict[str, Any]]:
    """Every result written so far (reads until 2 s pass without one)."""
    k = settings.kafka
    return [codec.decode(schemas.ACTION_RESULT, r.value) for r in await asyncio.to_thread(
        drain, k.bootstrap_servers, k.topic(ACTIONS_RESULTS), 2.0)]
