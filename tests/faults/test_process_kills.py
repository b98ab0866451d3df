"""kill -9 of the evaluator and of the dispatcher while events keep arriving.

Counted per command id at the end (tally.py): nothing lost, nothing twice, and an
in-doubt outcome only where a dispatcher died between an attempt and its outcome.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from signalbox.common.settings import Settings
from tests.faults.conftest import Rig, report
from tests.faults.load import LOAD, RATE
from tests.faults.tally import commands_written, tally

pytestmark = pytest.mark.kafka


def test_evaluator_killed_under_load(settings: Settings, rig: Rig) -> None:
    expected = LOAD.expected_commands(settings)
    assert len(expected) == 2 * len(LOAD.events)  # a customer email and a finance alert
    dispatcher, evaluator = rig.pipeline()
    producer = rig.produce(LOAD, RATE)
    producer.wait_for(len(LOAD.events) // 3)
    rig.smtp.wait_for(20)  # the evaluator is writing commands, the dispatcher sending them
    evaluator.kill()
    fault, killed_at = time.monotonic(), producer.produced
    again = rig.evaluator("b", data="0")  # the same store, the same group member
    again.wait_ready()
    producer.join()
    counted = tally(settings, expected, rig.smtp)
    records, ids = commands_written(settings)
    report(counted.line(f"evaluator kill -9 after {killed_at} events, {records} command "
                        f"records for {ids} ids", fault))
    counted.check()
    assert not counted.in_doubt  # the dispatcher never stopped: nothing can be in doubt
    assert again.stop() == 0, again.tail()
    assert dispatcher.stop() == 0, dispatcher.tail()


def test_dispatcher_killed_under_load(settings: Settings, rig: Rig) -> None:
    expected = LOAD.expected_commands(settings)
    dispatcher, evaluator = rig.pipeline()
    producer = rig.produce(LOAD, RATE)
    producer.wait_for(len(LOAD.events) // 3)
    rig.smtp.wait_for(len(expected) // 3)  # mid-stream: sending, committing, reading more
    dispatcher.kill()
    fault, kill, killed_at = time.monotonic(), datetime.now(UTC), len(rig.smtp.messages)
    replacement = rig.dispatcher("b")  # a new pod: a new instance id, the group reassigns
    replacement.wait_ready()
    producer.join()
    counted = tally(settings, expected, rig.smtp)
    report(counted.line(f"dispatcher kill -9 after {killed_at} mails", fault))
    counted.check()
    # in doubt: only what the killed process had attempted without committing an outcome
    counted.check_in_doubt_across(kill)
    assert replacement.stop() == 0, replacement.tail()
    assert evaluator.stop() == 0, evaluator.tail()
