"""ActionCommand records as the evaluator writes them, for the dispatcher's tests and
its benchmark (bench/dispatcher.py)."""

from __future__ import annotations

from typing import Any

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.evaluator.engine import command_id

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
