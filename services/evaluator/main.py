"""``signalbox evaluator``: run the Faust worker around the engine."""

from __future__ import annotations

from importlib import resources

import faust
import structlog

from signalbox.common import schemas
from signalbox.common.runtime import prepare
from signalbox.common.settings import Settings
from signalbox.common.telemetry import logging_dict_config
from signalbox.evaluator.app import create_app
from signalbox.evaluator.engine import AutomationSet, load_automations

log = structlog.get_logger(__name__)


def default_automations_path() -> str:
    return str(resources.files("signalbox").joinpath("defaults", "automations.yaml"))


def automations_for(settings: Settings) -> AutomationSet:
    path = settings.automations_file or default_automations_path()
    automations = load_automations(path, schemas.event_types(), settings.teams)
    log.info("automations_loaded", file=path,
             automations=[f"{a.id}@{a.version}" for a in automations.automations])
    return automations


def main(settings: Settings) -> None:
    prepare("evaluator", settings)
    app = create_app(settings, automations_for(settings))
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logging_dict_config("evaluator", settings.log_level, settings.log_format),
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()  # handles SIGTERM: stops agents, commits, exits
