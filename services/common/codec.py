"""Avro encoding for every record on Kafka.

Default framing is the Avro specification's *single-object encoding*
(``C3 01`` + 8-byte little-endian CRC-64-AVRO fingerprint + binary datum), so a
fresh machine needs nothing but Kafka. The writer schema is found by its
fingerprint among the current and archived schemas and resolved against the
current reader schema, which is how old records stay readable after evolution.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.validation import ValidationError, validate

from signalbox.common import schemas
from signalbox.common.schemas import SchemaVersion

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8


class DecodeError(ValueError):
    """Bytes that are not a readable record of the expected type. ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EncodeError(ValueError):
    """A record that does not fit its schema."""


class AvroCodec:
    """Encodes and decodes the records named in :mod:`signalbox.common.schemas`."""

    def __init__(
        self,
        current: Mapping[str, SchemaVersion] | None = None,
        archived: tuple[SchemaVersion, ...] | None = None,
    ) -> None:
        self._current = dict(current if current is not None else schemas.current())
        writers = list(archived if archived is not None else schemas.history())
        writers.extend(self._current.values())
        self._writers: dict[bytes, SchemaVersion] = {w.fingerprint: w for w in writers}

    def schema(self, name: str) -> SchemaVersion:
        try:
            return self._current[name]
        except KeyError:
            raise KeyError(f"no Avro schema named {name!r}") from None

    def encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        """Single-object encoding of ``record`` with the current schema ``name``."""
        version = self.schema(name)
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(version.fingerprint)
        try:
            # The writer neither range-checks ints nor rejects floats or bools for them.
            validate(record, version.parsed, raise_errors=True)
            schemaless_writer(buf, version.parsed, record, strict_allow_default=True)
        except ValidationError as exc:
            raise EncodeError(f"{name}: {'; '.join(map(str, exc.errors))}") from exc
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise EncodeError(f"{name}: {exc}") from exc
        return buf.getvalue()

    def decode(self, name: str, data: bytes | None) -> dict[str, Any]:
        """Decode a single-object-encoded ``name`` record, resolving older writer schemas.

        Union branches of records come back as ``(full name, record)`` tuples, so
        the payload's type is never guessed from its shape.
        """
        reader = self.schema(name)
        if not data:
            empty = "tombstone" if data is None else "0 bytes"
            raise DecodeError(f"empty value ({empty}) where a record was expected")
        if data[:2] != MAGIC:
            raise DecodeError(
                f"not Avro single-object encoding (expected header c301, got {data[:2].hex()!r})"
            )
        if len(data) < HEADER_LEN:
            raise DecodeError(f"truncated header: {len(data)} bytes of the {HEADER_LEN} needed")
        writer = self._writers.get(data[2:HEADER_LEN])
        if writer is None:
            raise DecodeError(f"unknown writer schema fingerprint {data[2:HEADER_LEN].hex()}")
        if writer.name != reader.name:
            raise DecodeError(f"expected a {reader.name} record, got a {writer.name} record")
        buf = io.BytesIO(data)
        buf.seek(HEADER_LEN)
        try:
            record = schemaless_reader(
                buf,
                writer.parsed,
                reader.parsed,
                return_record_name=True,
                return_record_name_override=True,
            )
        except SchemaResolutionError as exc:
            raise DecodeError(
                f"{writer.source} cannot be read as the current {reader.name}: {exc}"
            ) from exc
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError(f"corrupt {reader.name} datum: {type(exc).__name__}: {exc}") from exc
        if buf.tell() != len(data):
            raise DecodeError(f"{len(data) - buf.tell()} trailing bytes after the {reader.name}")
        if not isinstance(record, dict):
            raise DecodeError(f"{reader.name} did not decode to a record")
        return record


def union_branch(value: Any, only: str) -> tuple[str, dict[str, Any]]:
    """``(record name, record)`` of a decoded union-of-records field.

    fastavro names the branch only where the union has more than one record;
    ``only`` names it where the union (still) has a single record.
    """
    if isinstance(value, tuple):
        return str(value[0]), dict(value[1])
    return only, dict(value)
