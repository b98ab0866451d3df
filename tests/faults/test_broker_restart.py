"""The broker killed (SIGKILL) and started again while events keep arriving.

A broker of the test's own (the shared test broker never stops). The evaluator and
the dispatcher run as a deployment runs them: a process that exits is started again
in place (supervisor.py). Counted per command id at the end (tally.py): nothing lost,
nothing twice; in doubt only for a process that exited between an attempt and its
outcome, and every exit is reported with the counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from signalbox.common.settings import KafkaSettings, Settings
from signalbox.common.topics import apply, catalogue
from signalbox.testing.smtp import SmtpSink
from tests.faults.conftest import Rig, report, rig_for
from tests.faults.load import LOAD, RATE
from tests.faults.supervisor import Restarting
from tests.faults.tally import tally
from tests.support.private_broker import PrivateBroker

pytestmark = pytest.mark.kafka

#: The broker stays dead this long before it is started (which takes 5-15 s more here).
OUTAGE_S = 3.0


@pytest.fixture
def own(broker: PrivateBroker, settings: Settings) -> Settings:
    """The test's settings on its own broker, with the topic catalogue applied there."""
    s = replace(settings, kafka=replace(settings.kafka, bootstrap_servers=broker.bootstrap))
    apply(KafkaSettings(bootstrap_servers=broker.bootstrap), catalogue(s.kafka).values())
    return s


@pytest.fixture
def own_rig(own: Settings, smtp: SmtpSink, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(own, smtp, tmp_path)


def test_broker_restarted_under_load(broker: PrivateBroker, own: Settings, own_rig: Rig) -> None:
    expected = LOAD.expected_commands(own)
    dispatcher, evaluator = own_rig.pipeline()
    with Restarting(evaluator, dispatcher) as supervisor:
        producer = own_rig.produce(LOAD, RATE)
        producer.wait_for(len(LOAD.events) // 3)
        own_rig.smtp.wait_for(len(expected) // 4)
        broker.kill()
        fault, killed_at = time.monotonic(), len(own_rig.smtp.messages)
        time.sleep(OUTAGE_S)
        broker.script("start")
        back = time.monotonic() - fault
        producer.join()
        counted = tally(own, expected, own_rig.smtp, timeout=120)
    report(counted.line(f"broker kill -9 after {killed_at} mails, back after {back:.0f} s "
                        f"({supervisor.summary()})", fault))
    counted.check()
    # in doubt: only what an exited dispatcher had attempted without recording an outcome
    counted.check_in_doubt_across(*(e.seen for e in supervisor.exits
                                    if e.service.startswith("dispatcher")))
    # A SIGTERM soon after the broker came back can wait for the producers' retries
    # (NotLeaderForPartition until the restarted broker has leaders again) before the
    # last commit: seen once at over 30 s. A clean stop is still required.
    assert evaluator.stop(timeout=90) == 0, evaluator.tail()
    assert dispatcher.stop(timeout=90) == 0, dispatcher.tail()
