"""The automations topic on the real broker: read in full, followed, validated whole."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import AUTOMATIONS
from signalbox.evaluator.definitions import AUTOMATION, Definitions, Stored, from_file
from signalbox.evaluator.engine import AutomationSet
from signalbox.evaluator.source import AutomationsSource, AutomationsWriter
from tests.support.kafka import produce
from tests.support.templates import templates_check

pytestmark = pytest.mark.kafka
codec = AvroCodec()

FILE = """
format: signalbox/automations@1
automations:
  - id: from-file
    trigger: {type: payment.failed}
    actions: [{type: email, to: customer, template: payment_failed}]
"""


def automation(aid: str, version: int = 1, trigger: str = "payment.failed") -> dict[str, Any]:
    return {"id": aid, "version": version, "trigger": {"type": trigger},
            "actions": [{"type": "email", "to": "customer", "template": "t"}]}


def stored(aid: str, **kw: Any) -> Stored:
    return Stored(aid, AUTOMATION, automation(aid, **kw), 1_790_000_000_000, "test")


def file_definitions(settings: Settings) -> Definitions:
    return from_file(FILE, "test.yaml", schemas.event_types(), settings.evaluator.teams,
                     templates_check())


def versions(automations: AutomationSet) -> dict[str, int]:
    return {a.id: a.version for a in automations.automations}


async def test_reads_the_topic_to_its_end_then_follows_it(settings: Settings) -> None:
    writer = AutomationsWriter(settings.kafka, codec)
    await writer.start()
    source = AutomationsSource(settings.kafka, codec, file_definitions(settings), AutomationSet())
    seen: list[AutomationSet] = []
    source.subscribe(seen.append)
    try:
        for i in range(3):
            await writer.put(stored("a", version=i + 1))  # compacted: the last one counts
        await writer.put(stored("b"))
        assert await source.ready() == "automations topic not read to its end"
        await source.reader.start()
        await asyncio.wait_for(source.reader.caught_up.wait(), 30)
        assert await source.ready() is None
        assert versions(source.current) == {"a": 3, "b": 1, "from-file": 1}

        # Hot changes: an override of the file's automation, then a delete.
        partition, offset = await writer.put(stored("from-file", version=7))
        await source.reader.wait_for(partition, offset)
        assert versions(source.current)["from-file"] == 7
        partition, offset = await writer.delete("b")
        await source.reader.wait_for(partition, offset)
        assert versions(source.current) == {"a": 3, "from-file": 7}
        assert versions(seen[-1]) == versions(source.current)
    finally:
        await source.reader.stop()
        await writer.stop()


async def test_an_invalid_record_is_rejected_and_the_set_stays(settings: Settings) -> None:
    writer = AutomationsWriter(settings.kafka, codec)
    await writer.start()
    source = AutomationsSource(settings.kafka, codec, file_definitions(settings), AutomationSet())
    try:
        await writer.put(stored("good"))
        await source.reader.start()
        await asyncio.wait_for(source.reader.caught_up.wait(), 30)
        before = source.current

        partition, offset = await writer.put(stored("good", version=2, trigger="nope.never"))
        await source.reader.wait_for(partition, offset)
        assert source.current is before  # not swapped: the old "good" still runs
        assert "nope.never" in source.rejected["good"].errors[0]

        # Bytes that are no AutomationRecord at all: logged, rejected, nothing else changes.
        topic = settings.kafka.topic(AUTOMATIONS)
        produce(settings.kafka.bootstrap_servers, topic, [(b"junk", b"not avro")])
        partition, offset = await writer.put(stored("late"))
        await source.reader.wait_for(partition, offset)
        assert versions(source.current) == {"good": 1, "from-file": 1, "late": 1}
        assert "single-object" in source.rejected["junk"].errors[0]
    finally:
        await source.reader.stop()
        await writer.stop()
