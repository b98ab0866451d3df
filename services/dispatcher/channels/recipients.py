"""Who or what a command reaches, per channel: shared by every driver and the outbox."""

from __future__ import annotations

from signalbox.common.action_command import Command, CrmCommand, MessageCommand, WebhookCommand


def recipients_of(command: Command) -> tuple[str, ...]:
    """Addresses (email), numbers (SMS), or the named endpoint, connection or target.

    Empty only when a customer's address or number is unknown: the policy then
    records the command as suppressed.
    """
    a = command.action
    if isinstance(a, MessageCommand):
        return tuple(x for x in a.to if x)
    if isinstance(a, WebhookCommand):
        return (a.endpoint,)
    if isinstance(a, CrmCommand):
        return (f"{a.connection or 'default'}:{command.customer_id}",)
    return (a.target,)
