"""The ``payment.failed`` event the tests send, built in one place.

As JSON (what a client posts to ingest) with :func:`payment_failed`, or as the Avro
record ingest writes to Kafka with :func:`payment_failed_record`: the record is made
by ingest's own validation from the same JSON, so the two forms cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.ingest import validate_batch

#: 2026-09-21T14:13:20Z, the default time of a record.
T0 = 1_790_000_000_000
_codec = AvroCodec()


def payment_failed(event_id: str = "evt_1", customer_id: str = "cus_1", product: str = "pro",
                   *, contact: bool = False, reason: str | None = None,
                   **overrides: Any) -> dict[str, Any]:
    """A valid ``payment.failed`` JSON event; keyword arguments replace envelope fields.

    ``contact``: the customer has an address (``<customer_id>@example.com``, named Ada
    Lovelace), for tests where an email goes to the customer; ``reason``: why the
    payment failed (the email quotes it)."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": "payment.failed",
        "customer_id": customer_id,
        "occurred_at": "2026-11-22T10:00:00Z",
        "data": {"payment_id": "pay_1", "product": product, "amount_minor": 4900,
                 "currency": "EUR"},
    }
    if reason is not None:
        event["data"]["reason"] = reason
    if contact:
        event["customer"] = {"email": f"{customer_id}@example.com", "name": "Ada Lovelace"}
    event.update(overrides)
    return event


def payment_failed_record(event_id: str, customer_id: str, product: str = "pro",
                          at: int = T0, **overrides: Any) -> bytes:
    """The Avro record ingest writes for :func:`payment_failed` (with a contact) at ``at``."""
    json_event = payment_failed(event_id, customer_id, product, contact=True, occurred_at=at,
                                source="test", **overrides)
    [event] = validate_batch(json_event, received_at=at)
    return _codec.encode(schemas.EVENT, event.record)
