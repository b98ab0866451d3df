"""``signalbox dispatcher``: wire the channels to the delivery loop and serve /metrics."""

from __future__ import annotations

import structlog

from signalbox.common import runtime
from signalbox.common.settings import Settings
from signalbox.dispatcher.channels import EmailChannel
from signalbox.dispatcher.templates import TemplateStore
from signalbox.dispatcher.worker import Dispatcher

log = structlog.get_logger(__name__)


def build(settings: Settings) -> Dispatcher:
    templates = TemplateStore([settings.templates_dir] if settings.templates_dir else [])
    return Dispatcher(settings, {"email": EmailChannel(settings.smtp, templates)})


def main(settings: Settings) -> None:
    runtime.prepare("dispatcher", settings)
    dispatcher = build(settings)
    log.info("dispatcher_started", smtp=f"{settings.smtp.host}:{settings.smtp.port}",
             port=settings.dispatcher_port)
    runtime.run_with_ops(settings, settings.dispatcher_port, {"kafka": dispatcher.ready},
                         dispatcher.run)
