"""docs/delivery.md's retry table is what the drivers do (the README only links to it).

The HTTP rows are checked against a real loopback server answering every status from
200 to 599 through the drivers' one HTTP call; the SMTP rows against the email
driver's classification of real aiosmtplib errors; the connection rows against a
closed port and a server that never answers.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from signalbox.dispatcher.channels import email
from signalbox.dispatcher.channels.provider_http import call, retried_status
from signalbox.dispatcher.outcomes import InDoubtError, PermanentError, TransientError

ROOT = Path(__file__).resolve().parents[2]
OUTCOME = {TransientError: "retried", PermanentError: "failed", InDoubtError: "in doubt"}


def table() -> list[tuple[str, str, str]]:
    text = (ROOT / "docs" / "delivery.md").read_text("utf-8")
    start = text.index("| channel | answer or failure | outcome |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        channel, answer, outcome = (c.strip() for c in line.strip("|").split("|"))
        rows.append((channel, answer, outcome))
    return rows


def expected(channel: str, code: int) -> str:
    """The outcome the table gives ``code`` on a channel (``"any other"`` last)."""
    rows = [r for r in table() if r[0].startswith(channel)]
    for _, answer, outcome in sorted(rows, key=lambda r: "any other" in r[1]):
        specs = re.findall(r"`(\d)(\d\d|xx)`", answer)
        if any(f"{a}{b}" == str(code) or (b == "xx" and str(code)[0] == a) for a, b in specs):
            return outcome
    raise AssertionError(f"the table has no row for {channel} {code}")


def outcome_of(exc: BaseException) -> str:
    return next(o for kind, o in OUTCOME.items() if isinstance(exc, kind))


@pytest.fixture
async def http_server() -> AsyncIterator[str]:
    """Answers ``GET /<status>`` with that status; ``GET /silent`` never answers."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                path = line.split()[1].decode()
                while (await reader.readline()).strip():
                    pass
                if path == "/silent":
                    await asyncio.sleep(30)
                writer.write(f"HTTP/1.1 {path[1:]} X\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def test_every_http_status_has_the_outcome_the_table_gives_it(http_server: str) -> None:
    actual: dict[int, str] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        for status in range(200, 600):
            try:
                await call(client, "GET", f"{http_server}/{status}", "test")
                actual[status] = "delivered"
            except (TransientError, PermanentError, InDoubtError) as exc:
                actual[status] = outcome_of(exc)
    assert actual == {s: expected("HTTP", s) for s in range(200, 600)}
    for status in range(100, 200):  # informational: never a final answer from httpx
        assert not retried_status(status) and expected("HTTP", status) == "failed"


async def test_no_connection_is_retried_and_no_answer_after_sending_is_in_doubt(
        http_server: str) -> None:
    rows = {r[1]: r[2] for r in table() if r[0] == "any"}
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    async with httpx.AsyncClient(timeout=0.3) as client:
        with pytest.raises(TransientError) as refused:
            await call(client, "GET", f"http://127.0.0.1:{closed}/", "test")
        with pytest.raises(InDoubtError) as silent:
            await call(client, "GET", f"{http_server}/silent", "test")
    assert rows[next(k for k in rows if k.startswith("no connection"))] == \
        outcome_of(refused.value) == "retried"
    assert rows[next(k for k in rows if k.startswith("no answer in time"))] == \
        outcome_of(silent.value) == "in doubt"


@pytest.mark.parametrize("code", range(400, 600))
def test_every_smtp_reply_has_the_outcome_the_table_gives_it(code: int) -> None:
    failed = email._Failed("rcpt", False, aiosmtplib.SMTPResponseException(code, "reply"))
    assert outcome_of(email._classify(failed)) == expected("email", code)


def test_a_connection_lost_before_or_while_sending_the_message_data() -> None:
    lost = aiosmtplib.SMTPServerDisconnected("gone")
    assert outcome_of(email._classify(email._Failed("rcpt", False, lost))) == "retried"
    assert outcome_of(email._classify(email._Failed("data", False, lost))) == "in doubt"


def test_the_readme_names_no_retried_statuses_of_its_own() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    bullet = readme[readme.index("* **Retries without blocking.**"):]
    bullet = bullet[:bullet.index("\n* ")]
    assert "docs/delivery.md" in bullet
    assert not re.search(r"\b(408|429|[45]xx)\b", bullet)
