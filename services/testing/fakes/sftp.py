"""A real SFTP server (asyncssh) on loopback, in its own thread, chrooted to a directory."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import asyncssh

from signalbox.testing import free_port


class SftpServer:
    def __init__(self, root: Path, user: str = "signalbox",
                 password: str = "sftp-password") -> None:
        self.root, self.user, self.password = root, user, password
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_file = str(root.parent / f"id_ed25519-{self.port}")  # accepted key
        client_key.write_private_key(self.client_key_file)
        self._authorized = client_key.export_public_key()
        self.known_hosts = str(root.parent / f"known_hosts-{self.port}")
        Path(self.known_hosts).write_text(
            f"[127.0.0.1]:{self.port} "
            f"{self.host_key.export_public_key().decode().strip()}\n")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None

    def _ssh_server(self) -> asyncssh.SSHServer:
        user, password, authorized = self.user, self.password, self._authorized

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, given: str) -> bool:
                return username == user and given == password

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                return username == user and key.export_public_key() == authorized

        return Server()

    async def _start(self) -> None:
        root = str(self.root).encode()
        self._server = await asyncssh.create_server(
            self._ssh_server, "127.0.0.1", self.port, server_host_keys=[self.host_key],
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root))

    async def _stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    def files(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes()
                for p in sorted(self.root.rglob("*")) if p.is_file()}

    def __enter__(self) -> SftpServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
