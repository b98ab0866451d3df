"""Channel drivers. Each implements :class:`signalbox.dispatcher.channels.base.Channel`.

:func:`build_channels` gives one driver per channel: the configured provider, or
the outbox (a JSON file per side effect) for a channel with none configured.
"""

from __future__ import annotations

from signalbox.common.clock import Clock
from signalbox.common.settings import DispatcherSettings
from signalbox.dispatcher.channels.base import Channel
from signalbox.dispatcher.channels.crm import CrmChannel
from signalbox.dispatcher.channels.email import EmailChannel
from signalbox.dispatcher.channels.export import ExportChannel
from signalbox.dispatcher.channels.outbox import OutboxChannel
from signalbox.dispatcher.channels.sms import SmsChannel
from signalbox.dispatcher.channels.webhook import WebhookChannel
from signalbox.dispatcher.providers import CHANNEL_NAMES, DispatcherConfig
from signalbox.dispatcher.templates import TemplateStore

__all__ = ["Channel", "CrmChannel", "EmailChannel", "ExportChannel", "OutboxChannel",
           "SmsChannel", "WebhookChannel", "build_channels"]


def _driver(name: str, settings: DispatcherSettings, config: DispatcherConfig,
            templates: TemplateStore, clock: Clock | None) -> Channel | None:
    if name == "email":
        return EmailChannel(settings.smtp, templates, settings.public_url,
                            settings.unsubscribe_secret, clock=clock)
    if name == "sms" and config.sms is not None:
        return SmsChannel(config.sms, templates)
    if name == "webhook":
        return WebhookChannel(config.webhooks)
    if name == "crm":
        return CrmChannel(config.crm, templates)
    if name == "export":
        return ExportChannel(config.exports, templates)
    return None


def build_channels(settings: DispatcherSettings, templates_dir: str, config: DispatcherConfig,
                   clock: Clock | None = None) -> dict[str, Channel]:
    """A driver for every channel (``email``, ``sms``, ``webhook``, ``crm``, ``export``),
    rendering ``templates_dir``'s templates before the built-in ones; ``clock`` dates the
    mail (the dispatcher's, so a test's clock is the ``Date``)."""
    templates = TemplateStore([templates_dir] if templates_dir else [])
    channels: dict[str, Channel] = {}
    for name in CHANNEL_NAMES:
        configured = config.configured(name)
        driver = _driver(name, settings, config, templates, clock) if configured else None
        channels[name] = driver or OutboxChannel(name, config.outbox_dir, templates)
    return channels
