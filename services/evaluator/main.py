"""``signalbox evaluator``: run the Faust worker around the engine, with its shell."""

from __future__ import annotations

import asyncio
from importlib import resources

import faust
import structlog
import uvloop

from signalbox.common.deadletter import topic_max_message_bytes
from signalbox.common.registry import codec_for
from signalbox.common.runtime import prepare
from signalbox.common.settings import KafkaSettings, Settings
from signalbox.common.telemetry import logging_dict_config
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    CUSTOMER_STATE_TABLE,
    EVENTS_DLQ,
    changelog_topic,
)
from signalbox.evaluator.definitions import Definitions, load_file
from signalbox.evaluator.faust_app import create_app
from signalbox.evaluator.processor import Limits
from signalbox.evaluator.shell import EvaluatorShell

log = structlog.get_logger(__name__)


def default_automations_path() -> str:
    return str(resources.files("signalbox").joinpath("defaults", "automations.yaml"))


def file_definitions(settings: Settings) -> Definitions:
    """The automations file (``SIGNALBOX_AUTOMATIONS_FILE`` or the built-in default),
    validated whole; the automations topic overrides it by id once it is read."""
    return load_file(settings.evaluator.automations_file or default_automations_path(), settings)


def topic_limits(k: KafkaSettings) -> Limits:
    """What the broker accepts on each topic the evaluator writes (read, not guessed)."""
    return Limits(
        commands=topic_max_message_bytes(k, k.topic(ACTIONS_COMMANDS)),
        changelog=topic_max_message_bytes(k, changelog_topic(k, CUSTOMER_STATE_TABLE)),
        dead_letters=topic_max_message_bytes(k, k.topic(EVENTS_DLQ)),
    )


def main(settings: Settings) -> None:
    # uvloop: the per-record cost of Faust and aiokafka is mostly event-loop machinery
    # (futures, callbacks, queues); uvloop runs it in C.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    prepare("evaluator", settings)
    definitions = file_definitions(settings)
    automations = definitions.build()
    log.info("automations_loaded", file=definitions.file_source,
             automations=[f"{a.id}@{a.version}" for a in automations.automations])
    shell = EvaluatorShell(settings.kafka, settings.evaluator, settings.bind_host,
                           codec_for(settings.registry), definitions, automations)
    app = create_app(settings.kafka, settings.evaluator, shell, topic_limits(settings.kafka))
    worker = faust.Worker(
        app,
        shell,
        loglevel=settings.logging.level,
        logging_config=logging_dict_config("evaluator", settings.logging.level,
                                           settings.logging.format),
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()  # handles SIGTERM: stops agents, commits, exits
