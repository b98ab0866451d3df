"""The seam between delivery policy and the outside world."""

from __future__ import annotations

from typing import Protocol

from signalbox.dispatcher.model import Command, Delivery


class Channel(Protocol):
    """Performs one command's side effect.

    Returns a :class:`Delivery` when the provider accepted it; raises
    ``TransientError``, ``PermanentError`` or ``InDoubtError`` otherwise. The
    command id is passed to the provider as an idempotency key where it has one.
    """

    name: str

    def recipients(self, command: Command) -> tuple[str, ...]:
        """Who would receive it; empty means there is nobody to send to."""
        ...

    async def send(self, command: Command) -> Delivery: ...
