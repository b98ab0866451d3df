"""No full recipient address in logs or outcome records (issue 9, finding 8)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from signalbox.common import schemas
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_DLQ, ACTIONS_LEDGER, ACTIONS_RESULTS, ACTIONS_RETRY
from signalbox.dispatcher.main import build
from signalbox.dispatcher.privacy import Privacy, mask, mask_email, mask_phone
from signalbox.dispatcher.providers import ConfigError, DispatcherConfig, parse
from signalbox.testing.action_commands import codec, command
from signalbox.testing.smtp import SmtpSink
from tests.dispatcher.records import send
from tests.dispatcher.test_worker import process_env, start_dispatcher  # noqa: F401
from tests.support.kafka import consume, drain


def test_masks_keep_enough_to_tell_recipients_apart_and_no_more() -> None:
    assert mask_email("ada@example.com") == "a***@example.com"
    assert mask_email("Grace.Hopper@mail.example.org") == "G***@mail.example.org"
    assert mask_email("not-an-address") == "***"
    assert mask_phone("+4915112341234") == "+49*******1234"
    assert mask_phone("+14155552671") == "+1******2671"
    assert mask_phone("12345") == "***"
    assert mask("webhook", "billing-sync") == "billing-sync"  # an endpoint name, not a person


def test_redact_finds_the_recipient_however_a_provider_quotes_it() -> None:
    p = Privacy()
    assert p.redact("550 <ADA@Example.COM>: no such user", "email", ["ada@example.com"]) == \
        "550 <a***@example.com>: no such user"
    assert p.redact("SMS accepted for +14155552671; 14155552671 is landline", "sms",
                    ["+14155552671"]) == \
        "SMS accepted for +1******2671; +1******2671 is landline"
    assert p.redact("HTTP 502", "email", ["ada@example.com"]) == "HTTP 502"
    assert Privacy(full=True).redact("to ada@example.com", "email", ["ada@example.com"]) == \
        "to ada@example.com"


def test_full_detail_is_for_development_only(settings: Settings) -> None:
    cfg = parse({"privacy": {"recipients": "full"}}, "d.yaml", {})
    assert cfg.full_recipients and not DispatcherConfig().full_recipients
    with pytest.raises(ConfigError, match=r"privacy.recipients: full .* development only"):
        build(replace(settings, bind_host="0.0.0.0"), cfg)
    assert build(settings, cfg).privacy.full  # bound to loopback: allowed
    with pytest.raises(ConfigError, match=r"privacy.recipients: expected one of masked, full"):
        parse({"privacy": {"recipients": "some"}}, "d.yaml", {})


ADDRESSES = ("ada@example.com", "grace.hopper@example.com", "bob@example.org")


@pytest.mark.kafka
def test_delivered_failed_and_retried_mail_leave_no_address_behind(
    dsettings: Settings, smtp: SmtpSink, tmp_path: Path, process_env: dict[str, str]  # noqa: F811
) -> None:
    """A real dispatcher process: its log, results, ledger, dead letters and retry headers."""
    delivered, failed, retried = (command(40), command(41, to=["Grace.Hopper@Example.com"]),
                                  command(42, to=["bob@example.org"]))
    k = dsettings.kafka
    proc = start_dispatcher(process_env, tmp_path)
    try:
        send(dsettings, delivered)
        smtp.wait_for(1)
        smtp.reject_next(1, "550 5.1.1 <grace.hopper@example.com>: mailbox unavailable")
        send(dsettings, failed)
        consume(k.bootstrap_servers, k.topic(ACTIONS_RESULTS), 2)
        smtp.reject_next(1, "451 4.7.1 <bob@example.org> greylisted, try again")
        send(dsettings, retried)
        consume(k.bootstrap_servers, k.topic(ACTIONS_RESULTS), 3)
    finally:
        assert proc.stop() == 0, proc.tail()
    results = {r["command_id"]: r for r in (
        codec.decode(schemas.ACTION_RESULT, x.value)
        for x in drain(k.bootstrap_servers, k.topic(ACTIONS_RESULTS), 1))}
    assert results[delivered[0]]["detail"] == "SMTP 250 to a***@example.com"
    assert results[failed[0]]["status"] == "failed"
    assert "<G***@Example.com>: mailbox unavailable" in results[failed[0]]["detail"]
    assert (results[retried[0]]["status"], results[retried[0]]["attempts"]) == ("delivered", 2)
    kept = [json.dumps(results, default=str), proc.log_path.read_text()]
    kept += [codec.decode(schemas.DEAD_LETTER, x.value)["reason"]
             for x in drain(k.bootstrap_servers, k.topic(ACTIONS_DLQ), 1)]
    kept += [str(x.value) for x in drain(k.bootstrap_servers, k.topic(ACTIONS_LEDGER), 1)]
    retry_reasons = [h for h in _headers(dsettings, ACTIONS_RETRY[0])
                     if h[0] == "signalbox-reason"]
    assert retry_reasons and "b***@example.org" in retry_reasons[0][1].decode()
    kept += [v.decode() for _, v in retry_reasons]
    assert "command_delivered" in kept[1] and "a***@example.com" in kept[1]
    text = "\n".join(kept).lower()
    assert [a for a in ADDRESSES if a in text] == []


def _headers(settings: Settings, topic: str) -> list[tuple[str, bytes]]:
    """Every header of every record on ``topic`` (partition 0)."""
    from confluent_kafka import Consumer, TopicPartition

    k = settings.kafka
    c = Consumer({"bootstrap.servers": k.bootstrap_servers, "group.id": "test-headers",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    c.assign([TopicPartition(k.topic(topic), 0, 0)])
    out: list[tuple[str, bytes]] = []
    try:
        while (msg := c.poll(2.0)) is not None:
            headers = msg.headers() or []
            assert isinstance(headers, list)  # a consumed record's: (name, value) pairs
            out += [(name, value.encode() if isinstance(value, str) else value or b"")
                    for name, value in headers]
    finally:
        c.close()
    return out
