"""Exports to real FTP, FTPS (pyftpdlib) and SFTP (asyncssh) servers on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest

from signalbox.common.action_command import Command, ExportCommand
from signalbox.dispatcher.channels.export import ExportChannel, file_body
from signalbox.dispatcher.outcomes import InDoubtError, PermanentError, TransientError
from signalbox.dispatcher.providers import ExportTarget
from signalbox.dispatcher.templates import TemplateStore
from signalbox.testing import eventually, free_port
from signalbox.testing.fakes.ftp import FtpServer
from signalbox.testing.fakes.sftp import SftpServer
from signalbox.testing.fakes.silent import SilentServer
from tests.dispatcher.channels.support import make_command

RECORD = {"customer_id": "cus-1", "name": "Ada, \"the first\"", "amount": "49.00"}


def export(fmt: Literal["csv", "jsonl"] = "csv",
           filename: str = "{{ date }}-{{ command_id }}.{{ fmt }}", target: str = "t") -> Command:
    return make_command(ExportCommand(target, fmt, filename.replace("{{ fmt }}", fmt), RECORD))


def channel(target: ExportTarget) -> ExportChannel:
    return ExportChannel({"t": target}, TemplateStore())


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[FtpServer]:
    with FtpServer(tmp_path / "ftp") as server:
        yield server


@pytest.fixture
def ftps(tmp_path: Path) -> Iterator[FtpServer]:
    with FtpServer(tmp_path / "ftps", tls=True) as server:
        yield server


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpServer]:
    with SftpServer(tmp_path / "sftp") as server:
        yield server


def ftp_target(server: FtpServer, protocol: str = "ftp") -> ExportTarget:
    (server.root / "in").mkdir(exist_ok=True)
    return ExportTarget("t", protocol, "127.0.0.1", server.port, server.user, server.password,
                        ca_file=server.ca_file, directory="/in", timeout_s=5.0)


def sftp_target(server: SftpServer) -> ExportTarget:
    (server.root / "in").mkdir(exist_ok=True)
    return ExportTarget("t", "sftp", "127.0.0.1", server.port, server.user, server.password,
                        known_hosts=server.known_hosts, directory="/in", timeout_s=5.0)


def test_file_formats() -> None:
    assert file_body("csv", RECORD) == (b'customer_id,name,amount\r\n'
                                        b'cus-1,"Ada, ""the first""",49.00\r\n')
    assert json.loads(file_body("jsonl", RECORD)) == RECORD
    assert file_body("jsonl", RECORD).count(b"\n") == 1


async def test_ftp_upload_is_renamed_into_place(ftp: FtpServer) -> None:
    command = export()
    delivery = await channel(ftp_target(ftp)).send(command)
    name = f"in/2026-09-21-{command.command_id}.csv"
    assert ftp.files() == {name: file_body("csv", RECORD)}  # no .part file left
    assert delivery.provider_ref == "/" + name


async def test_ftps_with_tls_required(ftps: FtpServer) -> None:
    command = export("jsonl", "{{ customer_id }}.jsonl")
    await channel(ftp_target(ftps, "ftps")).send(command)
    assert ftps.files() == {"in/cus-1.jsonl": file_body("jsonl", RECORD)}
    with pytest.raises(PermanentError, match="TLS certificate not trusted"):
        await channel(replace(ftp_target(ftps, "ftps"), ca_file="")).send(command)
    with pytest.raises(PermanentError, match="during login: server replied 5"):
        await channel(ftp_target(ftps, "ftp")).send(command)  # plain FTP refused


async def test_sftp_upload_and_host_key_check(sftp: SftpServer, tmp_path: Path) -> None:
    command = export()
    await channel(sftp_target(sftp)).send(command)
    await channel(sftp_target(sftp)).send(command)  # the same export again replaces it
    assert sftp.files() == {f"in/2026-09-21-{command.command_id}.csv": file_body("csv", RECORD)}
    other = tmp_path / "other_known_hosts"
    other.write_text(f"[127.0.0.1]:{sftp.port} ssh-ed25519 "
                     f"AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    with pytest.raises(PermanentError, match="host key not verifiable"):
        await channel(replace(sftp_target(sftp), known_hosts=str(other))).send(command)
    with pytest.raises(PermanentError, match="host key not verifiable"):  # not in ~/.ssh
        await channel(replace(sftp_target(sftp), known_hosts="")).send(command)


async def test_bad_credentials_are_permanent(ftp: FtpServer, sftp: SftpServer) -> None:
    with pytest.raises(PermanentError, match=r"during login: server replied 530"):
        await channel(replace(ftp_target(ftp), password="wrong")).send(export())
    with pytest.raises(PermanentError, match="permission denied"):
        await channel(replace(sftp_target(sftp), password="wrong")).send(export())


async def test_missing_directory_is_permanent(ftp: FtpServer) -> None:
    with pytest.raises(PermanentError, match="during upload: server replied 550"):
        await channel(replace(ftp_target(ftp), directory="/nope")).send(export())


@pytest.mark.parametrize("protocol", ["ftp", "sftp"])
async def test_down_or_silent_servers_are_transient(protocol: str) -> None:
    down = ExportTarget("t", protocol, "127.0.0.1", free_port(), "u", "p", timeout_s=1.0)
    with pytest.raises(TransientError, match="during connect"):
        await channel(down).send(export())
    with SilentServer() as silent:
        started = time.monotonic()
        with pytest.raises(TransientError, match="during connect"):
            await channel(replace(down, port=silent.port)).send(export())
        assert time.monotonic() - started < 4


@pytest.mark.parametrize("filename", ["../etc/passwd", ".hidden", "{{ nope }}", "a/b.csv"])
async def test_bad_file_names_are_permanent(ftp: FtpServer, filename: str) -> None:
    with pytest.raises(PermanentError, match=r"export\.filename|not a plain file name"):
        await channel(ftp_target(ftp)).send(export(filename=filename))
    assert ftp.files() == {}


async def test_unknown_target_is_permanent() -> None:
    with pytest.raises(PermanentError, match="export target 'x' is not configured"):
        await ExportChannel({}, TemplateStore()).send(export(target="x"))


async def test_no_answer_to_the_rename_is_in_doubt(tmp_path: Path) -> None:
    with FtpServer(tmp_path / "slow", slow_rename_s=2.0) as slow:
        target = replace(ftp_target(slow), timeout_s=1.0)
        with pytest.raises(InDoubtError, match=r"during rename: .*the file may be in place"):
            await channel(target).send(export(filename="x.csv"))

        async def placed() -> bool:
            return "in/x.csv" in slow.files()

        assert await eventually(placed)  # it was in place after all: resending is unsafe


async def test_sftp_with_a_private_key(sftp: SftpServer) -> None:
    target = replace(sftp_target(sftp), password="", private_key=sftp.client_key_file)
    await channel(target).send(export(filename="keyed.csv"))
    assert "in/keyed.csv" in sftp.files()
