"""Avro encoding for every record on Kafka.

Default framing is the Avro specification's *single-object encoding*
(``C3 01`` + 8-byte little-endian CRC-64-AVRO fingerprint + binary datum), so a
fresh machine needs nothing but Kafka. The writer schema is found by its
fingerprint among the current and archived schemas and resolved against the
current reader schema, which is how old records stay readable after evolution.

With a :class:`SchemaRegistry` (``SCHEMA_REGISTRY_URL``) records are written in
the Confluent wire format (``00`` + 4-byte big-endian schema id + datum) and the
writer schema of a record is looked up by its id. Either framing is read in
either mode, so a cluster can move to a registry without a flag day.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from typing import Any, Protocol

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.validation import ValidationError
from fastavro.validation import validate as check

from signalbox.common import schemas
from signalbox.common.errors import SignalboxError
from signalbox.common.schemas import SchemaVersion

MAGIC = b"\xc3\x01"
HEADER_LEN = len(MAGIC) + 8
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_LEN = 5


class SchemaRegistry(Protocol):
    """Schema ids for the Confluent wire format (see :mod:`signalbox.common.registry`)."""

    def id_for(self, version: SchemaVersion) -> int:
        """The registry's id of ``version``, registering it if needed."""
        ...

    def schema_for(self, schema_id: int) -> SchemaVersion:
        """The writer schema with ``schema_id``; raises ``LookupError`` when unknown."""
        ...

    def close(self) -> None:
        """Release the connections to the registry."""
        ...


class DecodeError(SignalboxError, ValueError):
    """Bytes that are not a readable record of the expected type. ``why`` says why
    (``reason`` is the same text)."""

    what = "record"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EncodeError(SignalboxError, ValueError):
    """A record that does not fit its schema."""

    what = "record"


class AvroCodec:
    """Encodes and decodes the records named in :mod:`signalbox.common.schemas`."""

    def __init__(
        self,
        current: Mapping[str, SchemaVersion] | None = None,
        archived: tuple[SchemaVersion, ...] | None = None,
        registry: SchemaRegistry | None = None,
    ) -> None:
        self.registry = registry
        self._current = dict(current if current is not None else schemas.current())
        writers = list(archived if archived is not None else schemas.history())
        writers.extend(self._current.values())
        self._writers: dict[bytes, SchemaVersion] = {w.fingerprint: w for w in writers}

    def close(self) -> None:
        """Close the registry's connections (a codec without a registry holds none)."""
        if self.registry is not None:
            self.registry.close()

    def schema(self, name: str) -> SchemaVersion:
        try:
            return self._current[name]
        except KeyError:
            raise KeyError(f"no Avro schema named {name!r}") from None

    def versions(self, name: str) -> list[SchemaVersion]:
        """Every writer schema of record ``name`` this codec reads (current and archived)."""
        return [w for w in self._writers.values() if w.name == name]

    def encode(self, name: str, record: Mapping[str, Any], validate: bool = True) -> bytes:
        """``record`` written with the current schema ``name``, framed for the mode.

        ``validate=False`` skips fastavro's full type check (most of the cost) for
        records built by code held to the schema by tests; the writer still refuses
        a missing field or a long out of range, but writes a float as an int."""
        version = self.schema(name)
        buf = io.BytesIO()
        if self.registry is None:
            buf.write(MAGIC)
            buf.write(version.fingerprint)
        else:
            buf.write(CONFLUENT_MAGIC)
            buf.write(struct.pack(">I", self.registry.id_for(version)))
        try:
            # The writer neither range-checks ints nor rejects floats or bools for them.
            if validate:
                check(record, version.io, raise_errors=True)
            schemaless_writer(buf, version.io, record, strict_allow_default=True)
        except ValidationError as exc:
            raise EncodeError(f"{name}: {'; '.join(map(str, exc.errors))}") from exc
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise EncodeError(f"{name}: {exc}") from exc
        return buf.getvalue()

    def decode(self, name: str, data: bytes | None, plain_times: bool = False
               ) -> dict[str, Any]:
        """Decode a ``name`` record, resolving its (possibly older) writer schema.

        Union branches of records come back as ``(full name, record)`` tuples, so
        the payload's type is never guessed from its shape. ``plain_times``: a
        ``timestamp-millis`` comes back as its epoch milliseconds, not a datetime.
        """
        reader = self.schema(name)
        if not data:
            empty = "tombstone" if data is None else "0 bytes"
            raise DecodeError(f"empty value ({empty}) where a record was expected")
        if data[:1] == CONFLUENT_MAGIC:
            writer, start = self._registry_writer(data), CONFLUENT_HEADER_LEN
        else:
            writer, start = self._fingerprint_writer(data), HEADER_LEN
        if writer.name != reader.name:
            raise DecodeError(f"expected a {reader.name} record, got a {writer.name} record")
        buf = io.BytesIO(data)
        buf.seek(start)
        try:
            record = schemaless_reader(
                buf,
                writer.io_plain if plain_times else writer.io,
                # no resolution to run when the record was written with the current schema
                None if writer is reader else reader.io_plain if plain_times else reader.io,
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

    def _fingerprint_writer(self, data: bytes) -> SchemaVersion:
        if data[:2] != MAGIC:
            also = " or Confluent wire format 00" if self.registry is not None else ""
            raise DecodeError(f"not Avro single-object encoding (expected header c301{also}, "
                              f"got {data[:2].hex()!r})")
        if len(data) < HEADER_LEN:
            raise DecodeError(f"truncated header: {len(data)} bytes of the {HEADER_LEN} needed")
        writer = self._writers.get(data[2:HEADER_LEN])
        if writer is None:
            raise DecodeError(f"unknown writer schema fingerprint {data[2:HEADER_LEN].hex()}")
        return writer

    def _registry_writer(self, data: bytes) -> SchemaVersion:
        if self.registry is None:
            raise DecodeError("Confluent wire format (magic byte 00) but no schema registry "
                              "is configured (SCHEMA_REGISTRY_URL)")
        if len(data) < CONFLUENT_HEADER_LEN:
            raise DecodeError(f"truncated header: {len(data)} bytes of the "
                              f"{CONFLUENT_HEADER_LEN} needed")
        (schema_id,) = struct.unpack(">I", data[1:CONFLUENT_HEADER_LEN])
        try:
            return self.registry.schema_for(schema_id)
        except LookupError as exc:
            raise DecodeError(f"schema id {schema_id}: {exc}") from exc


def union_branch(value: Any, only: str) -> tuple[str, dict[str, Any]]:
    """``(record name, record)`` of a decoded union-of-records field.

    fastavro names the branch only where the union has more than one record;
    ``only`` names it where the union (still) has a single record.
    """
    if isinstance(value, tuple):
        return str(value[0]), dict(value[1])
    return only, dict(value)
