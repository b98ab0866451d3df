"""Commands for channel tests, one per branch of the ActionCommand union."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import replace
from typing import Literal

from signalbox.common.action_command import (
    ChannelCommand,
    Command,
    CrmCommand,
    EmailCommand,
    MessageCommand,
    SmsCommand,
    TriggerInfo,
    WebhookCommand,
)


def make_command(action: ChannelCommand, *, customer: str = "cus-1",
                 command_id: str | None = None) -> Command:
    return Command(
        command_id=command_id or uuid.uuid4().hex[:32], automation_id="auto-1",
        automation_version=1, action_index=0, customer_id=customer,
        issued_at=1_790_000_000_000, trigger=TriggerInfo("payment.failed", "evt-1"),
        action=action)


def email_command(to: tuple[str, ...] = ("ada@example.com",), template: str = "payment_failed",
                  audience: Literal["customer", "internal"] = "customer",
                  **variables: str) -> Command:
    return make_command(EmailCommand(
        to, audience, template, None,
        {"customer_name": "Ada", "product": "pro", "amount_minor": "4900",
         "currency": "EUR", "reason": "card declined", "payment_id": "p-1", **variables}))


def sms_command(to: tuple[str, ...] = ("+14155552671",), template: str = "payment_failed",
                **variables: str) -> Command:
    return make_command(SmsCommand(
        to, "customer", template, None,
        {"customer_name": "Ada", "product": "pro", "amount_minor": "4900",
         "currency": "EUR", **variables}))


def without_variables(command: Command, names: Collection[str]) -> Command:
    """``command`` with the action's variables ``names`` left out."""
    action = command.action
    assert isinstance(action, MessageCommand | WebhookCommand | CrmCommand)
    kept = {k: v for k, v in action.variables.items() if k not in names}
    return replace(command, action=replace(action, variables=kept))
