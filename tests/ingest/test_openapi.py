"""The OpenAPI 3.1 description of ingest, and Schemathesis against the live ingest.

The description is checked with ``openapi-spec-validator``. Schemathesis then sends
requests generated from it, valid and invalid, to a real ``signalbox ingest`` process
(API keys on, real broker): no answer may be a server error, every answer must match
the description, and no request the description calls invalid may be accepted. At the
end every record that reached Kafka must decode and evaluate with the pure engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import IngestSettings, Settings
from signalbox.common.topics import EVENTS_BILLING, EVENTS_USAGE
from signalbox.evaluator.engine import evaluate
from signalbox.evaluator.engine_records import event_from_record
from signalbox.evaluator.main import file_definitions
from signalbox.ingest.openapi import document
from signalbox.testing import free_port, service_env
from signalbox.testing.processes import ServiceProcess
from tests.ingest.support import read_topic

#: Refusals of a request the description calls invalid: 413 too (a batch over maxItems is
#: answered 413 batch_too_large, as the description says).
CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [400, 401, 403, 413, 415]}}})
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


def test_the_description_is_valid_openapi_3_1() -> None:
    doc = document(IngestSettings())
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    event_types = doc["components"]["schemas"]["Event"]["discriminator"]["mapping"]
    assert "payment.failed" in event_types
    assert "approval.decided" not in event_types  # internal: no producer may send it
    failed = doc["components"]["schemas"]["Event_payment_failed"]
    assert failed["properties"]["data"]["properties"]["currency"]["enum"][:2] == ["AED", "AFN"]
    assert failed["properties"]["event_id"]["maxLength"] == 256
    assert doc["paths"]["/v1/events"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in document(IngestSettings(auth="none"))["paths"]["/v1/events"]["post"]


@pytest.fixture
def live_ingest(settings: Settings, api_key: str, tmp_path: Path) -> Iterator[str]:
    """``signalbox ingest`` as a process, with API keys on; its base URL."""
    port = free_port()
    env = service_env(settings, INGEST_PORT=str(port), INGEST_AUTH="keys",
                      INGEST_KEYS_FILE=settings.ingest.keys_file)
    proc = ServiceProcess("ingest", env, tmp_path, port).start()
    try:
        proc.wait_ready()
        yield f"http://127.0.0.1:{port}"
    finally:
        assert proc.stop() == 0


def test_ingest_serves_its_description(live_ingest: str, settings: Settings) -> None:
    served = httpx.get(f"{live_ingest}/openapi.json", timeout=10).json()
    assert served == document(settings.ingest)


def test_schemathesis_against_the_live_ingest(live_ingest: str, settings: Settings,
                                             api_key: str) -> None:
    schema = schemathesis.openapi.from_dict(document(settings.ingest), config=CONFIG)
    operation = schema["/v1/events"]["POST"]
    statuses: Counter[str] = Counter()
    accepted: list[str] = []
    auth = {"Authorization": f"Bearer {api_key}"}

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @hypothesis_settings(max_examples=100, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        # The key is fixed (tests/ingest/test_auth.py covers wrong ones): every case is
        # about the body.
        @given(case=operation.as_strategy(generation_mode=mode, headers=auth),
               replay=st.just(mode))
        def run(case: Any, replay: GenerationMode) -> None:
            response = case.call(base_url=live_ingest, timeout=30)
            statuses[f"{replay.value} {response.status_code}"] += 1
            case.validate_response(response, checks=CHECKS, headers=auth)
            if response.status_code == 202:
                accepted.extend(response.json()["accepted"])

        run()

    print(f"\nschemathesis against the live ingest: {dict(sorted(statuses.items()))}")
    assert not [s for s in statuses if s.endswith(tuple(f" {c}" for c in range(500, 600)))]
    assert not [s for s in statuses if s.startswith("negative 2")]
    records = [*await_records(settings, EVENTS_BILLING), *await_records(settings, EVENTS_USAGE)]
    assert sorted(r["event_id"] for r in records) == sorted(accepted)
    automations = file_definitions(Settings.from_env({})).build()
    for record in records:
        evaluate(None, event_from_record(record), automations)


def await_records(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every record of a topic, decoded with the project's codec."""
    import asyncio

    codec = AvroCodec()
    return [codec.decode(schemas.EVENT, r.value)
            for r in asyncio.run(read_topic(settings, topic))]
