"""ActionCommand records for dispatcher tests, as the evaluator writes them."""

from __future__ import annotations

import asyncio
from typing import Any

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_COMMANDS, ACTIONS_RESULTS
from signalbox.evaluator.engine import command_id
from tests.support.kafka import consume, drain, produce

codec = AvroCodec()
VARIABLES = {"customer_name": "Ada", "product": "pro", "amount_minor": "4900",
             "currency": "EUR", "reason": "card declined"}


def command(n: int, to: list[str] | None = None, template: str = "payment_failed",
            customer: str = "cus-1", channel: str = "email", audience: str = "customer",
            critical: bool = False, timezone: str | None = None,
            padding: int = 0) -> tuple[str, bytes]:
    """``(command id, encoded ActionCommand)`` of the ``n``-th test occurrence
    (``padding``: that many more bytes, in a variable)."""
    cid = command_id("payment-failed-pro", 1, customer, f"evt-{n}-{channel}", 0)
    branch = {"email": schemas.EMAIL_ACTION, "sms": schemas.SMS_ACTION}[channel]
    default_to = ["ada@example.com"] if channel == "email" else ["+14155552671"]
    action: dict[str, Any] = {
        "to": default_to if to is None else to, "audience": audience, "template": template,
        "locale": None, "variables": {**VARIABLES, "payment_id": f"p-{n}",
                                   **({"padding": "x" * padding} if padding else {})}}
    value = codec.encode(schemas.ACTION_COMMAND, {
        "command_id": cid, "automation_id": "payment-failed-pro", "automation_version": 1,
        "action_index": 0, "customer_id": customer, "issued_at": 1_790_000_000_000,
        "trigger": {"type": "payment.failed", "occurrence": f"evt-{n}", "facts": {}},
        "action": (branch, action), "customer_timezone": timezone, "critical": critical,
    })
    return cid, value


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
