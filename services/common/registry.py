"""A Confluent-compatible schema registry client, and the codec for the settings.

Subjects follow Confluent's *RecordNameStrategy* (the subject is the record's
full name, e.g. ``signalbox.Event``), so one schema serves every topic that
carries the record and the codec needs no topic to encode. Works with
Confluent Schema Registry, Apicurio (``…/apis/ccompat/v7``) and Karapace.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import structlog

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.errors import SignalboxError
from signalbox.common.schemas import SchemaVersion
from signalbox.common.settings import RegistrySettings

log = structlog.get_logger(__name__)
_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(SignalboxError, RuntimeError):
    """The registry refused a request or could not be reached."""

    what = "schema registry request"


class ConfluentRegistry:
    """Registers and fetches schemas; both directions are cached for the process."""

    def __init__(self, url: str, username: str = "", password: str = "",
                 timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        auth = httpx.BasicAuth(username, password) if username else None
        self._http = httpx.Client(base_url=url.rstrip("/"), auth=auth, timeout=timeout_s,
                                  headers={"Accept": _CONTENT_TYPE}, transport=transport)
        self._ids: dict[bytes, int] = {}
        self._by_id: dict[int, SchemaVersion] = {}
        self._lock = threading.Lock()

    def id_for(self, version: SchemaVersion) -> int:
        with self._lock:
            known = self._ids.get(version.fingerprint)
        if known is not None:
            return known
        body = {"schema": json.dumps(version.raw, separators=(",", ":")), "schemaType": "AVRO"}
        response = self._request("POST", f"/subjects/{version.name}/versions", json=body)
        schema_id = int(response["id"])
        with self._lock:
            self._ids[version.fingerprint] = schema_id
            self._by_id.setdefault(schema_id, version)
        log.info("schema_registered", subject=version.name, schema_id=schema_id)
        return schema_id

    def schema_for(self, schema_id: int) -> SchemaVersion:
        with self._lock:
            known = self._by_id.get(schema_id)
        if known is not None:
            return known
        try:
            response = self._request("GET", f"/schemas/ids/{schema_id}")
        except RegistryError as exc:
            raise LookupError(f"registry: {exc}") from exc
        version = schemas.parse(json.loads(str(response["schema"])),
                                f"registry schema id {schema_id}")
        with self._lock:
            self._by_id[schema_id] = version
        return version

    def _request(self, method: str, path: str, json: object = None) -> dict[str, Any]:
        try:
            r = self._http.request(method, path, json=json,
                                   headers={"Content-Type": _CONTENT_TYPE} if json else None)
        except httpx.HTTPError as exc:
            raise RegistryError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if r.status_code >= 400:
            raise RegistryError(f"{method} {path}: HTTP {r.status_code}: {r.text[:300]}")
        body = r.json()
        if not isinstance(body, dict):
            raise RegistryError(f"{method} {path}: unexpected answer {body!r:.200}")
        return body

    def close(self) -> None:
        self._http.close()


def codec_for(registry: RegistrySettings) -> AvroCodec:
    """The codec of a service: single-object encoding, or the registry's wire format.

    With a registry, every current schema is registered at start-up, so a
    registry that is down stops the service before it takes work instead of
    failing records one by one.
    """
    if not registry.url:
        return AvroCodec()
    client = ConfluentRegistry(registry.url, registry.username, registry.password)
    try:
        for version in schemas.current().values():
            client.id_for(version)
    except BaseException:
        client.close()  # the service does not start: its connections go now, not at exit
        raise
    return AvroCodec(registry=client)
