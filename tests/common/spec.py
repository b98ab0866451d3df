"""The Avro specification's single-object framing, written from the spec for the tests.

The CRC-64-AVRO (Rabin) fingerprint follows the reference code in the Avro
specification ("Schema Fingerprints"), independently of fastavro, so the codec's
headers are checked against the spec rather than against the library that made them.
"""

from __future__ import annotations

import io
from typing import Any, cast

from fastavro import parse_schema, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from signalbox.common.schemas import Schema, SchemaVersion

MAGIC = b"\xc3\x01"
EMPTY64 = 0xC15D213AA4D7A795


def _fp_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY64 & -(fp & 1))
        table.append(fp)
    return tuple(table)


_FP_TABLE = _fp_table()


def rabin64(data: bytes) -> int:
    """The spec's ``fingerprint64``, as an unsigned 64-bit integer."""
    fp = EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


def header_fingerprint(canonical: str) -> bytes:
    """The 8 fingerprint bytes of a single-object header: CRC-64-AVRO, little-endian."""
    return rabin64(canonical.encode("utf-8")).to_bytes(8, "little")


def schema_version(raw: Schema, source: str = "test") -> SchemaVersion:
    """A SchemaVersion for a schema the test made up (e.g. a hypothetical next version)."""
    parsed = cast(Schema, parse_schema(raw, _write_hint=False))
    name = f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".")
    return SchemaVersion(name, source, raw, parsed,
                         header_fingerprint(to_parsing_canonical_form(parsed)))


def single_object(writer: SchemaVersion, datum: Any) -> bytes:
    """``datum`` written with ``writer`` in single-object encoding, without the codec."""
    buf = io.BytesIO()
    schemaless_writer(buf, writer.io, datum)
    return MAGIC + writer.fingerprint + buf.getvalue()
