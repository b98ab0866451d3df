"""Exports: one record uploaded as a file to an FTP, FTPS or SFTP server.

The file is CSV (a header line and one row, RFC 4180, CRLF) or JSON lines (one
object). Its name comes from the command's ``filename`` template, rendered in the
sandbox with ``command_id``, ``customer_id``, ``automation_id``, ``date``
(``YYYY-MM-DD`` of ``issued_at``) and the record's fields; it must be a plain
name (no ``/``, not hidden). Upload is atomic: the data goes to
``.<name>.<id>.part`` in the target directory, then is renamed to ``<name>``, so a
consumer polling the directory never picks up half a file. FTPS is explicit
(``AUTH TLS``, then ``PROT P`` for data), with the system trust store or the
target's ``ca_file``; SFTP checks the host key against the target's ``known_hosts``
file, or ``~/.ssh/known_hosts`` like ``ssh`` (an unknown host is refused).

Failure classes follow the phase: before the rename nothing is visible, so
connection problems and 4xx replies are transient and 5xx replies (bad login,
no permission) permanent; if the connection is lost while the rename is in
flight, the file may be there: in doubt.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import posixpath
import ssl
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

import aioftp
import asyncssh

from signalbox.common.action_command import Command, ExportCommand
from signalbox.dispatcher.channels.base import action_of
from signalbox.dispatcher.channels.recipients import recipients_of
from signalbox.dispatcher.channels.tls import untrusted
from signalbox.dispatcher.outcomes import (
    Delivery,
    InDoubtError,
    PermanentError,
    TransientError,
)
from signalbox.dispatcher.providers import ExportTarget
from signalbox.dispatcher.templates import TemplateStore


def file_body(fmt: str, record: Mapping[str, str]) -> bytes:
    """The file's bytes: CSV header and row, or one JSON line."""
    if fmt == "jsonl":
        return json.dumps(dict(record), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(record))
    writer.writerow(list(record.values()))
    return out.getvalue().encode()


class _Phase:
    """Where an upload is, so that a failure can be classified."""

    def __init__(self, target: ExportTarget) -> None:
        self.target = target
        self.now = "connect"

    def error(self, exc: BaseException) -> Exception:
        where = f"export {self.target.name} ({self.target.protocol}://{self.target.host}:" \
                f"{self.target.port}) during {self.now}"
        code = _reply_code(exc)
        if code is not None and code >= 500:
            return PermanentError(f"{where}: server replied {code}: {_message(exc)}")
        if isinstance(exc, asyncssh.PermissionDenied | asyncssh.SFTPPermissionDenied):
            return PermanentError(f"{where}: permission denied: {_message(exc)}")
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return PermanentError(f"{where}: host key not verifiable: {_message(exc)}")
        if untrusted(exc):
            return PermanentError(f"{where}: TLS certificate not trusted: {_message(exc)}")
        if self.now == "rename" and code is None:
            return InDoubtError(f"{where}: connection lost while renaming; the file may be "
                                f"in place: {type(exc).__name__}: {_message(exc)}")
        return TransientError(f"{where}: {type(exc).__name__}: {_message(exc)}")


def _reply_code(exc: BaseException) -> int | None:
    if isinstance(exc, aioftp.StatusCodeError):
        try:
            return int(str(exc.received_codes[0]))
        except (ValueError, IndexError):
            return None
    if isinstance(exc, asyncssh.SFTPError) and not isinstance(exc, asyncssh.SFTPConnectionLost):
        return 550  # the server answered with an error status: not a lost connection
    return None


def _message(exc: BaseException) -> str:
    if isinstance(exc, aioftp.StatusCodeError):
        return " ".join(exc.info).strip() or str(exc)
    return str(exc) or type(exc).__name__


async def _store(client: aioftp.Client, path: str, data: bytes) -> None:
    """What ``client.upload_stream(path)`` does, but a STOR the server refuses (550: no
    such directory) closes the data connection: aioftp leaves it open (an unclosed
    socket per refused upload until the garbage collector finds it)."""
    reader, writer = await client.get_passive_connection("I")
    try:
        await client.command(f"STOR {path}", "1xx")
    except BaseException:
        writer.close()
        raise
    stream = aioftp.DataConnectionThrottleStreamIO(
        client, reader, writer, throttles={"_": client.throttle}, timeout=client.socket_timeout)
    async with stream:
        await stream.write(data)


async def _ftp(target: ExportTarget, temp: str, final: str, data: bytes, phase: _Phase) -> None:
    client = aioftp.Client(socket_timeout=target.timeout_s, connection_timeout=target.timeout_s,
                           path_timeout=target.timeout_s)
    try:
        await client.connect(target.host, target.port)
        if target.protocol == "ftps":
            phase.now = "tls"
            context = ssl.create_default_context(cafile=target.ca_file or None)
            await client.upgrade_to_tls(context)
        phase.now = "login"
        await client.login(target.user, target.password)
        phase.now = "upload"
        await _store(client, temp, data)
        phase.now = "rename"
        await client.rename(temp, final)
        phase.now = "quit"
        await client.quit()
    finally:
        client.close()


async def _sftp(target: ExportTarget, temp: str, final: str, data: bytes, phase: _Phase) -> None:
    async with asyncssh.connect(
            target.host, target.port, username=target.user,
            password=target.password or None, agent_path=None,
            client_keys=[target.private_key] if target.private_key else None,
            known_hosts=target.known_hosts or (),  # () : ~/.ssh/known_hosts, as ssh does
            connect_timeout=target.timeout_s) as conn:
        phase.now = "login"
        async with conn.start_sftp_client() as sftp:
            phase.now = "upload"
            async with sftp.open(temp, "wb") as f:
                await f.write(data)
            phase.now = "rename"
            try:  # replaces an earlier upload of the same name, like FTP's RNTO
                await sftp.posix_rename(temp, final)
            except asyncssh.SFTPOpUnsupported:
                await sftp.rename(temp, final)
            phase.now = "quit"


Uploader = Callable[[ExportTarget, str, str, bytes, _Phase], Awaitable[None]]


class ExportChannel:
    name = "export"

    def __init__(self, targets: Mapping[str, ExportTarget], templates: TemplateStore) -> None:
        self._targets = dict(targets)
        self._templates = templates

    def recipients(self, command: Command) -> tuple[str, ...]:
        return recipients_of(command)

    def _target(self, command: Command) -> ExportTarget:
        name = action_of(command, ExportCommand).target
        try:
            return self._targets[name]
        except KeyError:
            raise PermanentError(f"export target {name!r} is not configured (configured: "
                                 f"{', '.join(sorted(self._targets)) or 'none'})") from None

    def endpoint(self, command: Command) -> str:
        name = action_of(command, ExportCommand).target
        t = self._targets.get(name)
        return f"{t.host}:{t.port}" if t else f"export:{name}"

    def filename(self, command: Command) -> str:
        a = action_of(command, ExportCommand)
        day = datetime.fromtimestamp(command.issued_at / 1000, UTC).date().isoformat()
        values = {**a.record, "command_id": command.command_id, "date": day,
                  "customer_id": command.customer_id, "automation_id": command.automation_id}
        name = self._templates.inline(a.filename, values, "export.filename").strip()
        if not name or "/" in name or "\\" in name or name.startswith(".") or \
                any(ord(c) < 32 for c in name):
            raise PermanentError(f"export filename {name!r} (from {a.filename!r}) is not a "
                                 f"plain file name")
        return name

    async def send(self, command: Command) -> Delivery:
        target = self._target(command)
        name = self.filename(command)
        a = action_of(command, ExportCommand)
        data = file_body(a.format, a.record)
        final = posixpath.join(target.directory, name)
        temp = posixpath.join(target.directory, f".{name}.{command.command_id[:16]}.part")
        upload: Uploader = _sftp if target.protocol == "sftp" else _ftp
        phase = _Phase(target)
        try:
            async with asyncio.timeout(target.timeout_s):
                await upload(target, temp, final, data, phase)
        except PermanentError:
            raise
        except (OSError, TimeoutError, aioftp.AIOFTPException, asyncssh.Error,
                ssl.SSLError, EOFError) as exc:
            if phase.now == "quit":  # renamed already: the export is done
                return Delivery(provider_ref=final, detail=f"{len(data)} bytes to {target.name}")
            raise phase.error(exc) from exc
        return Delivery(provider_ref=final,
                        detail=f"{len(data)} bytes to {target.protocol}://{target.host}{final}")

    async def aclose(self) -> None:
        return None
