"""Channel drivers. Each implements :class:`signalbox.dispatcher.channels.base.Channel`."""

from signalbox.dispatcher.channels.base import Channel
from signalbox.dispatcher.channels.email import EmailChannel

__all__ = ["Channel", "EmailChannel"]
