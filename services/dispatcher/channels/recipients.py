"""Who or what a command reaches, per channel: shared by every driver and the outbox."""

from __future__ import annotations

from signalbox.dispatcher.model import Command


def recipients_of(command: Command) -> tuple[str, ...]:
    """Addresses (email), numbers (SMS), or the named endpoint, connection or target.

    Empty only when a customer's address or number is unknown: the policy then
    records the command as suppressed.
    """
    a = command.action
    if command.channel in ("email", "sms"):
        return tuple(str(x) for x in a.get("to", ()) if x)
    if command.channel == "webhook":
        return (str(a["endpoint"]),)
    if command.channel == "crm":
        return (f"{a.get('connection') or 'default'}:{command.customer_id}",)
    if command.channel == "export":
        return (str(a["target"]),)
    return ()
