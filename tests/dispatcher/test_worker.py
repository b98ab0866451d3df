"""The dispatcher against a real broker and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from signalbox.common import schemas
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_COMMANDS, ACTIONS_DLQ, ACTIONS_LEDGER, ACTIONS_RESULTS
from signalbox.dispatcher.main import build
from signalbox.testing import free_port, service_env
from signalbox.testing.action_commands import codec, command
from signalbox.testing.processes import ServiceProcess
from signalbox.testing.smtp import SmtpSink
from tests.dispatcher.records import send
from tests.support.kafka import consume, drain, produce

pytestmark = pytest.mark.kafka


def results(settings: Settings, count: int) -> list[dict[str, Any]]:
    k = settings.kafka
    return [codec.decode(schemas.ACTION_RESULT, r.value)
            for r in consume(k.bootstrap_servers, k.topic(ACTIONS_RESULTS), count)]


@pytest.fixture
async def running(dsettings: Settings) -> AsyncIterator[None]:
    """The dispatcher in this process, stopped (as by SIGTERM) after the test."""
    stop = asyncio.Event()
    dispatcher = build(dsettings)
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.wait_for(dispatcher.assigned.wait(), 30)
    yield
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_delivers_email_and_records_one_result(
    dsettings: Settings, smtp: SmtpSink, running: None
) -> None:
    cid, value = command(1)
    send(dsettings, (cid, value))
    [mail] = await asyncio.to_thread(smtp.wait_for, 1)
    assert mail.rcpt_tos == ("ada@example.com",)
    assert mail.subject == "Ada, your payment for pro did not go through"
    assert "€49.00" in mail.text() and "card declined" in mail.text()
    assert mail.message["Message-ID"] == f"<{cid}@signalbox>"
    [result] = await asyncio.to_thread(results, dsettings, 1)
    assert (result["command_id"], result["status"], result["attempts"]) == (cid, "delivered", 1)


async def test_outcomes_without_delivery(
    dsettings: Settings, smtp: SmtpSink, running: None
) -> None:
    """Suppressed (nobody to send to), template error, permanent 5xx: one outcome each."""
    no_address = command(2, to=[])
    bad_template = command(3, template="no_such_template")
    send(dsettings, no_address, bad_template)
    got = {r["command_id"]: r for r in await asyncio.to_thread(results, dsettings, 2)}
    assert got[no_address[0]]["status"] == "suppressed"
    assert "no recipient" in got[no_address[0]]["detail"]
    assert got[bad_template[0]]["status"] == "failed"
    assert "no_such_template" in got[bad_template[0]]["detail"]
    smtp.reply = "550 5.1.1 mailbox unavailable"
    rejected = command(4)
    send(dsettings, rejected)
    [*_, last] = await asyncio.to_thread(results, dsettings, 3)
    assert (last["status"], last["attempts"]) == ("failed", 1)  # permanent: not retried
    assert "550" in last["detail"]
    k = dsettings.kafka
    letters = [codec.decode(schemas.DEAD_LETTER, r.value)
               for r in consume(k.bootstrap_servers, k.topic(ACTIONS_DLQ), 2)]
    assert [letter["value"] for letter in letters] == [bad_template[1], rejected[1]]
    assert smtp.messages == []


async def test_transient_failures_are_retried_then_delivered_once(
    dsettings: Settings, smtp: SmtpSink, running: None
) -> None:
    smtp.reject_next(2, "451 4.3.0 try again later")
    cid, value = command(5)
    send(dsettings, (cid, value))
    [mail] = await asyncio.to_thread(smtp.wait_for, 1)
    [result] = await asyncio.to_thread(results, dsettings, 1)
    assert (result["status"], result["attempts"], smtp.rejected) == ("delivered", 3, 2)
    assert mail.message["X-Signalbox-Command-Id"] == cid


async def test_interrupted_attempt_ends_in_doubt_and_is_not_resent(
    dsettings: Settings, smtp: SmtpSink
) -> None:
    """A process died after recording 'attempting': the outcome is in doubt, nothing is sent."""
    cid, value = command(6)
    k = dsettings.kafka
    # What a dispatcher that died between 'attempting' and the outcome leaves behind.
    produce(k.bootstrap_servers, k.topic(ACTIONS_LEDGER), [(cid.encode(), codec.encode(
        schemas.LEDGER_ENTRY, {"command_id": cid, "state": "attempting", "attempt": 1,
                               "at": 1_790_000_000_000, "detail": ""}))], partition=0)
    send(dsettings, (cid, value))
    stop = asyncio.Event()
    dispatcher = build(dsettings)
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        [result] = await asyncio.to_thread(results, dsettings, 1)
        [letter] = await asyncio.to_thread(
            consume, k.bootstrap_servers, k.topic(ACTIONS_DLQ), 1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert (result["command_id"], result["status"]) == (cid, "in_doubt")
    dead = codec.decode(schemas.DEAD_LETTER, letter.value)
    assert dead["value"] == value and dead["reason"].startswith("in_doubt: ")
    assert smtp.messages == []


@pytest.fixture
def process_env(dsettings: Settings) -> dict[str, str]:
    return service_env(dsettings, SMTP_PORT=str(dsettings.dispatcher.smtp.port),
                       DISPATCHER_BACKOFF_SECONDS="0.05")


def start_dispatcher(env: dict[str, str], log_dir: Path) -> ServiceProcess:
    """``signalbox dispatcher`` as a process, ready (partitions assigned, ledger loaded)."""
    port = free_port()
    proc = ServiceProcess("dispatcher", {**env, "DISPATCHER_PORT": str(port)}, log_dir, port)
    proc.start().wait_ready()
    return proc


def rewind(settings: Settings) -> None:
    """What a crash between the send and the offset commit looks like to the next owner."""
    k = settings.kafka
    admin = AdminClient({"bootstrap.servers": k.bootstrap_servers})
    from confluent_kafka import ConsumerGroupTopicPartitions

    tps = [TopicPartition(k.topic(ACTIONS_COMMANDS), p, 0) for p in range(k.partitions)]
    futures = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(settings.kafka.dispatcher_group_id, tps)])
    for fut in futures.values():
        fut.result()


def test_no_second_send_after_restart(
    dsettings: Settings, smtp: SmtpSink, tmp_path: Path, process_env: dict[str, str]
) -> None:
    cid, value = command(7)
    first = start_dispatcher(process_env, tmp_path)
    send(dsettings, (cid, value))
    smtp.wait_for(1)
    results(dsettings, 1)
    assert first.stop() == 0, first.tail()  # SIGTERM: clean exit
    rewind(dsettings)  # as if the offset commit had been lost
    second = start_dispatcher(process_env, tmp_path)
    send(dsettings, command(8))
    smtp.wait_for(2)
    k = dsettings.kafka
    all_results = drain(k.bootstrap_servers, k.topic(ACTIONS_RESULTS))
    assert second.stop() == 0, second.tail()
    assert [m.message["X-Signalbox-Command-Id"] for m in smtp.messages] == [cid, command(8)[0]]
    assert len(all_results) == 2  # the replayed command got no second outcome


def test_killed_mid_flight_never_sends_twice(
    dsettings: Settings, smtp: SmtpSink, tmp_path: Path, process_env: dict[str, str]
) -> None:
    """SIGKILL right after the mail arrived, then a replay: the mail is not sent again."""
    cid, value = command(9)
    first = start_dispatcher(process_env, tmp_path)
    send(dsettings, (cid, value))
    smtp.wait_for(1)
    first.kill()
    rewind(dsettings)
    second = start_dispatcher(process_env, tmp_path)
    k = dsettings.kafka
    outcomes = [codec.decode(schemas.ACTION_RESULT, r.value)["status"]
                for r in drain(k.bootstrap_servers, k.topic(ACTIONS_RESULTS), settle=4)]
    assert second.stop() == 0, second.tail()
    assert len(smtp.messages) == 1
    # Killed before its outcome transaction committed → in doubt; after → delivered.
    assert outcomes in (["delivered"], ["in_doubt"])
