"""Dead letters always fit the dead-letter topic (issue 9, finding 4)."""

from __future__ import annotations

import asyncio
import hashlib
from functools import partial

import pytest
from aiokafka import AIOKafkaProducer

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.deadletter import (
    MAX_REASON_CHARS,
    VALUE_BYTES,
    VALUE_SHA256,
    dead_letter,
    fit,
    record_bytes,
    topic_max_message_bytes,
)
from signalbox.common.settings import Settings
from signalbox.common.topics import ACTIONS_DLQ
from tests.support.kafka import consume

codec = AvroCodec()
encode = partial(codec.encode, schemas.DEAD_LETTER)
LIMIT = 10_000


def letter(value: bytes | None, key: bytes | None = b"cus-1", reason: str = "DecodeError: x"
           ) -> dict[str, object]:
    return dead_letter(service="evaluator", topic="events.billing", partition=3, offset=42,
                       key=key, value=value, error_type="DecodeError", reason=reason,
                       failed_at=1_790_000_000_000)


def test_a_letter_exactly_at_the_limit_is_kept_whole_one_byte_more_is_cut() -> None:
    def size(n: int) -> int:
        return record_bytes(b"cus-1", encode(letter(b"v" * n)))

    at_limit = b"v" * max(n for n in range(LIMIT) if size(n) <= LIMIT)
    assert size(len(at_limit)) == LIMIT
    whole = fit(letter(at_limit), encode, LIMIT)
    assert record_bytes(whole.key, whole.value, whole.headers) == LIMIT
    assert not whole.truncated and codec.decode(schemas.DEAD_LETTER, whole.value)["value"] \
        == at_limit
    over = at_limit + b"w"
    cut = fit(letter(over), encode, LIMIT)
    assert cut.truncated and LIMIT - 3 <= record_bytes(cut.key, cut.value, cut.headers) <= LIMIT
    kept = codec.decode(schemas.DEAD_LETTER, cut.value)
    digest = hashlib.sha256(over).hexdigest()
    assert over.startswith(kept["value"]) and len(kept["value"]) > LIMIT - 1000
    assert kept["reason"] == (f"DecodeError: x [value truncated to its first "
                              f"{len(kept['value'])} of {len(over)} bytes, sha256 {digest}]")
    assert dict(cut.headers) == {VALUE_BYTES: str(len(over)).encode(),
                                 VALUE_SHA256: digest.encode()}
    assert (kept["key"], kept["partition"], kept["offset"]) == (b"cus-1", 3, 42)


@pytest.mark.parametrize("value_size,key_size", [
    (LIMIT * 100, 3), (LIMIT, LIMIT), (0, LIMIT * 3), (LIMIT * 2, LIMIT * 2)])
def test_any_value_and_key_fit_and_the_reason_stays(value_size: int, key_size: int) -> None:
    value, key = b"v" * value_size, b"k" * key_size
    cut = fit(letter(value, key, reason="r" * 50_000), encode, LIMIT)
    assert record_bytes(cut.key, cut.value, cut.headers) <= LIMIT
    kept = codec.decode(schemas.DEAD_LETTER, cut.value)
    assert kept["reason"].startswith("r" * MAX_REASON_CHARS + "… (50000 characters) [")
    assert value.startswith(kept["value"]) and key.startswith(kept["key"])
    assert cut.key == kept["key"]
    assert ("key truncated" in kept["reason"]) == (kept["key"] != key)


def test_a_limit_too_small_for_any_letter_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="cannot hold even an empty dead letter"):
        fit(letter(b"v" * 1000), encode, 100)


@pytest.mark.kafka
async def test_a_maximal_dead_letter_is_written_to_the_real_topic(settings: Settings) -> None:
    """The topic's limit read from the broker; a letter for a record at that limit fits."""
    k = settings.kafka
    topic = k.topic(ACTIONS_DLQ)
    limit = await asyncio.to_thread(topic_max_message_bytes, k, topic)
    assert limit == 1_048_588  # Kafka's default: the catalogue sets none
    original = bytes(range(256)) * (limit // 256)  # a record as large as the topic takes
    cut = fit(letter(original), encode, limit)
    assert cut.truncated
    producer = AIOKafkaProducer(bootstrap_servers=k.bootstrap_servers, max_request_size=limit,
                                enable_idempotence=True)
    await producer.start()
    try:
        await (await producer.send(topic, key=cut.key, value=cut.value, partition=0,
                                   headers=list(cut.headers)))
    finally:
        await producer.stop()
    [got] = await asyncio.to_thread(consume, k.bootstrap_servers, topic, 1)
    kept = codec.decode(schemas.DEAD_LETTER, got.value or b"")
    assert original.startswith(kept["value"]) and len(kept["value"]) > limit - 5_000
    assert hashlib.sha256(original).hexdigest() in kept["reason"]
