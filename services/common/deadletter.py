"""Dead-letter records: the reason and the original bytes, so nothing is lost.

A dead letter wraps the record that failed, so it is always larger than that
record; one that came close to the broker's limit would not fit, the write would
fail and the service would stop on it again after every restart. A letter that
would exceed the limit therefore keeps the first bytes of the value (then of the
key), and says in its reason and headers how large the original was and its
SHA-256, so an operator can match it with the producer's copy. Writing a dead
letter never fails for its size.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from signalbox.common.clock import now_ms
from signalbox.common.errors import SignalboxError
from signalbox.common.kafka import librdkafka_config
from signalbox.common.settings import KafkaSettings

#: Kafka's default ``max.message.bytes`` and the producers' default ``max_request_size``.
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
#: Reasons longer than this are cut: a reason explains, the payload is the evidence.
MAX_REASON_CHARS = 4_000
#: Headers of a truncated letter: the original sizes and SHA-256 digests (hex).
VALUE_BYTES, VALUE_SHA256 = "signalbox-value-bytes", "signalbox-value-sha256"
KEY_BYTES, KEY_SHA256 = "signalbox-key-bytes", "signalbox-key-sha256"


def dead_letter(
    *,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    error_type: str,
    reason: str,
    failed_at: int | None = None,
) -> dict[str, Any]:
    """A ``signalbox.DeadLetter`` record for a message that could not be processed."""
    return {
        "service": service,
        "source_topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "value": value,
        "error_type": error_type,
        "reason": _bounded(reason),
        "failed_at": now_ms() if failed_at is None else failed_at,
    }


@dataclass(frozen=True)
class Letter:
    """A dead letter ready to write: Kafka key, encoded value and headers."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def truncated(self) -> bool:
        return bool(self.headers)


def record_bytes(key: bytes | None, value: bytes | None,
                 headers: tuple[tuple[str, bytes], ...] = ()) -> int:
    """The size of one record in its own batch, as the producer and broker count it."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers)))


def fit(record: Mapping[str, Any], encode: Callable[[Mapping[str, Any]], bytes],
        max_bytes: int) -> Letter:
    """``record`` (from :func:`dead_letter`) encoded to fit ``max_bytes``, written with
    its original key; when it would not fit, value then key are cut to what does."""
    key, value = record["key"], record["value"]
    whole = Letter(key, encode(record))
    if record_bytes(whole.key, whole.value) <= max_bytes:
        return whole
    reason = record["reason"]  # bounded by dead_letter

    def cut(kept_key: bytes | None, kept_value: bytes | None) -> Letter:
        headers: list[tuple[str, bytes]] = []
        notes: list[str] = []
        for name, data, kept, size_h, sha_h in (
                ("value", value, kept_value, VALUE_BYTES, VALUE_SHA256),
                ("key", key, kept_key, KEY_BYTES, KEY_SHA256)):
            if data is not None and kept != data:
                digest = hashlib.sha256(data).hexdigest()
                headers += [(size_h, str(len(data)).encode()), (sha_h, digest.encode())]
                notes.append(f"{name} truncated to its first {len(kept or b'')} of "
                             f"{len(data)} bytes, sha256 {digest}")
        letter = {**record, "key": kept_key, "value": kept_value,
                  "reason": f"{reason} [{'; '.join(notes)}]"}
        return Letter(kept_key, encode(letter), tuple(headers))

    # Both cut to nothing: the largest reason and headers; what is left is the bytes' room.
    empty = cut(b"" if key is not None else None, b"" if value is not None else None)
    fixed = record_bytes(empty.key, empty.value, empty.headers)
    room = max_bytes - fixed - 20  # length prefixes grow by a few bytes with the data
    if room < 0:
        raise ValueError(f"max_bytes {max_bytes} cannot hold even an empty dead letter "
                         f"({fixed} bytes)")
    # The key is written twice (Kafka key and field) and kept whole unless it alone is
    # too large; the value takes the rest.
    kept_key = key[:room // 2] if key is not None else None
    room -= 2 * len(kept_key or b"")
    kept_value = value[:room] if value is not None else None
    letter = cut(kept_key, kept_value)
    # The estimate above assumed the longest reason and headers: give the value the rest.
    for _ in range(3):
        slack = max_bytes - record_bytes(letter.key, letter.value, letter.headers)
        if slack == 0 or value is None or kept_value == value:
            break
        longer = value[:max(0, len(kept_value or b"") + slack)]
        candidate = cut(kept_key, longer)
        if record_bytes(candidate.key, candidate.value, candidate.headers) > max_bytes:
            break
        letter, kept_value = candidate, longer
    assert record_bytes(letter.key, letter.value, letter.headers) <= max_bytes
    return letter


def _bounded(reason: str) -> str:
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return f"{reason[:MAX_REASON_CHARS]}… ({len(reason)} characters)"


class LimitUnknown(SignalboxError, RuntimeError):
    """The broker did not say a topic's message limit; signalbox does not guess one."""

    what = "broker message limit"


def topic_max_message_bytes(kafka: KafkaSettings, topic: str, timeout_s: float = 15.0) -> int:
    """The topic's ``max.message.bytes`` as the broker applies it (its own setting or the
    broker's default); blocking, so call it off the event loop. Every service reads its
    limits here: ingest's size budget, the evaluator's and the dispatcher's dead letters.

    A topic created a moment ago may be unknown to the broker answering for a while:
    asked again until ``timeout_s``; then a :class:`LimitUnknown` says which topic.
    """
    # log_level 3: librdkafka's informational lines (a purged background queue on close)
    # would go raw to stderr, between the service's JSON log lines.
    admin = AdminClient({**librdkafka_config(kafka), "log_level": 3})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            configs = admin.describe_configs([resource], request_timeout=timeout_s)[
                resource].result(timeout=timeout_s)
            break
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise LimitUnknown(f"cannot read max.message.bytes of topic {topic!r}: "
                                   f"{exc} (does it exist? signalbox topics apply)",
                                   where=topic) from exc
            time.sleep(0.2)
    entry = configs.get("max.message.bytes")
    if entry is None or entry.value is None:
        raise LimitUnknown(f"topic {topic!r}: the broker did not report max.message.bytes",
                           where=topic)
    return int(entry.value)
