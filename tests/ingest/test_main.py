"""``signalbox ingest`` as operators run it: a process that serves, logs JSON, and exits
cleanly on SIGTERM after flushing what it accepted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING
from signalbox.testing import eventually
from tests.ingest.support import read_topic, readiness
from tests.support.events import payment_failed

pytestmark = pytest.mark.kafka


async def next_log(stream: asyncio.StreamReader, event: str, seen: list[dict[str, Any]]
                   ) -> dict[str, Any]:
    """Read JSON log lines until one for ``event``; every line must be JSON."""
    while True:
        line = await stream.readline()
        assert line, f"the process ended before logging {event!r}: {seen}"
        entry: dict[str, Any] = json.loads(line)
        seen.append(entry)
        if entry.get("event") == event:
            return entry


def keys_command(env: dict[str, str], *args: str) -> str:
    """``signalbox keys ...`` as an operator runs it; its standard output."""
    done = subprocess.run([sys.executable, "-m", "signalbox", "keys", *args], env=env,
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


async def test_serves_then_stops_cleanly_on_sigterm(settings: Settings, tmp_path: Path) -> None:
    k = settings.kafka
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": k.bootstrap_servers,
           "SIGNALBOX_TOPIC_PREFIX": k.topic_prefix, "SIGNALBOX_PARTITIONS": str(k.partitions),
           "SIGNALBOX_BIND_HOST": "127.0.0.1", "INGEST_PORT": "0", "LOG_FORMAT": "json",
           "INGEST_KEYS_FILE": str(tmp_path / "keys.json")}
    env.pop("INGEST_AUTH", None)  # the default: keys required
    env.pop("SCHEMA_REGISTRY_URL", None)  # single-object encoding, decoded below
    old_key = keys_command(env, "create", "--name", "billing", "--types", "payment.*")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signalbox", "ingest", env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    logs: list[dict[str, Any]] = []
    try:
        listening = await asyncio.wait_for(next_log(proc.stderr, "ingest_listening", logs), 60)
        base = f"http://127.0.0.1:{listening['port']}"
        async with aiohttp.ClientSession() as http:
            status, _ = await readiness(lambda: http.get(f"{base}/readyz"))
            assert status == 200
            async with http.post(f"{base}/v1/events",
                                 json=[payment_failed(event_id="evt_main")]) as anonymous:
                assert anonymous.status == 401
            async with http.post(f"{base}/v1/events", json=[payment_failed(event_id="evt_main")],
                                 headers={"Authorization": f"Bearer {old_key}"}) as accepted:
                assert accepted.status == 202
                assert await accepted.json() == {"accepted": ["evt_main"]}
            # Rotation while it runs: a second key for the producer, then the first revoked.
            new_key = keys_command(env, "create", "--name", "billing", "--types", "payment.*")
            keys_command(env, "revoke", old_key.split("_")[1])
            assert await refused_within(http, base, old_key) == 401
            async with http.post(f"{base}/v1/events", json=payment_failed(event_id="evt_new"),
                                 headers={"Authorization": f"Bearer {new_key}"}) as accepted:
                assert accepted.status == 202

        proc.send_signal(signal.SIGTERM)
        stdout, rest = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    logs += [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == 0, logs
    assert stdout == b""
    events = [entry["event"] for entry in logs]
    assert events.index("ingest_listening") < events.index("shutdown_requested") \
        < events.index("ingest_stopping") < events.index("ingest_stopped")
    assert {entry["service"] for entry in logs} == {"ingest"}
    assert not [entry for entry in logs if entry["level"] in ("error", "critical")]
    records = await read_topic(settings, EVENTS_BILLING)
    assert [r.key for r in records] == [b"cus_1", b"cus_1"]
    decoded = [AvroCodec().decode(schemas.EVENT, r.value) for r in records]
    assert [(e["event_id"], e["source"]) for e in decoded] == [("evt_main", "billing"),
                                                               ("evt_new", "billing")]
    assert {tuple(r.headers) for r in records} == {(("signalbox-producer", b"billing"),)}


async def refused_within(http: aiohttp.ClientSession, base: str, key: str,
                         within_s: float = 10.0) -> int:
    """The status for ``key`` once it is 401 (ingest re-reads its keys every second), or
    the last one after ``within_s``. The body is an empty batch: nothing is ever written."""
    async def status() -> int:
        async with http.post(f"{base}/v1/events", json=[],
                             headers={"Authorization": f"Bearer {key}"}) as answer:
            return answer.status

    return await eventually(status, lambda code: code == 401, within_s=within_s, every_s=0.2)
