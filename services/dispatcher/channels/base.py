"""The seam between delivery policy and the outside world."""

from __future__ import annotations

from typing import Protocol, TypeVar

from signalbox.common.action_command import ChannelCommand, Command
from signalbox.dispatcher.outcomes import Delivery, PermanentError

A = TypeVar("A", bound=ChannelCommand)


class Channel(Protocol):
    """Performs one command's side effect.

    Returns a :class:`Delivery` when the provider accepted it; raises
    ``TransientError`` (not done, safe to retry), ``PermanentError`` (not done,
    never retry) or ``InDoubtError`` (may have happened: never resend). The
    command id is passed to the provider as an idempotency key where it has one.
    Every network call has a timeout.
    """

    name: str

    def recipients(self, command: Command) -> tuple[str, ...]:
        """Who would receive it; empty means there is nobody to send to."""
        ...

    def endpoint(self, command: Command) -> str:
        """The remote the command goes to (e.g. ``smtp.example.com:587``, a webhook's host).

        The delivery policy keys its circuit breakers and rate limits by it.
        """
        ...

    async def send(self, command: Command) -> Delivery: ...

    async def aclose(self) -> None:
        """Release connections and clients; the channel is not used afterwards."""
        ...


def action_of(command: Command, kind: type[A]) -> A:
    """The command's action as the driver's own kind. The worker routes by
    ``command.channel``, so another kind is a routing mistake: refused, never sent."""
    a = command.action
    if not isinstance(a, kind):
        raise PermanentError(f"{kind.channel} driver given a {command.channel} command",
                             where="action")
    return a
