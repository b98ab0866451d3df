"""The optional registry mode against a real Confluent-compatible registry (Apicurio),
and the client's own answers through its transport seam (no registry process)."""

from __future__ import annotations

import gc
import struct
import warnings
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.registry import ConfluentRegistry, RegistryError, codec_for
from signalbox.common.settings import RegistrySettings
from signalbox.testing import InMemoryRegistry, free_port
from signalbox.testing.fakes.rest import FakeRest

# The registry marker follows the schema_registry_url fixture (tests/conftest.py): the
# tests below that need no registry process run in `make unit`.

TICK = {"tick_id": "0:60000", "partition": 0, "at": 60_000, "interval_ms": 60_000,
        "emitted_by": "test"}


@pytest.fixture
def codec(schema_registry_url: str) -> Iterator[AvroCodec]:
    codec = codec_for(RegistrySettings(schema_registry_url))
    yield codec
    assert isinstance(codec.registry, ConfluentRegistry)
    codec.registry.close()


def test_every_current_schema_is_registered_under_its_record_name(
    codec: AvroCodec, schema_registry_url: str
) -> None:
    subjects = httpx.get(f"{schema_registry_url}/subjects").json()
    assert set(schemas.current()) <= set(subjects)


def test_records_use_the_confluent_wire_format_with_the_registry_id(
    codec: AvroCodec, schema_registry_url: str
) -> None:
    data = codec.encode(schemas.TICK, TICK)
    latest = httpx.get(f"{schema_registry_url}/subjects/{schemas.TICK}/versions/latest").json()
    assert data[0] == 0 and struct.unpack(">I", data[1:5])[0] == latest["id"]
    assert codec.decode(schemas.TICK, data)["tick_id"] == "0:60000"


def test_a_fresh_process_reads_records_by_schema_id(
    codec: AvroCodec, schema_registry_url: str
) -> None:
    data = codec.encode(schemas.TICK, TICK)
    with closing(ConfluentRegistry(schema_registry_url)) as fresh:
        cold = AvroCodec(registry=fresh)  # nothing cached
        assert cold.decode(schemas.TICK, data)["partition"] == 0


def test_both_framings_are_read_in_registry_mode(codec: AvroCodec) -> None:
    single_object = AvroCodec().encode(schemas.TICK, TICK)
    assert codec.decode(schemas.TICK, single_object)["tick_id"] == "0:60000"


def test_registry_framing_without_a_registry_is_a_clear_error(codec: AvroCodec) -> None:
    with pytest.raises(DecodeError, match="no schema registry is configured"):
        AvroCodec().decode(schemas.TICK, codec.encode(schemas.TICK, TICK))


def test_unknown_schema_id(codec: AvroCodec) -> None:
    with pytest.raises(DecodeError, match="schema id 987654"):
        codec.decode(schemas.TICK, b"\x00" + struct.pack(">I", 987654) + b"\x00")


def test_a_registry_that_is_down_stops_the_service_at_start_up() -> None:
    down = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    with pytest.raises(RegistryError, match="POST /subjects/signalbox"):
        codec_for(RegistrySettings(down))


def test_a_registry_refusing_at_start_up_leaves_no_connection_open() -> None:
    """The service stops; the kept-alive connection to the registry is closed with it,
    not left to the garbage collector (an unclosed socket)."""
    with FakeRest() as refusing, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        refusing.fail_next(1, status=503)
        with pytest.raises(RegistryError, match="HTTP 503"):
            codec_for(RegistrySettings(refusing.url))
        gc.collect()
    assert [w for w in seen if issubclass(w.category, ResourceWarning)] == []


# The client alone, through its transport seam: no registry process.

def registry_codec(registry: InMemoryRegistry) -> AvroCodec:
    return AvroCodec(registry=ConfluentRegistry("http://registry.invalid/apis/ccompat/v7",
                                                transport=registry.transport()))


def test_a_record_is_read_back_by_a_fresh_client_through_the_schema_id() -> None:
    registry = InMemoryRegistry()
    data = registry_codec(registry).encode(schemas.TICK, TICK)
    assert data[0] == 0 and struct.unpack(">I", data[1:5])[0] in registry.schemas
    decoded = registry_codec(registry).decode(schemas.TICK, data)  # nothing cached
    assert (decoded["tick_id"], decoded["partition"]) == ("0:60000", 0)


@pytest.mark.parametrize("status", [409, 422, 500, 503])
def test_a_registry_refusing_a_schema_is_an_error_naming_the_call_and_status(
        status: int) -> None:
    registry = InMemoryRegistry()
    registry.fail_with = status
    with pytest.raises(RegistryError, match=f"POST /subjects/signalbox.Tick/versions: "
                                            f"HTTP {status}: failing as told"):
        registry_codec(registry).encode(schemas.TICK, TICK)


def test_an_id_the_registry_does_not_know_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="schema id 42"):
        registry_codec(InMemoryRegistry()).decode(
            schemas.TICK, b"\x00" + struct.pack(">I", 42) + b"\x00")
