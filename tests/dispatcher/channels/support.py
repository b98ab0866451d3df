"""Commands for channel tests, one per branch of the ActionCommand union."""

from __future__ import annotations

import uuid
from typing import Any

from signalbox.dispatcher.model import Command


def make_command(channel: str, action: dict[str, Any], *, customer: str = "cus-1",
                 command_id: str | None = None) -> Command:
    return Command(
        command_id=command_id or uuid.uuid4().hex[:32], customer_id=customer,
        automation_id="auto-1", channel=channel, action=action,
        issued_at=1_790_000_000_000, trigger_type="payment.failed")


def email_command(to: tuple[str, ...] = ("ada@example.com",), template: str = "payment_failed",
                  **variables: str) -> Command:
    return make_command("email", {
        "to": list(to), "audience": "customer", "template": template, "locale": None,
        "variables": {"customer_name": "Ada", "product": "pro", "amount_minor": "4900",
                      "currency": "EUR", "reason": "card declined", "payment_id": "p-1",
                      **variables}})


def sms_command(to: tuple[str, ...] = ("+14155552671",), template: str = "payment_failed",
                **variables: str) -> Command:
    return make_command("sms", {
        "to": list(to), "audience": "customer", "template": template, "locale": None,
        "variables": {"customer_name": "Ada", "product": "pro", "amount_minor": "4900",
                      "currency": "EUR", **variables}})
