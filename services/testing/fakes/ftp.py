"""Real FTP and FTPS servers (pyftpdlib) on loopback, serving a temporary directory.

FTPS is explicit (``AUTH TLS``), with TLS required on control and data
connections and a certificate for 127.0.0.1 issued by a throwaway CA (trustme);
``ca_file`` is that CA's PEM for clients to trust.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import trustme
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

from signalbox.testing import free_port

# No line per FTP command; a handler of its own keeps pyftpdlib from configuring logging.
logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())


class FtpServer:
    def __init__(self, root: Path, tls: bool = False, user: str = "signalbox",
                 password: str = "ftp-password", slow_rename_s: float = 0.0) -> None:
        self.root, self.user, self.password = root, user, password
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.ca_file = ""
        authorizer = DummyAuthorizer()
        authorizer.add_user(user, password, str(root), perm="elradfmwMT")
        handler: type[FTPHandler]
        if tls:
            ca = trustme.CA()
            certs = root.parent / f"ftps-{self.port}"
            certs.mkdir(exist_ok=True)
            ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
                str(certs / "server.pem"))
            ca.cert_pem.write_to_path(str(certs / "ca.pem"))
            self.ca_file = str(certs / "ca.pem")
            handler = type("Handler", (TLS_FTPHandler,), {
                "certfile": str(certs / "server.pem"), "tls_control_required": True,
                "tls_data_required": True, "ssl_context": None})
        else:
            handler = type("Handler", (FTPHandler,), {})
        handler.authorizer = authorizer
        if slow_rename_s:  # answer RNTO late (after renaming): the client cannot know
            base = handler

            def ftp_RNTO(self: FTPHandler, path: str) -> Any:
                time.sleep(slow_rename_s)
                return base.ftp_RNTO(self, path)

            handler = type("SlowRename", (base,), {"ftp_RNTO": ftp_RNTO})
        self._server = FTPServer(("127.0.0.1", self.port), handler)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._server.ioloop.loop(timeout=0.05, blocking=False)
        self._server.close_all()

    def files(self) -> dict[str, bytes]:
        """Every file under the root, hidden ones included, by relative path."""
        return {str(p.relative_to(self.root)): p.read_bytes()
                for p in sorted(self.root.rglob("*")) if p.is_file()}

    def __enter__(self) -> FtpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
