"""Source mappings, pure: the built-in ones map every fixture to valid catalogue events;
a broken mapping file is refused with the place and reason of every problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from signalbox.ingest.sources.catalogue import BUILTIN, builtin_path, load_sources
from signalbox.ingest.sources.mapping import (
    MappingError,
    PayloadError,
    load_mapping,
    parse_mapping,
    translate,
)
from signalbox.ingest.validation import validate_batch
from tests.ingest.sources.support import fixture, fixture_names

#: Every Stripe fixture and the signalbox events it becomes (type, event_id suffix).
STRIPE = {
    "charge.refunded": ["payment.refunded"],
    "credit_note.created": ["credit.adjusted"],
    "credit_note.voided": ["credit.adjusted"],
    "customer.created": ["customer.signed_up"],
    "customer.source.expiring": ["card.updated"],
    "customer.subscription.created": ["subscription.started"],
    "customer.subscription.deleted": ["subscription.ended"],
    "customer.subscription.updated.cancel": ["subscription.cancelled:cancel"],
    "customer.subscription.updated.period": ["subscription.renewed:period"],
    "customer.subscription.updated.status": ["service.status_changed:status"],
    "customer.updated": ["credit.adjusted"],
    "invoice.finalized": ["invoice.issued"],
    "invoice.overdue": ["system.notification"],
    "invoice.paid": ["invoice.paid"],
    "invoice.payment_failed": ["payment.failed"],
    "invoice.upcoming": ["system.notification"],
    "payment_method.automatically_updated": ["card.updated"],
    "plan.created": [],  # not mapped
}


#: The same for Chargebee and Lago (their fixtures are named for the event type).
CHARGEBEE = {
    "card_expiry_reminder": ["card.updated"],
    "coupon_created": [],
    "customer_created": ["customer.signed_up"],
    "invoice_generated": ["invoice.issued"],
    "payment_failed": ["payment.failed"],
    "payment_refunded": ["payment.refunded"],
    "payment_succeeded": ["payment.succeeded"],
    "subscription_cancellation_scheduled": ["subscription.cancelled"],
    "subscription_cancelled": ["subscription.ended"],
    "subscription_created": ["subscription.started"],
    "subscription_renewed": ["subscription.renewed"],
}
LAGO = {
    "credit_note.created": ["credit.adjusted"],
    "customer.created": ["customer.signed_up"],
    "invoice.created": ["invoice.issued"],
    "invoice.payment_overdue": ["system.notification"],
    "invoice.payment_status_updated": ["invoice.paid:paid"],
    "invoice.payment_status_updated.failed": ["payment.failed"],
    "plan.created": [],
    "subscription.started": ["subscription.started"],
    "subscription.terminated": ["subscription.ended"],
}
EXPECTED = {"stripe": STRIPE, "chargebee": CHARGEBEE, "lago": LAGO}
CASES = [(source, name) for source, table in EXPECTED.items() for name in sorted(table)]


@pytest.mark.parametrize("source", sorted(EXPECTED))
def test_every_fixture_is_listed(source: str) -> None:
    assert sorted(EXPECTED[source]) == fixture_names(source)


@pytest.mark.parametrize(("source", "name"), CASES)
def test_fixtures_map_to_valid_catalogue_events(source: str, name: str) -> None:
    mapping = load_mapping(builtin_path(source))
    result = translate(mapping, fixture(source, name))
    assert result.mapped == bool(EXPECTED[source][name])
    got = [e["type"] + e["event_id"].removeprefix(result.source_id) for e in result.events]
    assert got == EXPECTED[source][name]
    events = validate_batch(list(result.events), received_at=0) if result.events else []
    assert all(e.record["source"] == source for e in events)


def test_a_lago_webhook_is_identified_by_its_unique_key_header() -> None:
    mapping = load_mapping(builtin_path("lago"))
    payload = fixture("lago", "invoice.created")
    unique = "5f0d6a4e-2b1c-4c33-9e0b-6d1c2f3a4b5c"
    assert translate(mapping, payload, {"X-Lago-Unique-Key": unique}).source_id == unique
    replayed = translate(mapping, payload)  # a backfill has no headers
    assert replayed.source_id.startswith("invoice.created:1a901a90-")


@pytest.mark.parametrize("name", sorted(STRIPE))
def test_stripe_events_keep_their_id_customer_and_time(name: str) -> None:
    payload = fixture("stripe", name)
    result = translate(load_mapping(builtin_path("stripe")), payload)
    assert result.source_id == payload["id"] and result.source_type == payload["type"]
    for event in validate_batch(list(result.events), received_at=0) if result.events else []:
        assert event.customer_id == "cus_QXg1o8vcGmoR32"
        assert event.record["occurred_at"] == payload["created"] * 1000
        assert event.record["source"] == "stripe"


def test_stripe_amounts_currencies_and_times_are_converted() -> None:
    mapping = load_mapping(builtin_path("stripe"))
    [issued] = translate(mapping, fixture("stripe", "invoice.finalized")).events
    assert issued["data"] == {"invoice_id": "in_1Sb01B7WZ01zgkWpay", "amount_minor": 4900,
                              "currency": "EUR", "due_at": 1795003600000, "product": "prod_Pro"}
    [credit] = translate(mapping, fixture("stripe", "customer.updated")).events
    assert credit["data"]["amount_minor"] == 500  # the balance fell from 0 to -500: a credit
    [renewed] = translate(mapping, fixture("stripe", "customer.subscription.updated.period")).events
    assert renewed["data"]["previous_ends_at"] < renewed["data"]["ends_at"]


def test_the_built_in_mappings_load() -> None:
    sources = load_sources({})
    assert sorted(sources) == sorted(BUILTIN)
    assert all(not s.secrets for s in sources.values())
    assert "approval.decided" not in sources["stripe"].key.event_types


def _mapping(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load("""
format: signalbox/source-mapping@1
source: acme
version: 1
auth: {scheme: hmac-sha256, secrets_env: ACME_SECRETS, header: X-Acme-Signature}
type: kind
event_id: id
envelope: {customer_id: account.id, occurred_at: epoch_ms(at)}
events:
  charge.failed:
    - type: payment.failed
      data:
        payment_id: charge.id
        product: {const: pro}
        amount_minor: charge.amount
        currency: upper(charge.currency)
""")
    raw.update(changes)
    return raw


def test_a_valid_mapping_translates() -> None:
    mapping = parse_mapping(_mapping(), "acme.yaml")
    payload = {"kind": "charge.failed", "id": "e1", "at": 1795000000, "account": {"id": "c1"},
               "charge": {"id": "ch1", "amount": 100, "currency": "eur"}}
    [event] = translate(mapping, payload).events
    assert event == {"event_id": "e1", "type": "payment.failed", "customer_id": "c1",
                     "occurred_at": 1795000000000, "source": "acme",
                     "data": {"payment_id": "ch1", "product": "pro", "amount_minor": 100,
                              "currency": "EUR"}}
    assert translate(mapping, {**payload, "kind": "other"}).mapped is False


@pytest.mark.parametrize(("changes", "error"), [
    ({"format": "x"}, "format: expected 'signalbox/source-mapping@1'"),
    ({"auth": {"scheme": "md5", "secrets_env": "X"}}, "auth.scheme: unknown scheme 'md5'"),
    ({"auth": {"scheme": "hmac-sha256", "secrets_env": "X"}},
     "auth.header: required for scheme hmac-sha256"),
    ({"event_id": "id[["}, "event_id: not a JMESPath expression"),
    ({"events": {"charge.failed": [{"type": "payment.failed", "data": {
        "payment_id": "charge.id", "produt": "x", "amount_minor": "a", "currency": "c"}}]}},
     "events.\"charge.failed\"[0].data.produt: unknown field of payment.failed; "
     "did you mean 'product'?"),
    ({"events": {"charge.failed": [{"type": "payment.failed", "data": {
        "payment_id": "charge.id", "amount_minor": "a", "currency": "c"}}]}},
     "events.\"charge.failed\"[0].data.product: required field of payment.failed not mapped"),
    ({"events": {"x": [{"type": "approval.decided", "data": {}}]}},
     "events.x[0].type: approval.decided is written by signalbox only"),
    ({"events": {"x": [{"type": "payment.faild"}]}},
     "events.x[0].type: unknown signalbox event type 'payment.faild'; did you mean "
     "'payment.failed'?"),
    ({"events": {"x": [{"type": "user.logged_in"}, {"type": "user.logged_in"}]}},
     "events.x: several rules for one source type"),
    ({"envelope": {}}, "events.\"charge.failed\"[0].customer_id: not mapped here nor in envelope"),
    ({"extra": 1}, "extra: unknown key"),
])
def test_mapping_errors_name_the_place_and_the_reason(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(_mapping(**changes), "acme.yaml")
    assert caught.value.source == "acme.yaml"
    assert any(e.startswith(error) for e in caught.value.errors), caught.value.errors


def test_a_payload_without_id_is_a_payload_error() -> None:
    mapping = parse_mapping(_mapping(), "acme.yaml")
    with pytest.raises(PayloadError) as caught:
        translate(mapping, {"kind": "charge.failed"})
    assert caught.value.where == "event_id"
    with pytest.raises(PayloadError) as caught:
        translate(mapping, {"kind": "charge.failed", "id": "e", "at": "yesterday",
                            "account": {"id": "c"}, "charge": {}})
    assert caught.value.where == 'events."charge.failed"[0].occurred_at'


def test_the_example_mapping_of_the_docs_is_valid() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "sources.md").read_text()
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    mapping = parse_mapping(yaml.safe_load(example), "docs/sources.md")
    payload = {"kind": "charge_failed", "id": "e1", "created": 1795000000,
               "account": {"id": "c1", "email": "ada@example.com", "plan": 3},
               "charge": {"id": "ch1", "captured": False, "amount_cents": 4900,
                          "currency": "eur", "description": "declined"}}
    events = translate(mapping, payload).events
    assert [e["event_id"] for e in events] == ["e1", "e1:note"]
    assert validate_batch(list(events), received_at=0)
